// Package sinktest has the in-memory drivers.Sink the drivers' tests share:
// it records what a driver commits and quarantines, and can fail or delay a
// commit on demand.
package sinktest

import (
	"context"
	"sync"
	"time"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/event"
)

// Mem is an in-memory drivers.Sink. Hook, when set, runs at the start of
// every Emit (call counts from 1) and may fail it; Delay models the commit
// latency.
type Mem struct {
	Hook  func(ctx context.Context, call int, evs []*event.Event) error
	Delay time.Duration

	mu          sync.Mutex
	calls       int
	events      []*event.Event
	batches     []int
	quarantined []Quarantined
}

// Quarantined is one Quarantine call.
type Quarantined struct{ Source, Reason string }

var _ drivers.Sink = (*Mem)(nil)

// Emit records evs as one committed batch, after Hook and Delay.
func (s *Mem) Emit(ctx context.Context, evs []*event.Event) error {
	s.mu.Lock()
	s.calls++
	call := s.calls
	s.mu.Unlock()
	if s.Hook != nil {
		if err := s.Hook(ctx, call, evs); err != nil {
			return err
		}
	}
	if s.Delay > 0 {
		t := time.NewTimer(s.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, evs...)
	s.batches = append(s.batches, len(evs))
	return nil
}

// Quarantine records the source and the reason.
func (s *Mem) Quarantine(_ context.Context, source string, _ []byte, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quarantined = append(s.quarantined, Quarantined{source, reason})
	return nil
}

// Snapshot returns copies of the committed events, the size of each
// committed batch, and the quarantined payloads, in order.
func (s *Mem) Snapshot() (evs []*event.Event, batches []int, q []Quarantined) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*event.Event(nil), s.events...), append([]int(nil), s.batches...), append([]Quarantined(nil), s.quarantined...)
}

// Count is the number of committed events.
func (s *Mem) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}
