package event

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

func valid() *Event {
	return &Event{
		Gateway: "gw", Stream: "scans", Seq: 1, Source: "src", Kind: KindScan,
		Time: t0, Received: t0,
	}
}

func TestRoundTripNormalises(t *testing.T) {
	loc := time.FixedZone("CET", 3600)
	e := valid()
	e.Time = time.Date(2026, 1, 2, 3, 4, 5, 123456789, loc) // ns and a zone
	e.Received = time.Time{}                                // omitted
	e.Attrs = map[string]any{
		"i": 7, "i8": int8(-8), "u": uint(9), "u64max": uint64(math.MaxUint64),
		"u64": uint64(10), "f32": float32(1.5), "f": 0.1, "b": false,
		"bytes": []byte{0, 1}, "s": "ä", "neg": int64(math.MinInt64),
		"t":  time.Date(2199, 12, 31, 23, 59, 59, 999999999, time.UTC),
		"t0": time.Date(2026, 1, 1, 0, 0, 0, 0, loc), "nan": math.NaN(),
	}
	e.Raw = []byte{}
	b, err := Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Errorf("re-encoding the decoded event changed the bytes\n%x\n%x", b, b2)
	}
	want := map[string]any{
		"i": int64(7), "i8": int64(-8), "u": int64(9), "u64max": uint64(math.MaxUint64),
		"u64": int64(10), "f32": 1.5, "f": 0.1, "b": false,
		"bytes": []byte{0, 1}, "s": "ä", "neg": int64(math.MinInt64),
		"t":  time.Date(2199, 12, 31, 23, 59, 59, 999999000, time.UTC),
		"t0": time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC),
	}
	if !math.IsNaN(got.Attrs["nan"].(float64)) {
		t.Errorf("nan = %v", got.Attrs["nan"])
	}
	delete(got.Attrs, "nan")
	if !reflect.DeepEqual(got.Attrs, want) {
		t.Errorf("attrs\n got %#v\nwant %#v", got.Attrs, want)
	}
	if wt := time.Date(2026, 1, 2, 2, 4, 5, 123456000, time.UTC); got.Time != wt {
		t.Errorf("time = %v, want %v", got.Time, wt)
	}
	if !got.Received.IsZero() || got.Raw != nil {
		t.Errorf("received %v raw %v, want zero and nil", got.Received, got.Raw)
	}
}

// TestAttrTimesExact checks every microsecond offset within a second, at
// dates up to MaxTime, survives the float encoding.
func TestAttrTimesExact(t *testing.T) {
	for _, base := range []time.Time{MinTime, t0.Truncate(time.Second), MaxTime.Add(-time.Second)} {
		for us := 0; us < 1_000_000; us += 997 {
			at := base.Add(time.Duration(us) * time.Microsecond)
			e := valid()
			e.Attrs = map[string]any{"t": at}
			b, err := Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			if g := got.Attrs["t"].(time.Time); !g.Equal(at) {
				t.Fatalf("%v decoded as %v", at, g)
			}
		}
	}
}

func TestMarshalRejects(t *testing.T) {
	for _, tc := range []struct {
		name, field string
		mod         func(e *Event)
	}{
		{"no gateway", "gateway", func(e *Event) { e.Gateway = "" }},
		{"no stream", "stream", func(e *Event) { e.Stream = "" }},
		{"no source", "source", func(e *Event) { e.Source = "" }},
		{"no kind", "kind", func(e *Event) { e.Kind = "" }},
		{"bad utf8", "kind", func(e *Event) { e.Kind = "\xff" }},
		{"no time", "time", func(e *Event) { e.Time = time.Time{} }},
		{"time before 1970", "time", func(e *Event) { e.Time = MinTime.Add(-time.Microsecond) }},
		{"time too late", "time", func(e *Event) { e.Time = MaxTime }},
		{"received too late", "received", func(e *Event) { e.Received = MaxTime }},
		{"attr map", "attrs.m", func(e *Event) { e.Attrs = map[string]any{"m": map[string]any{}} }},
		{"attr nil", "attrs.n", func(e *Event) { e.Attrs = map[string]any{"n": nil} }},
		{"attr slice", "attrs.s", func(e *Event) { e.Attrs = map[string]any{"s": []int{1}} }},
		{"attr empty key", "attrs", func(e *Event) { e.Attrs = map[string]any{"": 1} }},
		{"attr time", "attrs.t", func(e *Event) { e.Attrs = map[string]any{"t": time.Time{}} }},
		{"too big", "", func(e *Event) { e.Raw = make([]byte, MaxSize) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := valid()
			tc.mod(e)
			_, err := Marshal(e)
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want a FieldError wrapping ErrInvalid", err)
			}
			if fe.Field != tc.field {
				t.Fatalf("field = %q, want %q (%v)", fe.Field, tc.field, err)
			}
		})
	}
}

// enc encodes an arbitrary value for building malformed input.
func enc(t *testing.T, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func baseMap() map[string]any {
	return map[string]any{
		"gateway": "gw", "stream": "s", "seq": 1, "source": "x", "kind": "scan",
		"time": t0.UnixMicro(), "boot": 0, "mono": 0,
	}
}

func TestUnmarshalRejects(t *testing.T) {
	with := func(k string, v any) []byte {
		m := baseMap()
		m[k] = v
		return enc(t, m)
	}
	without := func(k string) []byte {
		m := baseMap()
		delete(m, k)
		return enc(t, m)
	}
	good := enc(t, baseMap())
	for _, tc := range []struct {
		name, field, msg string
		in               []byte
	}{
		{"empty", "", "EOF", nil},
		{"not a map", "", "cannot unmarshal", enc(t, []int{1})},
		{"trailing data", "", "extraneous", append(append([]byte{}, good...), 0x00)},
		{"missing gateway", "gateway", "missing", without("gateway")},
		{"missing stream", "stream", "missing", without("stream")},
		{"missing seq", "seq", "missing", without("seq")},
		{"missing source", "source", "missing", without("source")},
		{"missing kind", "kind", "missing", without("kind")},
		{"missing time", "time", "missing", without("time")},
		{"null gateway", "gateway", "missing", with("gateway", nil)},
		{"empty kind", "kind", "empty", with("kind", "")},
		{"negative seq", "seq", "cannot unmarshal", with("seq", -1)},
		{"text seq", "seq", "cannot unmarshal", with("seq", "1")},
		{"time as tag", "time", "tag", with("time", cbor.Tag{Number: 1, Content: 5})},
		{"time before 1970", "time", "outside", with("time", -1)},
		{"attrs not a map", "attrs", "cannot unmarshal", with("attrs", 3)},
		{"attr null", "attrs.a", "null", with("attrs", map[string]any{"a": nil})},
		{"attr array", "attrs.a", "unsupported", with("attrs", map[string]any{"a": []int{1}})},
		{"attr tag 0", "attrs.a", "unsupported tag 0", with("attrs", map[string]any{"a": cbor.Tag{Number: 0, Content: "2026-01-01T00:00:00Z"}})},
		{"attr bignum", "", "bignum", with("attrs", map[string]any{"a": cbor.Tag{Number: 2, Content: []byte{1, 0, 0, 0, 0, 0, 0, 0, 0}}})},
		{"attr time text", "attrs", "tag number 1", with("attrs", map[string]any{"a": cbor.Tag{Number: 1, Content: "x"}})},
		{"attr time NaN", "attrs.a", "out of range", with("attrs", map[string]any{"a": cbor.Tag{Number: 1, Content: math.NaN()}})},
		{"attr time nested tag", "attrs", "tag number 1", with("attrs", map[string]any{"a": cbor.Tag{Number: 1, Content: cbor.Tag{Number: 1, Content: 0}}})},
		{"attr int key", "attrs", "cannot unmarshal", with("attrs", map[int]any{1: 1})},
		{"attr negative bignum", "", "bignum", with("attrs", map[string]any{"a": cbor.Tag{Number: 3, Content: []byte{1, 0, 0, 0, 0, 0, 0, 0, 0}}})},
		{"dup key", "", "duplicate", append([]byte{0xa9}, append(bytes.TrimPrefix(good, []byte{0xa8}), 0x64, 'k', 'i', 'n', 'd', 0x61, 'x')...)},
		{"indefinite map", "", "indefinite", append(append([]byte{0xbf}, bytes.TrimPrefix(good, []byte{0xa8})...), 0xff)},
		{"bad utf8", "kind", "UTF-8", with("kind", cbor.RawMessage{0x61, 0xff})},
		{"too deep", "", "nested", with("extra", []any{[]any{[]any{[]any{1}}}})},
		{"too big", "", "exceeds", make([]byte, MaxSize+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Unmarshal(tc.in)
			if err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want one wrapping ErrInvalid", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Errorf("err = %v, want field %q", err, tc.field)
			}
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.msg)) {
				t.Errorf("err = %v, want it to mention %q", err, tc.msg)
			}
		})
	}
}

func TestUnmarshalIgnoresUnknownFields(t *testing.T) {
	m := baseMap()
	m["future"] = map[string]any{"x": 1}
	m["Gateway"] = 42 // keys are case-sensitive: this is an unknown key
	e, err := Unmarshal(enc(t, m))
	if err != nil {
		t.Fatal(err)
	}
	if e.Gateway != "gw" {
		t.Fatalf("gateway = %q", e.Gateway)
	}
}

func TestGap(t *testing.T) {
	g := Gap{From: 5, To: 9, Count: 5, Reason: GapTTL}
	e, err := NewGap("scans", "buffer", g, t0)
	if err != nil {
		t.Fatal(err)
	}
	e.Gateway, e.Seq = "gw", 10
	b, err := Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := GapOf(d)
	if err != nil || got != g {
		t.Fatalf("GapOf = %+v, %v; want %+v", got, err, g)
	}
	big := Gap{From: 0, To: math.MaxUint64, Count: math.MaxUint64, Reason: "x"}
	if e, err = NewGap("s", "b", big, t0); err != nil {
		t.Fatal(err)
	}
	if got, err := GapOf(e); err != nil || got != big {
		t.Fatalf("GapOf(big) = %+v, %v", got, err)
	}
	for _, bad := range []Gap{
		{From: 2, To: 1, Count: 1, Reason: "x"},
		{From: 1, To: 2, Count: 0, Reason: "x"},
		{From: 1, To: 2, Count: 3, Reason: "x"},
		{From: 1, To: 2, Count: 1},
	} {
		if _, err := NewGap("s", "b", bad, t0); err == nil {
			t.Errorf("NewGap(%+v) succeeded", bad)
		}
	}
}
