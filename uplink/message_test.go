package uplink

import (
	"errors"
	"testing"
	"time"

	"github.com/edgegw/gateway/event"
)

func TestMessage(t *testing.T) {
	es := mkEntries(t, "gw-1", "scans", 99, 100, 0) // 100 is a gap event
	for _, e := range es {
		m, ok, err := message("gw-1", "scans", e)
		if err != nil || !ok {
			t.Fatalf("seq %d: %v %v", e.Seq, ok, err)
		}
		ev, _ := event.Unmarshal(e.Data)
		if *m.SequenceID != int64(e.Seq) || m.Key != ev.Source || !m.EventTime.Equal(ev.Time) || &m.Payload[0] != &e.Data[0] {
			t.Errorf("seq %d: message %+v", e.Seq, m)
		}
		want := map[string]string{PropGateway: "gw-1", PropStream: "scans", PropKind: ev.Kind}
		if len(m.Properties) != len(want) {
			t.Errorf("properties %v", m.Properties)
		}
		for k, v := range want {
			if m.Properties[k] != v {
				t.Errorf("property %s = %q, want %q", k, m.Properties[k], v)
			}
		}
	}
	if m, _, _ := message("gw", "s", es[1]); m.Properties[PropKind] != event.KindGap {
		t.Errorf("gap event kind %q", m.Properties[PropKind])
	}
	m, ok, err := message("gw", "s", Entry{Seq: 7, Data: []byte("not cbor")})
	if err != nil || ok || m.Properties[PropDecodeError] == "" || m.Key != "" || m.Properties[PropKind] != "" {
		t.Errorf("undecodable: %+v %v %v", m, ok, err)
	}
	for _, seq := range []uint64{0, 1 << 63} {
		if _, _, err := message("gw", "s", Entry{Seq: seq, Data: es[0].Data}); err == nil {
			t.Errorf("seq %d accepted", seq)
		}
	}
}

// peek must agree with event.Unmarshal on everything event.Marshal writes:
// if the wire format changes, this fails.
func TestPeekMatchesUnmarshal(t *testing.T) {
	es := mkEntries(t, "gw-1", "scans", 95, 105, 64)
	odd := &event.Event{Gateway: "g", Stream: "s", Seq: 1, Source: "ünï", Kind: "reading",
		Time:  time.Date(2199, 12, 31, 23, 59, 59, 999999000, time.UTC),
		Attrs: map[string]any{"value": 21.5, "unit": "C"}}
	b, err := event.Marshal(odd)
	if err != nil {
		t.Fatal(err)
	}
	es = append(es, Entry{Seq: 1, Data: b})
	for _, e := range es {
		h, err := peek(e.Data)
		ev, uerr := event.Unmarshal(e.Data)
		if err != nil || uerr != nil {
			t.Fatalf("seq %d: peek %v, Unmarshal %v", e.Seq, err, uerr)
		}
		if h.source != ev.Source || h.kind != ev.Kind || !h.time.Equal(ev.Time) {
			t.Errorf("seq %d: peek %+v, Unmarshal %s %s %v", e.Seq, h, ev.Source, ev.Kind, ev.Time)
		}
	}
	// Missing fields fall back to Unmarshal's error.
	if _, err := peek([]byte{0xa0}); err == nil || !errors.Is(err, event.ErrInvalid) {
		t.Errorf("empty map: %v", err)
	}
}
