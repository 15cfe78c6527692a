package gpio

import (
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/drivers/internal/sinktest"
)

func TestCommanded(t *testing.T) {
	at := t0
	tests := []struct {
		name     string
		cmd      drivers.OutputCommand
		now      time.Duration
		wantOn   bool
		wantNext time.Duration // -1: none
	}{
		{"on", drivers.OutputCommand{Mode: drivers.OutputOn}, time.Hour, true, -1},
		{"off", drivers.OutputCommand{Mode: drivers.OutputOff}, 0, false, -1},
		{"pulse during", drivers.OutputCommand{Mode: drivers.OutputPulse, For: 5 * time.Second}, 4 * time.Second, true, 5 * time.Second},
		{"pulse after", drivers.OutputCommand{Mode: drivers.OutputPulse, For: 5 * time.Second}, 5 * time.Second, false, -1},
		{"blink first half", drivers.OutputCommand{Mode: drivers.OutputBlink, Period: time.Second, For: 10 * time.Second}, 500 * time.Millisecond, true, time.Second},
		{"blink second half", drivers.OutputCommand{Mode: drivers.OutputBlink, Period: time.Second, For: 10 * time.Second}, 1500 * time.Millisecond, false, 2 * time.Second},
		{"blink last turn capped at the end", drivers.OutputCommand{Mode: drivers.OutputBlink, Period: 4 * time.Second, For: 10 * time.Second}, 8500 * time.Millisecond, true, 10 * time.Second},
		{"blink ended", drivers.OutputCommand{Mode: drivers.OutputBlink, Period: time.Second, For: 10 * time.Second}, 10 * time.Second, false, -1},
		{"blink forever", drivers.OutputCommand{Mode: drivers.OutputBlink, Period: time.Second}, time.Hour, true, time.Hour + time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			on, next := commanded(command{cmd: tt.cmd, at: at}, true, at.Add(tt.now))
			want := time.Time{}
			if tt.wantNext >= 0 {
				want = at.Add(tt.wantNext)
			}
			if on != tt.wantOn || !next.Equal(want) {
				t.Fatalf("commanded = %v, %v; want %v, %v", on, next, tt.wantOn, want)
			}
		})
	}
	if on, _ := commanded(command{}, false, at); on {
		t.Fatal("an output without a command is on")
	}
}

// TestDriveOutput pulses a rules output next to an uplink-state output: the
// pulse turns the pin on at once and off when it ends, by the clock; the
// state output is untouched.
func TestDriveOutput(t *testing.T) {
	light, warn := newPin("GPIO27", 27), newPin("GPIO22", 22)
	cfg := &Config{Outputs: []Output{
		{Pin: "GPIO27", Name: "red-light", When: Rule{Signal: SignalRules}},
		{Pin: "GPIO22", Name: "offline", When: Rule{Signal: SignalUplinkOffline}},
	}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := cfg.CommandOutputs(); len(got) != 1 || got[0] != "red-light" {
		t.Fatalf("CommandOutputs = %v", got)
	}
	clk := newFakeClock(t0)
	d := newTestDriver(t, cfg, testBoard{"GPIO27": light, "GPIO22": warn}, clk)
	d.SetState(State{UplinkOnline: true})
	stop := sinktest.Start(t, d, &sinktest.Mem{})
	defer stop()
	if l := light.nextOut(t); l != gpio.Low {
		t.Fatalf("light starts %s", l)
	}
	if l := warn.nextOut(t); l != gpio.Low {
		t.Fatalf("offline output starts %s", l)
	}
	if err := d.DriveOutput("offline", drivers.OutputCommand{Mode: drivers.OutputOn}); err == nil {
		t.Fatal("a state output took a command")
	}
	if err := d.DriveOutput("red-light", drivers.OutputCommand{Mode: drivers.OutputPulse, For: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if l := light.nextOut(t); l != gpio.High {
		t.Fatalf("light %s after the pulse began", l)
	}
	clk.waitFor(t, t0.Add(5*time.Second))
	clk.Set(t0.Add(5 * time.Second))
	if l := light.nextOut(t); l != gpio.Low {
		t.Fatalf("light %s after the pulse ended", l)
	}
	// A second pulse, after the first ended, turns it on again.
	clk.Set(t0.Add(time.Minute))
	if err := d.DriveOutput("red-light", drivers.OutputCommand{Mode: drivers.OutputPulse, For: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if l := light.nextOut(t); l != gpio.High {
		t.Fatalf("light %s after the second pulse began", l)
	}
	select {
	case l := <-warn.outs:
		t.Fatalf("state output written (%s) by a command", l)
	default:
	}
}
