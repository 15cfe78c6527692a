package event

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// fuzzSeeds are the valid goldens plus a few near misses; with -update they
// are written to testdata/fuzz/FuzzUnmarshal, which go test always replays.
func fuzzSeeds(t *testing.T) [][]byte {
	var seeds [][]byte
	for _, name := range []string{"gap", "gpio", "reading", "scan"} {
		b, err := os.ReadFile(filepath.Join("testdata", name+".cbor"))
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b, b[:len(b)/2], append(append([]byte{}, b...), 0xff))
	}
	return append(seeds, []byte{0xa0}, []byte{0xbf, 0xff}, []byte{0xc1, 0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0})
}

func TestWriteSeedCorpus(t *testing.T) {
	if !*update {
		t.Skip("writes the seed corpus only with -update")
	}
	writeSeedCorpus(t, fuzzSeeds(t))
}

// FuzzUnmarshal: Unmarshal never panics, and whatever it accepts re-encodes
// to bytes that decode to an event which encodes to the same bytes again.
func FuzzUnmarshal(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Unmarshal(b)
		if err != nil {
			return
		}
		b2, err := Marshal(e)
		if err != nil {
			t.Fatalf("decoded event does not re-encode: %v\n%#v", err, e)
		}
		e2, err := Unmarshal(b2)
		if err != nil {
			t.Fatalf("re-encoded event does not decode: %v", err)
		}
		b3, err := Marshal(e2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b2, b3) {
			t.Fatalf("encoding not stable:\n%x\n%x", b2, b3)
		}
		if !equalEvents(e, e2) {
			t.Fatalf("decode(encode(e)) != e:\n%#v\n%#v", e, e2)
		}
	})
}

// equalEvents is reflect.DeepEqual, except that NaN equals NaN.
func equalEvents(a, b *Event) bool {
	x, y := *a, *b
	x.Attrs, y.Attrs = nil, nil
	if !reflect.DeepEqual(x, y) || len(a.Attrs) != len(b.Attrs) {
		return false
	}
	for k, va := range a.Attrs {
		vb, ok := b.Attrs[k]
		if !ok {
			return false
		}
		fa, aok := va.(float64)
		fb, bok := vb.(float64)
		if aok && bok && math.IsNaN(fa) && math.IsNaN(fb) {
			continue
		}
		if !reflect.DeepEqual(va, vb) {
			return false
		}
	}
	return true
}
