package ingest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/edgegw/gateway/event"
	"github.com/fxamacker/cbor/v2"
)

// fuzzSubs are the subscriptions every fuzz input goes through: each kind,
// default and mapped fields (nested paths, kept attributes, every time
// format), for the format under test.
func fuzzSubs(t *testing.T, format string) []*sub {
	var out []*sub
	for _, s := range []Subscription{
		{Topic: "site/+dock/scanner/+device", Kind: "scan", Source: "{dock}-{device}"},
		{Topic: "site/+dock/scanner/+device", Kind: "scan", Source: "{dock}",
			Fields: FieldMap{Barcode: "code", Symbology: "meta.sym", Time: "meta.ts", Attrs: []string{"battery", "meta.fw", "n"}}},
		{Topic: "t/#rest", Kind: "reading", Fields: FieldMap{Time: "ts", TimeFormat: "unix_ms"}},
		{Topic: "t/#rest", Kind: "reading", Fields: FieldMap{Value: "v.x", TimeFormat: "rfc3339"}},
		{Topic: "e/+", Kind: "door", Stream: "doors", KeepRaw: true},
	} {
		s.Format = format
		if format == FormatText {
			s.Fields = FieldMap{}
		}
		out = append(out, mustSub(t, s))
	}
	return out
}

// fuzzParse: the parser never panics; it yields exactly one of an event or
// a reject; an event it yields is one the codec accepts (once the sink has
// stamped it) and survives the round trip; and it is deterministic.
func fuzzParse(t *testing.T, subs []*sub, topic string, payload []byte) {
	dt := NewConfig().DeviceTime
	for i, s := range subs {
		vals, ok := s.pat.match(topic)
		if !ok {
			continue
		}
		ev, bad := s.parse(topic, vals, payload, recv, dt)
		if (ev == nil) == (bad == nil) {
			t.Fatalf("sub %d: event %v and reject %v", i, ev, bad)
		}
		if bad != nil {
			if !strings.HasPrefix(bad.String(), bad.reason+": ") || bad.reason == "" {
				t.Fatalf("sub %d: reject %q", i, bad)
			}
			continue
		}
		// Nothing was altered: a U+FFFD in the event was in the input.
		if !bytes.Contains(payload, []byte("\uFFFD")) && !bytes.Contains(bytes.ToLower(payload), []byte(`\ufffd`)) && !strings.ContainsRune(topic, utf8.RuneError) {
			for k, v := range ev.Attrs {
				if x, ok := v.(string); ok && strings.ContainsRune(x, utf8.RuneError) {
					t.Fatalf("sub %d: attr %s = %q has a U+FFFD that %q does not", i, k, x, payload)
				}
			}
		}
		ev2, _ := s.parse(topic, vals, payload, recv, dt)
		if !reflect.DeepEqual(ev, ev2) {
			t.Fatalf("sub %d: not deterministic:\n%#v\n%#v", i, ev, ev2)
		}
		ev.Gateway, ev.Seq, ev.Boot, ev.Mono = "gw", 1, 1, 1
		b, err := event.Marshal(ev)
		if err != nil {
			// The driver would quarantine it (invalid_event), so this is
			// no crash; but the parser should not produce such an event.
			t.Fatalf("sub %d: parsed event does not encode: %v\n%#v", i, err, ev)
		}
		back, err := event.Unmarshal(b)
		if err != nil {
			t.Fatalf("sub %d: round trip: %v", i, err)
		}
		if back.Source != ev.Source || back.Kind != ev.Kind || len(back.Attrs) != len(ev.Attrs) {
			t.Fatalf("sub %d: round trip changed the event:\n%#v\n%#v", i, ev, back)
		}
	}
}

type fuzzSeed struct {
	topic   string
	payload []byte
}

func jsonSeeds() []fuzzSeed {
	return []fuzzSeed{
		{"site/3/scanner/sc-41", []byte(`{"barcode":"JD0146","symbology":"code128","time":"2026-05-01T11:59:00Z"}`)},
		{"site/3/scanner/sc-41", []byte(`{"code":12345678901234567890,"meta":{"sym":"ean13","ts":1777636740123,"fw":{"v":[1,2]}},"battery":0.5,"n":7}`)},
		{"site/3/scanner/sc-41", []byte(`{"barcode":1.5e300}`)},
		{"site/3/scanner/sc-41", []byte(`{"barcode":"x","time":-1e400}`)},
		{"site/3/scanner/sc-41", []byte(`[1,2,3]`)},
		{"site/3/scanner/sc-41", []byte(`{"barcode":"x"} {"barcode":"y"}`)},
		{"site/3/scanner/sc-41", []byte(`{"barcode":"\ud800"}`)},
		{"site/3/scanner/sc-41", []byte(strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat(`}`, 200))},
		{"t/room/1", []byte(`{"value":"21.5","unit":"C","ts":1777636740123}`)},
		{"t/room/1", []byte(`{"v":{"x":NaN}}`)},
		{"t/room/1", []byte(`{"value":99999999999999999999999,"time":"9999-12-31T23:59:59Z"}`)},
		{"e/door", []byte(`{"open":true}`)},
		{"site/\xff/scanner/x", []byte(`{"barcode":"x"}`)},
		// Input that would be altered is refused; what spells U+FFFD is not.
		{"site/3/scanner/sc-41", []byte("{\"barcode\":\"JD\xff0146\"}")},
		{"site/3/scanner/sc-41", []byte(`{"barcode":"\ud83d\ude00","meta":{"sym":"\udc00"}}`)},
		{"site/3/scanner/sc-41", []byte(`{"code":"x","meta":{"ts":1,"fw":"a","ts":2}}`)},
		{"site/3/scanner/sc-41", []byte(`{"barcode":"x","\u0062arcode":"y"}`)},
		{"site/3/scanner/sc-41", []byte(`{"barcode":"\ufffd\uFFFD` + "\uFFFD" + `"}`)},
	}
}

func cborSeeds() []fuzzSeed {
	enc, err := cbor.CoreDetEncOptions().EncMode() // sorted keys: the same seed files every time
	if err != nil {
		panic(err)
	}
	m := func(v any) []byte {
		b, err := enc.Marshal(v)
		if err != nil {
			panic(err)
		}
		return b
	}
	return []fuzzSeed{
		{"site/3/scanner/sc-41", m(map[string]any{"barcode": "JD0146", "symbology": "code128", "time": int64(1777636740)})},
		{"site/3/scanner/sc-41", m(map[string]any{"code": uint64(1) << 63, "meta": map[string]any{"sym": "x", "ts": "2026-05-01T11:59:00Z"}, "battery": []byte{1, 2}})},
		{"site/3/scanner/sc-41", []byte{0xa1, 0x67, 'b', 'a', 'r', 'c', 'o', 'd', 'e', 0xc1, 0x1a, 0x6a, 0x00, 0x00, 0x00}}, // barcode: tag 1 time
		{"site/3/scanner/sc-41", []byte{0xbf, 0x67, 'b', 'a', 'r', 'c', 'o', 'd', 'e', 0x61, 'x', 0xff}},                    // indefinite map
		{"site/3/scanner/sc-41", []byte{0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02}},                                            // duplicate key
		{"site/3/scanner/sc-41", []byte{0xa1, 0x01, 0x02}},                                                                  // integer key
		{"t/room/1", m(map[string]any{"value": 21.5, "ts": int64(-1)})},
		{"t/room/1", []byte{0xa1, 0x65, 'v', 'a', 'l', 'u', 'e', 0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0}}, // NaN
		{"t/room/1", []byte{0xa1, 0x65, 'v', 'a', 'l', 'u', 'e', 0xc2, 0x41, 0x01}},                   // bignum
		{"e/door", []byte{0x9f, 0x9f, 0x9f, 0x9f, 0xff, 0xff, 0xff, 0xff}},
		// Input that would be altered is refused.
		{"site/3/scanner/sc-41", []byte{0xa1, 0x67, 'b', 'a', 'r', 'c', 'o', 'd', 'e', 0x62, 'x', 0xff}},                    // invalid UTF-8 text
		{"site/3/scanner/sc-41", []byte{0xa1, 0x67, 'b', 'a', 'r', 'c', 'o', 'd', 'e', 0x7f, 0x61, 0xc3, 0x61, 0xa9, 0xff}}, // rune split over chunks
		{"site/3/scanner/sc-41", []byte{0xa2, 0x61, 'a', 0x01, 0x41, 'a', 0x02}},                                            // byte string key
		{"site/3/scanner/sc-41", []byte{0xa1, 0x64, 'm', 'e', 't', 'a', 0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02}},            // nested duplicate key
	}
}

func textSeeds() []fuzzSeed {
	return []fuzzSeed{
		{"site/3/scanner/sc-41", []byte("JD0146\n")},
		{"site/3/scanner/sc-41", []byte("   \t")},
		{"site/3/scanner/sc-41", []byte{0xff, 0xfe}},
		{"t/room/1", []byte("21.5")},
		{"t/room/1", []byte("1e999")},
		{"t/room/1", []byte("NaN")},
		{"t/room/1", []byte("-9223372036854775809")},
		{"e/door", []byte("open")},
		{"e/door", nil},
		{"site/3/scanner/sc-41", []byte("JD\xe2\x82\n")},
		{"site/3/scanner/sc-41", []byte("JD\uFFFD")},
	}
}

func FuzzParseJSON(f *testing.F) { fuzzFormat(f, FormatJSON, jsonSeeds()) }
func FuzzParseCBOR(f *testing.F) { fuzzFormat(f, FormatCBOR, cborSeeds()) }
func FuzzParseText(f *testing.F) { fuzzFormat(f, FormatText, textSeeds()) }

func fuzzFormat(f *testing.F, format string, seeds []fuzzSeed) {
	for _, s := range seeds {
		f.Add(s.topic, s.payload)
	}
	var subs []*sub
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		if subs == nil {
			subs = fuzzSubs(t, format)
		}
		if len(payload) > 64<<10 {
			return // above the default max_payload: never parsed
		}
		fuzzParse(t, subs, topic, payload)
	})
}

// TestWriteFuzzCorpus writes the seeds above as the committed corpus that
// go test replays (and go test -fuzz starts from).
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("EDGE_WRITE_CORPUS") == "" {
		t.Skip("writes the seed corpus only with EDGE_WRITE_CORPUS=1")
	}
	for name, seeds := range map[string][]fuzzSeed{"FuzzParseJSON": jsonSeeds(), "FuzzParseCBOR": cborSeeds(), "FuzzParseText": textSeeds()} {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\nstring(%s)\n[]byte(%s)\n", strconv.Quote(s.topic), strconv.Quote(string(s.payload)))
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
