// Package sinktest has what the drivers' tests share: the in-memory
// drivers.Sink, which records what a driver commits and quarantines and can
// fail or delay a commit on demand, an Env that logs to the test, and Start.
package sinktest

import (
	"context"
	"log/slog"
	"sync"
	"testing"
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
	read        int           // events taken by Next
	wake        chan struct{} // closed by the next Emit, for Next
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
	if s.wake != nil {
		close(s.wake)
		s.wake = nil
	}
	return nil
}

// Guard bounds Next's and Start's waits, so that a bug fails the test
// instead of hanging it. It is never what makes a test pass.
const Guard = 10 * time.Second

// Next returns the first committed event Next has not returned yet,
// waiting for it up to Guard.
func (s *Mem) Next(t testing.TB) *event.Event {
	t.Helper()
	deadline := time.NewTimer(Guard)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if s.read < len(s.events) {
			e := s.events[s.read]
			s.read++
			s.mu.Unlock()
			return e
		}
		if s.wake == nil {
			s.wake = make(chan struct{})
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-deadline.C:
			t.Fatal("no event committed")
			return nil
		}
	}
}

// None fails t if an event was committed that Next has not returned.
func (s *Mem) None(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.read < len(s.events) {
		t.Fatalf("unexpected event %+v", s.events[s.read])
	}
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

// Env is a drivers.Env for gateway "gw-test" whose logger writes to t.
func Env(t testing.TB) drivers.Env {
	return drivers.Env{Gateway: "gw-test", Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// Start runs d until stop is called or the test ends, and checks that Run
// then returns nil. stop returns once Run has.
func Start(t testing.TB, d drivers.Driver, sink drivers.Sink) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx, sink) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(Guard):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
