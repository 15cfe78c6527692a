package gpio

import (
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/edgegw/gateway/drivers/internal/sinktest"
	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/units"
)

func TestEvaluate(t *testing.T) {
	offline := Rule{Signal: SignalUplinkOffline, After: units.Duration(5 * time.Minute)}
	buffer := Rule{Signal: SignalBufferAbove, Threshold: 0.8}
	bufferHeld := Rule{Signal: SignalBufferAbove, Threshold: 0.8, After: units.Duration(time.Minute)}
	down := func(since time.Duration) State {
		return State{UplinkOfflineSince: t0.Add(since)}
	}
	tests := []struct {
		name  string
		rule  Rule
		state State
		known bool
		now   time.Duration // after t0
		seen  time.Duration // when the signal was first seen; -1: not yet
		want  bool
	}{
		{"no state yet", offline, State{}, false, time.Hour, -1, false},
		{"online", offline, State{UplinkOnline: true}, true, time.Hour, -1, false},
		{"offline 4m59s", offline, down(0), true, 5*time.Minute - time.Second, -1, false},
		{"offline 5m", offline, down(0), true, 5 * time.Minute, -1, true},
		{"offline 1h", offline, down(0), true, time.Hour, -1, true},
		{"offline since unknown, just seen", offline, State{}, true, time.Hour, -1, false},
		{"offline since unknown, seen 5m ago", offline, State{}, true, time.Hour, 55 * time.Minute, true},
		{"offline since in the future", offline, down(time.Hour), true, 0, -1, false},
		{"buffer at threshold", buffer, State{UplinkOnline: true, BufferFill: 0.8}, true, 0, -1, false},
		{"buffer above", buffer, State{UplinkOnline: true, BufferFill: 0.81}, true, 0, -1, true},
		{"buffer above, not held yet", bufferHeld, State{BufferFill: 0.9}, true, time.Minute, 30 * time.Second, false},
		{"buffer above, held", bufferHeld, State{BufferFill: 0.9}, true, time.Minute, 0, true},
		{"buffer, no state", buffer, State{BufferFill: 1}, false, 0, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen time.Time
			if tt.seen >= 0 {
				seen = t0.Add(tt.seen)
			}
			if got := evaluate(tt.rule, tt.state, tt.known, t0.Add(tt.now), &seen); got != tt.want {
				t.Fatalf("evaluate = %v, want %v", got, tt.want)
			}
		})
	}
	// seen is set when the signal starts holding and cleared when it stops.
	var seen time.Time
	evaluate(buffer, State{BufferFill: 0.9}, true, t0, &seen)
	if !seen.Equal(t0) {
		t.Fatalf("seen %v, want t0", seen)
	}
	evaluate(buffer, State{BufferFill: 0.9}, true, t0.Add(time.Second), &seen)
	if !seen.Equal(t0) {
		t.Fatalf("seen moved to %v", seen)
	}
	evaluate(buffer, State{BufferFill: 0.1}, true, t0.Add(2*time.Second), &seen)
	if !seen.IsZero() {
		t.Fatalf("seen %v after the signal stopped", seen)
	}
}

// TestOutputs drives a stack light (on when the uplink has been offline for
// 5 minutes) and an active-low buffer warning (on above 80% fill) through
// SetState and the passing of time.
func TestOutputs(t *testing.T) {
	light, warn := newPin("GPIO27", 27), newPin("GPIO22", 22)
	cfg := &Config{Outputs: []Output{
		{Pin: "GPIO27", Name: "stack-light", When: Rule{Signal: SignalUplinkOffline, After: units.Duration(5 * time.Minute)}},
		{Pin: "GPIO22", Name: "buffer-warning", When: Rule{Signal: SignalBufferAbove, Threshold: 0.8}, ActiveLow: true},
	}}
	clk := newFakeClock(t0)
	d := newTestDriver(t, cfg, testBoard{"GPIO27": light, "GPIO22": warn}, clk)
	d.SetState(State{UplinkOnline: true, BufferFill: 0.1})
	stop := sinktest.Start(t, d, &sinktest.Mem{})

	// Run starts with every output off.
	if l := light.nextOut(t); l != gpio.Low {
		t.Fatalf("stack light starts %s", l)
	}
	if l := warn.nextOut(t); l != gpio.High {
		t.Fatalf("active-low warning starts %s", l)
	}

	// The uplink goes down: nothing for 5 minutes, then the light.
	d.SetState(State{UplinkOfflineSince: t0, BufferFill: 0.5})
	clk.waitFor(t, t0.Add(time.Second)) // the evaluator's next round
	clk.Set(t0.Add(5 * time.Minute))
	if l := light.nextOut(t); l != gpio.High {
		t.Fatalf("stack light %s after 5m offline", l)
	}

	// Back online, with a full buffer: light off, warning on (pin low).
	d.SetState(State{UplinkOnline: true, BufferFill: 0.85})
	if l := light.nextOut(t); l != gpio.Low {
		t.Fatalf("stack light %s after the uplink came back", l)
	}
	if l := warn.nextOut(t); l != gpio.Low {
		t.Fatalf("warning pin %s above the threshold", l)
	}
	d.SetState(State{UplinkOnline: true, BufferFill: 0.3})
	if l := warn.nextOut(t); l != gpio.High {
		t.Fatalf("warning pin %s below the threshold", l)
	}

	// Offline for long already: on at once.
	d.SetState(State{UplinkOfflineSince: clk.Now().Add(-time.Hour)})
	if l := light.nextOut(t); l != gpio.High {
		t.Fatalf("stack light %s after an hour offline", l)
	}

	// Stopping turns the light off.
	stop()
	if l := light.nextOut(t); l != gpio.Low {
		t.Fatalf("stack light %s after Run ended", l)
	}
}

// TestSimulate runs the simulated board: its goroutine toggles the input
// (with bounces) and the driver reports one edge per toggle.
func TestSimulate(t *testing.T) {
	cfg := &Config{Simulate: true, Inputs: []Input{{Pin: "GPIO17", Source: "sim-door"}}}
	d, err := New(cfg, sinktest.Env(t))
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock(t0)
	d.clock, d.waitTimeout = clk, 5*time.Millisecond
	sink := &sinktest.Mem{}
	sinktest.Start(t, d, sink)
	for i, level := range []bool{true, false} {
		// The toggler waits 2..8s (a settle read waits 20ms at most).
		now := clk.Now()
		clk.waitUntil(t, "the toggler", func(at time.Time) bool { return at.Sub(now) >= 2*time.Second })
		clk.Advance(8 * time.Second)
		e := sink.Next(t)
		if e.Kind != event.KindGPIO || e.Source != "sim-door" || e.Attrs["level"] != level {
			t.Fatalf("toggle %d: %s from %s level %v", i, e.Kind, e.Source, e.Attrs["level"])
		}
	}
}
