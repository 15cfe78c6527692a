package i2c

import (
	"testing"
	"time"

	iclock "github.com/edgegw/gateway/drivers/internal/clock"
	"github.com/edgegw/gateway/drivers/internal/sinktest"
)

// guard bounds every wait of a test (sinktest.Guard: the shared sink's
// waits are bounded the same).
const guard = sinktest.Guard

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
