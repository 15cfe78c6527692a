package uplink

import (
	"errors"
	"testing"
	"time"
)

func TestWindowAcksOnlyTheReceiptedPrefix(t *testing.T) {
	w := newWindow()
	t0 := time.Unix(0, 0)
	for _, s := range []uint64{3, 5, 6, 9} {
		w.add(s, t0)
	}
	if n, oldest := w.inFlight(); n != 4 || !oldest.Equal(t0) {
		t.Fatalf("inFlight = %d, %v", n, oldest)
	}
	if _, ok := w.complete(6, nil, t0.Add(time.Second)); !ok {
		t.Fatal("complete(6) not ok")
	}
	if seq, n := w.ackable(); seq != 0 || n != 0 {
		t.Fatalf("ackable after an out-of-order receipt = %d, %d", seq, n)
	}
	lat, _ := w.complete(3, nil, t0.Add(2*time.Second))
	if lat != 2*time.Second {
		t.Errorf("latency %v", lat)
	}
	if seq, n := w.ackable(); seq != 3 || n != 1 {
		t.Fatalf("ackable = %d, %d; want 3, 1", seq, n)
	}
	w.complete(5, nil, t0)
	if seq, n := w.ackable(); seq != 6 || n != 3 {
		t.Fatalf("ackable = %d, %d; want 6, 3", seq, n)
	}
	if _, ok := w.complete(6, nil, t0); ok {
		t.Error("a second receipt for 6 was taken")
	}
	if _, ok := w.complete(7, nil, t0); ok {
		t.Error("a receipt for a seq never sent was taken")
	}
	if n, _ := w.inFlight(); n != 1 {
		t.Errorf("in flight %d, want 1", n)
	}
	boom := errors.New("boom")
	w.complete(9, boom, t0)
	w.fail(errors.New("second"))
	if err := w.failed(); err == nil || !errors.Is(err, boom) {
		t.Errorf("failed = %v, want the first error", err)
	}
	select {
	case <-w.dead:
	default:
		t.Error("dead not closed")
	}
	if seq, _ := w.ackable(); seq != 6 {
		t.Errorf("a failure moved the ack point to %d", seq)
	}
}

func TestWindowCompacts(t *testing.T) {
	w := newWindow()
	for s := uint64(1); s <= 10000; s++ {
		w.add(s, time.Time{})
		w.complete(s, nil, time.Time{})
	}
	if len(w.slots) > 2 {
		t.Errorf("%d slots kept for an empty window", len(w.slots))
	}
	if seq, n := w.ackable(); seq != 10000 || n != 10000 {
		t.Errorf("ackable %d %d", seq, n)
	}
}
