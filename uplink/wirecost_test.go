package uplink

import "testing"

// The bandwidth limit charges what an event costs on the wire: payload
// scaled by the stream's measured wire/payload ratio once there is enough
// to measure, the payload itself before.
func TestWireCost(t *testing.T) {
	f := &forwarder{st: &stateBox{}}
	if got := f.wireCost(200); got != 200 {
		t.Fatalf("nothing sent yet: cost %d, want the payload 200", got)
	}
	f.st.update(func(s *StreamState) { s.SentBytes, s.WireBytes = 1_000_000, 120_000 })
	if got := f.wireCost(200); got != 24 {
		t.Fatalf("ratio 0.12: cost %d, want 24", got)
	}
	f.st.update(func(s *StreamState) { s.WireBytes = 9_000_000 })
	if got := f.wireCost(200); got != 400 {
		t.Fatalf("ratio capped at 2: cost %d, want 400", got)
	}
	f.st.update(func(s *StreamState) { s.SentBytes, s.WireBytes = 1_000_000, 1 })
	if got := f.wireCost(1); got != 1 {
		t.Fatalf("cost never below 1, got %d", got)
	}
}
