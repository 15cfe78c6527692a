package gpio

import (
	"context"
	"errors"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/drivers/internal/sinktest"
	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/units"
)

// want is the expected part of a gpio event.
type want struct {
	at    time.Duration // after t0
	level bool
	since int64 // since_prev_ms; -1: absent
}

func checkEdge(t *testing.T, e *event.Event, in Input, w want) {
	t.Helper()
	if e.Kind != event.KindGPIO || e.Source != in.Source || e.Stream != in.stream() {
		t.Fatalf("event %s/%s/%s, want gpio/%s/%s", e.Kind, e.Source, e.Stream, in.Source, in.stream())
	}
	if !e.Time.Equal(t0.Add(w.at)) {
		t.Errorf("time %s, want t0+%s", e.Time.Sub(t0), w.at)
	}
	if e.Attrs["pin"] != in.Pin || e.Attrs["level"] != w.level || e.Attrs["edge"] != edgeName(w.level) {
		t.Errorf("attrs %v, want pin %s level %v", e.Attrs, in.Pin, w.level)
	}
	since, ok := e.Attrs["since_prev_ms"]
	switch {
	case w.since < 0 && ok:
		t.Errorf("since_prev_ms %v on a first edge", since)
	case w.since >= 0 && since != w.since:
		t.Errorf("since_prev_ms %v, want %d", since, w.since)
	}
	// The attributes must be ones the envelope can carry.
	if _, err := event.Normalize(e); err != nil {
		t.Errorf("event does not normalize: %v", err)
	}
}

// edgeRig is one input on a fake pin, started.
func edgeRig(t *testing.T, in Input) (*Driver, *testPin, *fakeClock, *sinktest.Mem, func()) {
	p := newPin(in.Pin, 17)
	clk := newFakeClock(t0)
	d := newTestDriver(t, &Config{Inputs: []Input{in}}, testBoard{in.Pin: p}, clk)
	sink := &sinktest.Mem{}
	stop := sinktest.Start(t, d, sink)
	return d, p, clk, sink, stop
}

func TestEdgesBoth(t *testing.T) {
	in := Input{Pin: "GPIO17", Source: "door-contact-2", Pull: "down"}
	_, p, clk, sink, _ := edgeRig(t, in)
	p.edge(t, clk, t0.Add(time.Second), gpio.High)
	p.edge(t, clk, t0.Add(2500*time.Millisecond), gpio.Low)
	p.edge(t, clk, t0.Add(4*time.Second), gpio.High)
	checkEdge(t, sink.Next(t), in, want{time.Second, true, -1})
	checkEdge(t, sink.Next(t), in, want{2500 * time.Millisecond, false, 1500})
	checkEdge(t, sink.Next(t), in, want{4 * time.Second, true, 1500})
	if pull, edge := p.asked(); pull != gpio.PullDown || edge != gpio.BothEdges {
		t.Errorf("In(%s, %s), want In(PullDown, BothEdges)", pull, edge)
	}
}

// TestDebounceBoth: bounces inside the window are ignored; an edge at or
// past its end is taken; a level that changed inside the window (a press
// shorter than the window) is reported when the window closes.
func TestDebounceBoth(t *testing.T) {
	in := Input{Pin: "GPIO17", Source: "button", Pull: "down"} // debounce 20ms
	_, p, clk, sink, _ := edgeRig(t, in)
	p.edge(t, clk, t0.Add(ms(1000)), gpio.High) // press: taken
	p.edge(t, clk, t0.Add(ms(1005)), gpio.Low)  // bounce
	p.edge(t, clk, t0.Add(ms(1012)), gpio.High) // bounce; the pin stays high
	p.edge(t, clk, t0.Add(ms(1500)), gpio.Low)  // release: taken
	p.edge(t, clk, t0.Add(ms(1519)), gpio.High) // bounce (19ms)
	p.edge(t, clk, t0.Add(ms(1519)+500*time.Microsecond), gpio.Low)
	p.edge(t, clk, t0.Add(ms(1520)), gpio.High) // exactly 20ms: taken
	checkEdge(t, sink.Next(t), in, want{ms(1000), true, -1})
	checkEdge(t, sink.Next(t), in, want{ms(1500), false, 500})
	checkEdge(t, sink.Next(t), in, want{ms(1520), true, 20})

	// A short press: down and up again within the window. The release is
	// a bounce when it happens, and is reported when the window closes.
	p.edge(t, clk, t0.Add(ms(3000)), gpio.Low)
	p.edge(t, clk, t0.Add(ms(3010)), gpio.High)
	clk.waitFor(t, t0.Add(ms(3020)))
	clk.Set(t0.Add(ms(3020)))
	checkEdge(t, sink.Next(t), in, want{ms(3000), false, 1480})
	checkEdge(t, sink.Next(t), in, want{ms(3020), true, 20})
	sink.None(t)
}

// TestDebounceRising counts bounces exactly: a single-edge mode has no
// settle read, so nothing races with the edges.
func TestDebounceRising(t *testing.T) {
	in := Input{Pin: "GPIO5", Source: "beam", Edge: "rising", Debounce: ptr(units.Duration(ms(50)))}
	d, p, clk, sink, stop := edgeRig(t, in)
	for _, at := range []int{0, 10, 40, 60, 100, 110} { // taken: 0, 60, 110
		p.edge(t, clk, t0.Add(ms(1000+at)), gpio.High)
	}
	checkEdge(t, sink.Next(t), in, want{ms(1000), true, -1})
	checkEdge(t, sink.Next(t), in, want{ms(1060), true, 60})
	checkEdge(t, sink.Next(t), in, want{ms(1110), true, 50})
	stop()
	if s := d.Stats(); s.Edges != 3 || s.Bounces != 3 || s.Emitted != 3 {
		t.Errorf("stats %+v, want 3 edges, 3 bounces, 3 emitted", s)
	}
	if _, edge := p.asked(); edge != gpio.RisingEdge {
		t.Errorf("asked the pin for %s, want RisingEdge", edge)
	}
}

func TestDebounceOff(t *testing.T) {
	in := Input{Pin: "GPIO5", Source: "beam", Edge: "rising", Debounce: ptr(units.Duration(0))}
	_, p, clk, sink, _ := edgeRig(t, in)
	for i := range 3 {
		p.edge(t, clk, t0.Add(time.Duration(i)*time.Microsecond), gpio.High)
	}
	for i := range 3 {
		if e := sink.Next(t); !e.Time.Equal(t0.Add(time.Duration(i) * time.Microsecond)) {
			t.Fatalf("event %d at t0+%s", i, e.Time.Sub(t0))
		}
	}
}

// TestActiveLow: levels and edges are logical; a logical rising edge of an
// active-low pin is asked of the hardware as a falling edge.
func TestActiveLow(t *testing.T) {
	t.Run("both", func(t *testing.T) {
		in := Input{Pin: "GPIO6", Source: "door", Pull: "up", ActiveLow: true}
		_, p, clk, sink, _ := edgeRig(t, in)
		p.edge(t, clk, t0.Add(ms(100)), gpio.Low)  // pulled to ground: active
		p.edge(t, clk, t0.Add(ms(900)), gpio.High) // released
		checkEdge(t, sink.Next(t), in, want{ms(100), true, -1})
		checkEdge(t, sink.Next(t), in, want{ms(900), false, 800})
	})
	t.Run("rising", func(t *testing.T) {
		in := Input{Pin: "GPIO6", Source: "door", Pull: "up", ActiveLow: true, Edge: "rising"}
		_, p, clk, sink, _ := edgeRig(t, in)
		p.edge(t, clk, t0.Add(ms(100)), gpio.Low)
		checkEdge(t, sink.Next(t), in, want{ms(100), true, -1})
		if pull, edge := p.asked(); pull != gpio.PullUp || edge != gpio.FallingEdge {
			t.Errorf("In(%s, %s), want In(PullUp, FallingEdge)", pull, edge)
		}
	})
}

// TestPulseCounter: accepted edges are counted per interval, intervals are
// back to back on the clock, an empty interval reports zero, and count_only
// sends no per-edge events.
func TestPulseCounter(t *testing.T) {
	in := Input{Pin: "GPIO23", Source: "flow-meter", Edge: "rising", Count: &Count{Interval: units.Duration(10 * time.Second)}, CountOnly: true}
	_, p, clk, sink, _ := edgeRig(t, in)
	clk.waitFor(t, t0.Add(10*time.Second))
	for _, at := range []int{1000, 1005, 2000, 3000, 4000, 9999} { // 1005 bounces
		p.edge(t, clk, t0.Add(ms(at)), gpio.High)
	}
	clk.Set(t0.Add(10 * time.Second))
	checkCount(t, sink.Next(t), in, 10*time.Second, 5)

	clk.waitFor(t, t0.Add(20*time.Second))
	p.edge(t, clk, t0.Add(12*time.Second), gpio.High)
	p.edge(t, clk, t0.Add(20*time.Second-time.Nanosecond), gpio.High)
	clk.Set(t0.Add(20 * time.Second))
	checkCount(t, sink.Next(t), in, 20*time.Second, 2)

	clk.waitFor(t, t0.Add(30*time.Second))
	clk.Set(t0.Add(30 * time.Second))
	checkCount(t, sink.Next(t), in, 30*time.Second, 0)

	// A late wake-up (a suspended board) reports one longer interval.
	clk.waitFor(t, t0.Add(40*time.Second))
	clk.Set(t0.Add(55 * time.Second))
	e := sink.Next(t)
	checkCount(t, e, in, 40*time.Second, 0)
	clk.waitFor(t, t0.Add(60*time.Second))
	clk.Set(t0.Add(60 * time.Second))
	if e := sink.Next(t); e.Attrs["interval_s"] != 20.0 {
		t.Errorf("interval after a late wake-up: %v s, want 20", e.Attrs["interval_s"])
	}
}

func checkCount(t *testing.T, e *event.Event, in Input, at time.Duration, n int64) {
	t.Helper()
	if e.Kind != event.KindReading || e.Source != in.Source || !e.Time.Equal(t0.Add(at)) {
		t.Fatalf("event %s from %s at t0+%s, want a reading at t0+%s", e.Kind, e.Source, e.Time.Sub(t0), at)
	}
	a := e.Attrs
	if a["count"] != n || a["value"] != n || a["interval_s"] != 10.0 || a["rate_hz"] != float64(n)/10 ||
		a["metric"] != "pulse_count" || a["unit"] != "{pulses}" || a["pin"] != in.Pin {
		t.Errorf("attrs %v, want count %d over 10s", a, n)
	}
}

// TestCountWithEdges: with count but without count_only, the edges are
// reported and counted; the reading comes after them.
func TestCountWithEdges(t *testing.T) {
	in := Input{Pin: "GPIO23", Source: "beam", Edge: "falling", Count: &Count{Interval: units.Duration(time.Minute)}}
	_, p, clk, sink, _ := edgeRig(t, in)
	clk.waitFor(t, t0.Add(time.Minute))
	p.edge(t, clk, t0.Add(time.Second), gpio.Low)
	p.edge(t, clk, t0.Add(2*time.Second), gpio.Low)
	clk.Set(t0.Add(time.Minute))
	checkEdge(t, sink.Next(t), in, want{time.Second, false, -1})
	checkEdge(t, sink.Next(t), in, want{2 * time.Second, false, 1000})
	if e := sink.Next(t); e.Kind != event.KindReading || e.Attrs["count"] != int64(2) {
		t.Fatalf("got %s %v, want a reading of 2", e.Kind, e.Attrs)
	}
}

// TestPolling: a pin without edge detection is sampled every poll period.
func TestPolling(t *testing.T) {
	p := &gpiotest.Pin{N: "GPIO9", Num: 9} // no EdgesChan: In with an edge fails
	in := Input{Pin: "GPIO9", Source: "door", Pull: "down", Poll: units.Duration(ms(10))}
	clk := newFakeClock(t0)
	d := newTestDriver(t, &Config{Inputs: []Input{in}}, testBoard{"GPIO9": p}, clk)
	sink := &sinktest.Mem{}
	sinktest.Start(t, d, sink)

	clk.waitFor(t, t0.Add(ms(10)))
	clk.Set(t0.Add(ms(10))) // no change: nothing
	clk.waitFor(t, t0.Add(ms(20)))
	_ = p.Out(gpio.High)
	clk.Set(t0.Add(ms(20)))
	checkEdge(t, sink.Next(t), in, want{ms(20), true, -1})
	clk.waitFor(t, t0.Add(ms(30)))
	_ = p.Out(gpio.Low)
	clk.Set(t0.Add(ms(95))) // late: the sample is taken then
	checkEdge(t, sink.Next(t), in, want{ms(95), false, 75})
	clk.waitFor(t, t0.Add(ms(100)))
	sink.None(t)
}

// TestEmitRetry: while the sink refuses with ErrFull the events are held
// and retried with a growing backoff, not dropped.
func TestEmitRetry(t *testing.T) {
	in := Input{Pin: "GPIO17", Source: "door", Pull: "down"}
	p := newPin(in.Pin, 17)
	clk := newFakeClock(t0)
	d := newTestDriver(t, &Config{Inputs: []Input{in}}, testBoard{in.Pin: p}, clk)
	sink := &sinktest.Mem{}
	sink.Hook = func(_ context.Context, call int, _ []*event.Event) error {
		if call <= 3 {
			return drivers.ErrFull
		}
		return nil
	}
	stop := sinktest.Start(t, d, sink)
	p.edge(t, clk, t0.Add(time.Second), gpio.High)
	// Backoffs of 100ms, 200ms, 400ms, each from the failed attempt.
	at := t0.Add(time.Second)
	for _, b := range []time.Duration{ms(100), ms(200), ms(400)} {
		at = at.Add(b)
		clk.waitFor(t, at)
		clk.Set(at)
	}
	checkEdge(t, sink.Next(t), in, want{time.Second, true, -1})
	stop()
	if s := d.Stats(); s.EmitRetries != 3 || s.Emitted != 1 || s.Dropped != 0 {
		t.Fatalf("stats %+v, want 3 retries, 1 emitted", s)
	}
}

// TestQueueFull: past the queue's capacity events are dropped, counted,
// and the next event carries the number lost.
func TestQueueFull(t *testing.T) {
	in := Input{Pin: "GPIO17", Source: "door", Edge: "rising", Debounce: ptr(units.Duration(ms(500)))}
	p := newPin(in.Pin, 17)
	clk := newFakeClock(t0)
	d := newTestDriver(t, &Config{Inputs: []Input{in}}, testBoard{in.Pin: p}, clk)
	d.queueMax = 2
	sink := &sinktest.Mem{}
	entered, release := make(chan struct{}), make(chan struct{})
	sink.Hook = func(_ context.Context, call int, _ []*event.Event) error {
		if call == 1 {
			close(entered)
			<-release // hold the first Emit until the queue has overflowed
		}
		return nil
	}
	stop := sinktest.Start(t, d, sink)
	// The first event is being emitted, alone (it stays queued until
	// committed); the second fills the queue; the third and fourth are
	// dropped.
	p.edge(t, clk, t0.Add(time.Second), gpio.High)
	<-entered
	for i := 2; i <= 4; i++ {
		p.edge(t, clk, t0.Add(time.Duration(i)*time.Second), gpio.High)
	}
	// A bounce: once it is taken in, the fourth edge has been handled.
	p.edge(t, clk, t0.Add(ms(4100)), gpio.High)
	close(release)
	sink.Next(t)
	sink.Next(t)
	p.edge(t, clk, t0.Add(5*time.Second), gpio.High)
	e := sink.Next(t)
	if e.Attrs["dropped"] != int64(2) || !e.Time.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("event after the overflow: %v at t0+%s, want dropped=2", e.Attrs, e.Time.Sub(t0))
	}
	stop()
	if s := d.Stats(); s.Dropped != 2 || s.Emitted != 3 {
		t.Fatalf("stats %+v, want 2 dropped, 3 emitted", s)
	}
}

func TestPinNotFound(t *testing.T) {
	cfg := &Config{Inputs: []Input{{Pin: "GPIO17", Source: "door"}}}
	d := newTestDriver(t, cfg, testBoard{"GPIO2": newPin("GPIO2", 2), "GPIO3": newPin("GPIO3", 3)}, newFakeClock(t0))
	err := d.Run(t.Context(), &sinktest.Mem{})
	var nf *PinNotFoundError
	if !errors.As(err, &nf) || nf.Pin != "GPIO17" {
		t.Fatalf("Run: %v, want a PinNotFoundError", err)
	}
	if want := `gpio: pin "GPIO17" not found on this host (known: GPIO2, GPIO3)`; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}

// TestPinNotFoundOnHost runs the real host board: periph's host drivers
// find no pin of that name on this machine.
func TestPinNotFoundOnHost(t *testing.T) {
	d, err := New(&Config{Inputs: []Input{{Pin: "NO_SUCH_PIN", Source: "door"}}}, drivers.Env{})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Run(t.Context(), &sinktest.Mem{})
	var nf *PinNotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("Run: %v, want a PinNotFoundError", err)
	}
	t.Log(err)
}

// TestSamePinTwice: two names for one pin are caught when resolved.
func TestSamePinTwice(t *testing.T) {
	p := newPin("GPIO17", 17)
	cfg := &Config{
		Inputs:  []Input{{Pin: "17", Source: "door"}},
		Outputs: []Output{{Pin: "GPIO17", When: Rule{Signal: SignalUplinkOffline}}},
	}
	d := newTestDriver(t, cfg, testBoard{"17": p, "GPIO17": p}, newFakeClock(t0))
	err := d.Run(t.Context(), &sinktest.Mem{})
	if err == nil || err.Error() != `gpio: outputs[0].pin "GPIO17" is the same pin (GPIO17) as inputs[0].pin` {
		t.Fatalf("Run: %v", err)
	}
}
