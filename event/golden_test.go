package event

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.cbor and the fuzz seed corpus")

var t0 = time.Date(2026, 3, 14, 9, 26, 53, 589793000, time.UTC)

// goldens are the vectors checked in under testdata/<name>.cbor.
func goldens() map[string]*Event {
	gap, err := NewGap("scans", "buffer", Gap{From: 1001, To: 1500, Count: 500, Reason: GapOverflow}, t0.Add(time.Hour))
	if err != nil {
		panic(err)
	}
	gap.Gateway, gap.Seq, gap.Received, gap.Boot, gap.Mono = "gw-dock-7", 1501, t0.Add(time.Hour), 12, 3600123456789
	return map[string]*Event{
		"scan": {
			Gateway: "gw-dock-7", Stream: "scans", Seq: 1000, Source: "dock3-scanner", Kind: KindScan,
			Time: t0, Received: t0.Add(1500 * time.Microsecond), Boot: 12, Mono: 987654321,
			Attrs: map[string]any{"barcode": "JD014600006512345678", "symbology": "code128", "dock": "3", "device": "sc-41"},
			Raw:   []byte(`{"code":"JD014600006512345678","sym":"code128"}`),
		},
		"reading": {
			Gateway: "gw-dock-7", Stream: "telemetry", Seq: 77, Source: "bme280-1", Kind: KindReading,
			Time: t0, Received: t0, Boot: 12, Mono: 1,
			Attrs: map[string]any{"value": 21.5, "unit": "degC", "device_time": t0.Add(-2 * time.Second), "time_flag": "implausible"},
		},
		"gpio": {
			Gateway: "gw-dock-7", Stream: "telemetry", Seq: 78, Source: "door-contact-2", Kind: KindGPIO,
			Time: t0.Add(time.Second), Received: t0.Add(time.Second), Boot: 12, Mono: 2,
			Attrs: map[string]any{"pin": "GPIO17", "level": true, "count": 4},
		},
		"gap": gap,
	}
}

func TestGolden(t *testing.T) {
	for name, e := range goldens() {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name+".cbor")
			got, err := Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encoding changed:\n got %s\nwant %s", hex.EncodeToString(got), hex.EncodeToString(want))
			}
			dec, err := Unmarshal(want)
			if err != nil {
				t.Fatal(err)
			}
			norm, err := Normalize(e)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(dec, norm) {
				t.Fatalf("decode(golden) = %#v\nwant %#v", dec, norm)
			}
		})
	}
}

// TestGoldenPrefix pins a few bytes by hand, independently of the encoder:
// core deterministic order puts the shortest keys first ("seq", then the
// four-letter "boot", "kind", "mono", "time").
func TestGoldenPrefix(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "gpio.cbor"))
	if err != nil {
		t.Fatal(err)
	}
	// gpio has no raw: 10 pairs (0xaa); the first key is "seq" (0x63 's' 'e'
	// 'q') with uint 78 (0x18 0x4e), then "boot" with 12 (0x0c).
	want := []byte{0xaa, 0x63, 's', 'e', 'q', 0x18, 0x4e, 0x64, 'b', 'o', 'o', 't', 0x0c}
	if !bytes.HasPrefix(b, want) {
		t.Fatalf("gpio.cbor starts % x, want % x", b[:len(want)], want)
	}
}

// writeSeedCorpus writes the fuzz seeds in the format `go test` reads.
func writeSeedCorpus(t *testing.T, seeds [][]byte) {
	dir := filepath.Join("testdata", "fuzz", "FuzzUnmarshal")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
