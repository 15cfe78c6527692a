package gpio

import (
	"sort"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	iclock "github.com/edgegw/gateway/drivers/internal/clock"
	"github.com/edgegw/gateway/drivers/internal/sinktest"
)

// guard bounds every wait of a test (sinktest.Guard: the shared sink's
// waits are bounded the same).
const guard = sinktest.Guard

var t0 = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

// fakeClock is the shared manual clock, with this package's waits.
type fakeClock struct{ *iclock.Fake }

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{iclock.NewFake(t)} }

// waitFor blocks until some goroutine waits for the clock to reach at.
func (c *fakeClock) waitFor(t testing.TB, at time.Time) {
	t.Helper()
	c.waitUntil(t, at.Format(time.StampMicro), func(w time.Time) bool { return w.Equal(at) })
}

// waitUntil blocks until some goroutine waits for a deadline that ok accepts.
func (c *fakeClock) waitUntil(t testing.TB, what string, ok func(time.Time) bool) {
	t.Helper()
	if !c.WaitUntil(guard, ok) {
		t.Fatalf("nothing waits for %s", what)
	}
}

// testPin is a gpiotest.Pin that tells the test when the driver has taken
// an edge in (done, once the pump is back in WaitForEdge), what it first
// asked In for, and what it wrote.
type testPin struct {
	*gpiotest.Pin
	lastTrue bool          // only the pump goroutine touches it
	ready    chan struct{} // closed on the first WaitForEdge
	once     sync.Once
	done     chan struct{}
	outs     chan gpio.Level

	mu        sync.Mutex
	inCalled  bool
	pullAsked gpio.Pull
	edgeAsked gpio.Edge
}

func newPin(name string, num int) *testPin {
	return &testPin{
		Pin:   &gpiotest.Pin{N: name, Num: num, EdgesChan: make(chan gpio.Level)},
		ready: make(chan struct{}),
		done:  make(chan struct{}, 64),
		outs:  make(chan gpio.Level, 64),
	}
}

func (p *testPin) In(pull gpio.Pull, edge gpio.Edge) error {
	p.mu.Lock()
	if !p.inCalled { // record the setup, not the teardown
		p.inCalled = true
		p.pullAsked, p.edgeAsked = pull, edge
	}
	p.mu.Unlock()
	return p.Pin.In(pull, edge)
}

func (p *testPin) asked() (gpio.Pull, gpio.Edge) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pullAsked, p.edgeAsked
}

func (p *testPin) WaitForEdge(timeout time.Duration) bool {
	p.once.Do(func() { close(p.ready) })
	if p.lastTrue {
		p.lastTrue = false
		p.done <- struct{}{}
	}
	p.lastTrue = p.Pin.WaitForEdge(timeout)
	return p.lastTrue
}

func (p *testPin) Out(l gpio.Level) error {
	if err := p.Pin.Out(l); err != nil {
		return err
	}
	p.outs <- l
	return nil
}

// edge sets the clock to at, makes the pin see an edge to l, and returns once
// the driver has timestamped it and handed it on. (It first waits for the
// driver to wait for edges: gpiotest's In drains EdgesChan.)
func (p *testPin) edge(t testing.TB, clk *fakeClock, at time.Time, l gpio.Level) {
	t.Helper()
	select {
	case <-p.ready:
	case <-time.After(guard):
		t.Fatalf("%s: never waited for an edge", p.N)
	}
	clk.Set(at)
	select {
	case p.EdgesChan <- l:
	case <-time.After(guard):
		t.Fatalf("%s: nobody waits for an edge", p.N)
	}
	select {
	case <-p.done:
	case <-time.After(guard):
		t.Fatalf("%s: edge not taken", p.N)
	}
}

// nextOut returns the next level the driver wrote to the pin.
func (p *testPin) nextOut(t testing.TB) gpio.Level {
	t.Helper()
	select {
	case l := <-p.outs:
		return l
	case <-time.After(guard):
		t.Fatalf("%s: no write", p.N)
		return false
	}
}

// testBoard is a board of fake pins.
type testBoard map[string]pinIO

func (b testBoard) pin(name string) (pinIO, error) {
	if p, ok := b[name]; ok {
		return p, nil
	}
	var known []string
	for n := range b {
		known = append(known, n)
	}
	sort.Strings(known)
	return nil, &PinNotFoundError{Pin: name, Known: known}
}

// newTestDriver builds a driver on fake pins and a fake clock.
func newTestDriver(t testing.TB, cfg *Config, b testBoard, clk *fakeClock) *Driver {
	t.Helper()
	d, err := New(cfg, sinktest.Env(t))
	if err != nil {
		t.Fatal(err)
	}
	d.clock = clk
	d.open = func() (board, error) { return b, nil }
	d.waitTimeout = 5 * time.Millisecond
	return d
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func ptr[T any](v T) *T { return &v }
