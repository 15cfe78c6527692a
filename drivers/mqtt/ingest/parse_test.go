package ingest

import (
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/units"
	"github.com/fxamacker/cbor/v2"
)

var recv = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func mustSub(t *testing.T, s Subscription) *sub {
	t.Helper()
	var errs units.Errors
	s.validate(&validator{errs: &errs}, "sub")
	if len(errs) > 0 {
		t.Fatalf("invalid subscription: %v", errs)
	}
	c, err := compileSub(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func cborOf(t *testing.T, v any) []byte {
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParse(t *testing.T) {
	scan := Subscription{Topic: "site/+dock/scanner/+device", Kind: "scan", Source: "{dock}-scanner"}
	mapped := scan
	mapped.Fields = FieldMap{Barcode: "code", Symbology: "sym", Time: "meta.ts", Attrs: []string{"battery", "meta.fw", "extra"}}
	reading := Subscription{Topic: "t/+dev", Kind: "reading", Source: "temp-{dev}"}
	dt := DeviceTimeConfig{MaxPast: units.Duration(time.Hour), MaxFuture: units.Duration(time.Minute)}
	devTime := recv.Add(-10 * time.Minute)
	for _, tc := range []struct {
		name    string
		sub     Subscription
		topic   string
		payload []byte
		reason  string         // quarantine reason, or "" for an event
		why     string         // the whole reject, when given
		source  string         // expected source
		time    time.Time      // expected event time (zero: recv)
		attrs   map[string]any // expected attrs (after normalisation)
		raw     bool
	}{
		{name: "json scan", sub: scan, topic: "site/3/scanner/sc-41",
			payload: []byte(`{"barcode":"JD0146","symbology":"code128"}`), source: "3-scanner",
			attrs: map[string]any{"barcode": "JD0146", "symbology": "code128", "dock": "3", "device": "sc-41"}},
		{name: "topic wins over payload device", sub: scan, topic: "site/3/scanner/sc-41",
			payload: []byte(`{"barcode":"X","device":"spoof"}`), source: "3-scanner",
			attrs: map[string]any{"barcode": "X", "dock": "3", "device": "sc-41"}},
		{name: "mapped fields, nested time, extra attrs", sub: mapped, topic: "site/3/scanner/a",
			payload: []byte(`{"code":12345678901234567890123,"sym":"ean13","battery":87,"meta":{"ts":"` + devTime.Format(time.RFC3339Nano) + `","fw":"1.2"},"extra":{"k":[1,2]}}`),
			source:  "3-scanner", time: devTime,
			attrs: map[string]any{"barcode": "12345678901234567890123", "symbology": "ean13", "dock": "3", "device": "a",
				"battery": int64(87), "meta.fw": "1.2", "extra": `{"k":[1,2]}`}},
		{name: "implausible device time", sub: mapped, topic: "site/3/scanner/a",
			payload: []byte(`{"code":"X","meta":{"ts":"2020-01-01T00:00:00Z"}}`), source: "3-scanner",
			attrs: map[string]any{"barcode": "X", "dock": "3", "device": "a",
				"device_time": time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), "time_flag": "implausible"}},
		{name: "future device time", sub: mapped, topic: "site/3/scanner/a",
			payload: []byte(`{"code":"X","meta":{"ts":"` + recv.Add(2*time.Minute).Format(time.RFC3339) + `"}}`), source: "3-scanner",
			attrs: map[string]any{"barcode": "X", "dock": "3", "device": "a",
				"device_time": recv.Add(2 * time.Minute), "time_flag": "implausible"}},
		{name: "unparseable device time", sub: mapped, topic: "site/3/scanner/a",
			payload: []byte(`{"code":"X","meta":{"ts":"yesterday"}}`), source: "3-scanner",
			attrs: map[string]any{"barcode": "X", "dock": "3", "device": "a", "device_time": "yesterday", "time_flag": "unparseable"}},
		{name: "epoch ms time", sub: reading, topic: "t/b1",
			payload: []byte(`{"value":"21.5","unit":"degC","time":` + itoa(devTime.UnixMilli()) + `}`), source: "temp-b1", time: devTime,
			attrs: map[string]any{"value": 21.5, "unit": "degC", "dev": "b1"}},
		{name: "epoch float seconds", sub: reading, topic: "t/b1",
			payload: []byte(`{"value":-3,"time":` + itoa(devTime.Unix()) + `.25}`), source: "temp-b1", time: devTime.Add(250 * time.Millisecond),
			attrs: map[string]any{"value": int64(-3), "dev": "b1"}},
		{name: "cbor reading", sub: withFormat(reading, FormatCBOR), topic: "t/b2",
			payload: cborOf(t, map[string]any{"value": 1.5, "time": cbor.Tag{Number: 1, Content: devTime.Unix()}}),
			source:  "temp-b2", time: devTime, attrs: map[string]any{"value": 1.5, "dev": "b2"}},
		{name: "text scan keeps raw", sub: withRaw(withFormat(scan, FormatText)), topic: "site/1/scanner/z",
			payload: []byte(" ABC123\r\n"), source: "1-scanner", raw: true,
			attrs: map[string]any{"barcode": "ABC123", "dock": "1", "device": "z"}},
		{name: "text reading", sub: withFormat(reading, FormatText), topic: "t/x", payload: []byte("7"),
			source: "temp-x", attrs: map[string]any{"value": int64(7), "dev": "x"}},
		{name: "raw", sub: Subscription{Topic: "door/#rest", Kind: "gpio", Stream: "telemetry", Format: FormatRaw},
			topic: "door/2/a", payload: []byte{0, 1}, source: "door/2/a", raw: true, attrs: map[string]any{"rest": "2/a"}},
		{name: "missing barcode", sub: scan, topic: "site/1/scanner/z", payload: []byte(`{"sym":"x"}`), reason: ReasonMissingField},
		{name: "bool barcode", sub: scan, topic: "site/1/scanner/z", payload: []byte(`{"barcode":true}`), reason: ReasonBadField},
		{name: "float barcode", sub: scan, topic: "site/1/scanner/z", payload: []byte(`{"barcode":1.5}`), reason: ReasonBadField},
		{name: "missing value", sub: reading, topic: "t/x", payload: []byte(`{"unit":"C"}`), reason: ReasonMissingField},
		{name: "value not a number", sub: reading, topic: "t/x", payload: []byte(`{"value":"warm"}`), reason: ReasonBadField},
		{name: "broken json", sub: scan, topic: "site/1/scanner/z", payload: []byte(`{"barcode":`), reason: ReasonMalformed},
		{name: "trailing json", sub: scan, topic: "site/1/scanner/z", payload: []byte(`{"barcode":"x"} {}`), reason: ReasonMalformed},
		{name: "json array", sub: scan, topic: "site/1/scanner/z", payload: []byte(`["x"]`), reason: ReasonNotObject},
		{name: "empty", sub: scan, topic: "site/1/scanner/z", payload: nil, reason: ReasonEmpty},
		{name: "broken cbor", sub: withFormat(reading, FormatCBOR), topic: "t/x", payload: []byte{0xa1, 0x61}, reason: ReasonMalformed},
		{name: "text not utf8", sub: withFormat(scan, FormatText), topic: "site/1/scanner/z", payload: []byte{0xff, 0xfe}, reason: ReasonMalformed},
		{name: "text reading not a number", sub: withFormat(reading, FormatText), topic: "t/x", payload: []byte("n/a"), reason: ReasonBadField},
		{name: "blank text", sub: withFormat(scan, FormatText), topic: "site/1/scanner/z", payload: []byte(" \n"), reason: ReasonEmpty},

		// Input that would be altered rather than refused is malformed.
		{name: "json surrogate pair", sub: scan, topic: "site/1/scanner/z",
			payload: []byte(`{"barcode":"A\ud83d\ude00B","symbology":"\u00e9\u0041"}`), source: "1-scanner",
			attrs: map[string]any{"barcode": "A\U0001F600B", "symbology": "éA", "dock": "1", "device": "z"}},
		{name: "json U+FFFD spelled out", sub: scan, topic: "site/1/scanner/z",
			payload: []byte(`{"barcode":"\ufffd�"}`), source: "1-scanner",
			attrs: map[string]any{"barcode": "\uFFFD\uFFFD", "dock": "1", "device": "z"}},
		{name: "json invalid utf-8", sub: scan, topic: "site/1/scanner/z", payload: []byte("{\"barcode\":\"a\xffb\"}"),
			reason: ReasonMalformed, why: "malformed: json: invalid UTF-8 in string at byte 13"},
		{name: "json invalid utf-8 in an unmapped field", sub: scan, topic: "site/1/scanner/z", payload: []byte("{\"barcode\":\"x\",\"note\":\"\xc3\"}"),
			reason: ReasonMalformed, why: "malformed: json: invalid UTF-8 in string at byte 23"},
		{name: "json lone surrogate", sub: scan, topic: "site/1/scanner/z", payload: []byte(`{"barcode":"\ud800"}`),
			reason: ReasonMalformed, why: `malformed: json: lone surrogate \ud800 at byte 12`},
		{name: "json lone low surrogate", sub: scan, topic: "site/1/scanner/z", payload: []byte(`{"barcode":"x","n":["\uDE00"]}`),
			reason: ReasonMalformed, why: `malformed: json: lone surrogate \ude00 at byte 21`},
		{name: "json duplicate key", sub: scan, topic: "site/1/scanner/z", payload: []byte(`{"barcode":"x","barcode":"y"}`),
			reason: ReasonMalformed, why: `malformed: json: duplicate key "barcode" at byte 15`},
		{name: "json nested duplicate key", sub: mapped, topic: "site/1/scanner/z", payload: []byte(`{"code":"x","meta":{"ts":1,"ts":2}}`),
			reason: ReasonMalformed, why: `malformed: json: duplicate key "ts" at byte 27`},
		{name: "json duplicate key by escape", sub: scan, topic: "site/1/scanner/z", payload: []byte(`{"a":1,"\u0061":2,"barcode":"x"}`),
			reason: ReasonMalformed, why: `malformed: json: duplicate key "a" at byte 7`},
		{name: "json syntax before duplicates", sub: scan, topic: "site/1/scanner/z", payload: []byte(`{"a":1,"a":2,}`),
			reason: ReasonMalformed, why: `malformed: json: invalid character '}' looking for beginning of object key string`},
		{name: "cbor invalid utf-8", sub: withFormat(scan, FormatCBOR), topic: "site/1/scanner/z",
			payload: []byte{0xa1, 0x67, 'b', 'a', 'r', 'c', 'o', 'd', 'e', 0x62, 'x', 0xff},
			reason:  ReasonMalformed, why: "malformed: cbor: invalid UTF-8 string"},
		{name: "cbor invalid utf-8 key", sub: withFormat(scan, FormatCBOR), topic: "site/1/scanner/z",
			payload: []byte{0xa1, 0x62, 'a', 0xff, 0x01},
			reason:  ReasonMalformed, why: "malformed: cbor: invalid UTF-8 string"},
		{name: "cbor byte string key", sub: withFormat(scan, FormatCBOR), topic: "site/1/scanner/z",
			payload: []byte{0xa2, 0x61, 'a', 0x01, 0x41, 'a', 0x02},
			reason:  ReasonMalformed, why: "malformed: cbor: cannot unmarshal byte string into Go value of type string"},
		{name: "cbor nested duplicate key", sub: withFormat(scan, FormatCBOR), topic: "site/1/scanner/z",
			payload: []byte{0xa1, 0x61, 'm', 0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02},
			reason:  ReasonMalformed, why: `malformed: cbor: found duplicate map key "a" at map element index 1`},
		{name: "text invalid utf-8 inside", sub: withFormat(scan, FormatText), topic: "site/1/scanner/z", payload: []byte("ABC\xe2\x82"),
			reason: ReasonMalformed, why: "malformed: text payload is not valid UTF-8 at byte 3"},
		{name: "text U+FFFD is text", sub: withFormat(scan, FormatText), topic: "site/1/scanner/z", payload: []byte("A\uFFFD"),
			source: "1-scanner", attrs: map[string]any{"barcode": "A\uFFFD", "dock": "1", "device": "z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustSub(t, tc.sub)
			vals, ok := s.pat.match(tc.topic)
			if !ok {
				t.Fatalf("topic %q does not match %q", tc.topic, tc.sub.Topic)
			}
			ev, rej := s.parse(tc.topic, vals, tc.payload, recv, dt)
			if tc.reason != "" {
				if rej == nil || rej.reason != tc.reason {
					t.Fatalf("reject = %v, want reason %s (event %+v)", rej, tc.reason, ev)
				}
				if tc.why != "" && rej.String() != tc.why {
					t.Errorf("reject\n got %s\nwant %s", rej, tc.why)
				}
				return
			}
			if rej != nil {
				t.Fatalf("rejected: %v", rej)
			}
			wantTime := tc.time
			if wantTime.IsZero() {
				wantTime = recv
			}
			if ev.Source != tc.source || !ev.Time.Equal(wantTime) || !ev.Received.Equal(recv) || ev.Kind != tc.sub.Kind {
				t.Errorf("source %q time %v received %v kind %q; want %q %v", ev.Source, ev.Time, ev.Received, ev.Kind, tc.source, wantTime)
			}
			if (ev.Raw != nil) != tc.raw {
				t.Errorf("raw = %q, want kept=%v", ev.Raw, tc.raw)
			}
			// The event must satisfy the wire contract once the sink stamps it.
			ev.Gateway, ev.Seq = "gw", 1
			b, err := event.Marshal(ev)
			if err != nil {
				t.Fatalf("event breaks the contract: %v", err)
			}
			dec, err := event.Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(dec.Attrs, tc.attrs) {
				t.Errorf("attrs\n got %#v\nwant %#v", dec.Attrs, tc.attrs)
			}
		})
	}
}

func withFormat(s Subscription, f string) Subscription { s.Format = f; return s }
func withRaw(s Subscription) Subscription              { s.KeepRaw = true; return s }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// benchScan is a typical scanner payload.
var benchScan = []byte(`{"barcode":"JD014600006512345678","symbology":"code128","ts":1733320000123}`)

func BenchmarkParseJSONScan(b *testing.B) {
	s := mustSub(&testing.T{}, Subscription{Topic: "site/+dock/scanner/+device", Kind: "scan", Source: "{dock}-scanner"})
	topic := "site/3/scanner/sc-41"
	vals, _ := s.pat.match(topic)
	dt := DeviceTimeConfig{MaxPast: units.Duration(time.Hour), MaxFuture: units.Duration(time.Minute)}
	b.ReportAllocs()
	for b.Loop() {
		if _, rej := s.parse(topic, vals, benchScan, recv, dt); rej != nil {
			b.Fatal(rej)
		}
	}
}

func BenchmarkDecodeJSON(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchScan)))
	for b.Loop() {
		if _, rej := decodeObject(benchScan, FormatJSON); rej != nil {
			b.Fatal(rej)
		}
	}
}
