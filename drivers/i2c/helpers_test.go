package i2c

import (
	"context"
	"errors"
	iclock "github.com/edgegw/gateway/drivers/internal/clock"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/event"
)

// guard bounds every wait of a test, so that a bug fails the test instead
// of hanging it. It is never what makes a test pass.
const guard = 10 * time.Second

var t0 = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

// fakeClock is the shared manual clock, with this package's step.
type fakeClock struct{ *iclock.Fake }

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{iclock.NewFake(t)} }

// step waits until the driver waits for exactly at, then moves the clock
// there.
func (c *fakeClock) step(t testing.TB, at time.Time) {
	t.Helper()
	if !c.WaitUntil(guard, func(w time.Time) bool { return w.Equal(at) }) {
		var pending []time.Duration
		for _, w := range c.Pending() {
			pending = append(pending, w.Sub(t0))
		}
		t.Fatalf("nothing waits for t0+%s (waiting: t0+%v)", at.Sub(t0), pending)
	}
	c.Set(at)
}

// fakeSink records what it commits; refuse, when set, decides per call
// whether to refuse the batch instead.
type fakeSink struct {
	got    chan *event.Event
	refuse func(call int) error

	mu    sync.Mutex
	calls int
}

func newSink() *fakeSink { return &fakeSink{got: make(chan *event.Event, 1024)} }

func (s *fakeSink) Emit(ctx context.Context, evs []*event.Event) error {
	s.mu.Lock()
	s.calls++
	call := s.calls
	s.mu.Unlock()
	if s.refuse != nil {
		if err := s.refuse(call); err != nil {
			return err
		}
	}
	for _, e := range evs {
		s.got <- e
	}
	return nil
}

func (s *fakeSink) Quarantine(context.Context, string, []byte, string) error {
	return errors.New("not used")
}

func (s *fakeSink) next(t testing.TB) *event.Event {
	t.Helper()
	select {
	case e := <-s.got:
		return e
	case <-time.After(guard):
		t.Fatal("no event")
		return nil
	}
}

func (s *fakeSink) none(t testing.TB) {
	t.Helper()
	select {
	case e := <-s.got:
		t.Fatalf("unexpected event %+v", e)
	default:
	}
}

func envFor(t testing.TB) drivers.Env {
	return drivers.Env{Gateway: "gw-test", Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// start runs d until stop is called or the test ends, and checks that Run
// then returns nil. stop returns once Run has.
func start(t testing.TB, d *Driver, sink drivers.Sink) (stop func()) {
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
			case <-time.After(guard):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
