package gpio

import (
	"errors"
	"slices"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/units"
)

func validInput() Input { return Input{Pin: "GPIO17", Source: "door-contact-2"} }

func TestValidate(t *testing.T) {
	out := func(signal string, after time.Duration, th float64) Output {
		return Output{Pin: "GPIO27", Name: "stack-light", When: Rule{Signal: signal, After: units.Duration(after), Threshold: th}}
	}
	d := func(x time.Duration) units.Duration { return units.Duration(x) }
	tests := []struct {
		name  string
		cfg   Config
		paths []string // the Path of each error, in order; none: valid
	}{
		{"one input", Config{Inputs: []Input{validInput()}}, nil},
		{"one output", Config{Outputs: []Output{out(SignalUplinkOffline, 5*time.Minute, 0)}}, nil},
		{"empty", Config{}, []string{"inputs"}},
		{"full input", Config{Inputs: []Input{{
			Pin: "P1_11", Source: "meter.1", Stream: "flow", Pull: "up", Edge: "falling",
			Debounce: ptr(d(10 * time.Second)), ActiveLow: true, Count: &Count{Interval: d(time.Hour)},
			CountOnly: true, Poll: d(time.Second),
		}}}, nil},
		{"debounce 0s is allowed", Config{Inputs: []Input{{Pin: "4", Source: "b", Debounce: ptr(d(0))}}}, nil},
		{"missing pin and source", Config{Inputs: []Input{{}}}, []string{"inputs[0].pin", "inputs[0].source"}},
		{"bad pin name", Config{Inputs: []Input{{Pin: "GPIO 17", Source: "a"}}}, []string{"inputs[0].pin"}},
		{"bad source", Config{Inputs: []Input{{Pin: "GPIO17", Source: "door contact"}}}, []string{"inputs[0].source"}},
		{"bad stream", Config{Inputs: []Input{{Pin: "GPIO17", Source: "a", Stream: "a/b"}}}, []string{"inputs[0].stream"}},
		{"bad pull and edge", Config{Inputs: []Input{{Pin: "GPIO17", Source: "a", Pull: "weak", Edge: "any"}}},
			[]string{"inputs[0].pull", "inputs[0].edge"}},
		{"debounce too long", Config{Inputs: []Input{validInput(), {Pin: "GPIO18", Source: "b", Debounce: ptr(d(11 * time.Second))}}},
			[]string{"inputs[1].debounce"}},
		{"debounce negative", Config{Inputs: []Input{{Pin: "GPIO18", Source: "b", Debounce: ptr(d(-time.Millisecond))}}},
			[]string{"inputs[0].debounce"}},
		{"poll out of range", Config{Inputs: []Input{{Pin: "GPIO18", Source: "b", Poll: d(2 * time.Second)}}},
			[]string{"inputs[0].poll"}},
		{"count interval too short", Config{Inputs: []Input{{Pin: "GPIO18", Source: "b", Count: &Count{Interval: d(500 * time.Millisecond)}}}},
			[]string{"inputs[0].count.interval"}},
		{"count interval default", Config{Inputs: []Input{{Pin: "GPIO18", Source: "b", Count: &Count{}}}}, nil},
		{"count_only without count", Config{Inputs: []Input{{Pin: "GPIO18", Source: "b", CountOnly: true}}},
			[]string{"inputs[0].count_only"}},
		{"same pin twice in inputs", Config{Inputs: []Input{validInput(), validInput()}}, []string{"inputs[1].pin"}},
		{"same pin in input and output", Config{
			Inputs:  []Input{{Pin: "GPIO27", Source: "a"}},
			Outputs: []Output{out(SignalUplinkOffline, 0, 0)},
		}, []string{"outputs[0].pin"}},
		{"unknown signal", Config{Outputs: []Output{out("cpu_hot", 0, 0)}}, []string{"outputs[0].when.signal"}},
		{"missing signal", Config{Outputs: []Output{out("", 0, 0)}}, []string{"outputs[0].when.signal"}},
		{"threshold missing", Config{Outputs: []Output{out(SignalBufferAbove, 0, 0)}}, []string{"outputs[0].when.threshold"}},
		{"threshold above 1", Config{Outputs: []Output{out(SignalBufferAbove, 0, 80)}}, []string{"outputs[0].when.threshold"}},
		{"threshold on uplink", Config{Outputs: []Output{out(SignalUplinkOffline, 0, 0.5)}}, []string{"outputs[0].when.threshold"}},
		{"after too long", Config{Outputs: []Output{out(SignalUplinkOffline, 25*time.Hour, 0)}}, []string{"outputs[0].when.after"}},
		{"bad output name", Config{Outputs: []Output{{Pin: "GPIO5", Name: "stack light", When: Rule{Signal: SignalUplinkOffline}}}},
			[]string{"outputs[0].name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			var paths []string
			if err != nil {
				var es units.Errors
				if !errors.As(err, &es) {
					t.Fatalf("error %T %v is not units.Errors", err, err)
				}
				for _, e := range es {
					if e.Line != 0 || e.Error() != e.Path+": "+e.Msg {
						t.Errorf("error %q: want %q and no line (the loader locates it)", e, e.Path+": "+e.Msg)
					}
					paths = append(paths, e.Path)
				}
			}
			if !slices.Equal(paths, tt.paths) {
				t.Fatalf("paths %q, want %q (err: %v)", paths, tt.paths, err)
			}
		})
	}
}

func TestStreams(t *testing.T) {
	c := Config{Inputs: []Input{
		{Pin: "1", Source: "a"}, {Pin: "2", Source: "b", Stream: "doors"}, {Pin: "3", Source: "c", Stream: "telemetry"},
	}}
	if got := c.Streams(); !slices.Equal(got, []string{"telemetry", "doors"}) {
		t.Fatalf("Streams() = %q", got)
	}
}

// TestRegistered decodes the documented example the way the config loader
// does (yaml.v3 into NewConfig's value) and builds the driver through the
// registry; nothing is opened.
func TestRegistered(t *testing.T) {
	reg, ok := drivers.Lookup("gpio")
	if !ok {
		t.Fatal(`"gpio" is not registered`)
	}
	cfg := reg.NewConfig()
	doc := `
inputs:
  - pin: GPIO17
    source: door-contact-2
    pull: up
    edge: both
    debounce: 30ms
    active_low: true
  - pin: GPIO23
    source: flow-meter
    stream: meters
    edge: rising
    debounce: 0s
    count: {interval: 10s}
    count_only: true
outputs:
  - pin: GPIO27
    name: stack-light
    when: {signal: uplink_offline, after: 5m}
  - pin: GPIO22
    when: {signal: buffer_above, threshold: 0.8}
    active_low: true
`
	if err := yaml.Unmarshal([]byte(doc), cfg); err != nil {
		t.Fatal(err)
	}
	c := cfg.(*Config)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if in := c.Inputs[0]; in.debounce() != 30*time.Millisecond || !in.ActiveLow || in.stream() != "telemetry" {
		t.Errorf("inputs[0] = %+v", in)
	}
	if in := c.Inputs[1]; in.debounce() != 0 || in.countInterval() != 10*time.Second || !in.CountOnly {
		t.Errorf("inputs[1] = %+v", in)
	}
	if o := c.Outputs[0]; o.When.After.D() != 5*time.Minute || o.When.Signal != SignalUplinkOffline {
		t.Errorf("outputs[0] = %+v", o)
	}
	if o := c.Outputs[1]; o.When.Threshold != 0.8 || o.name() != "GPIO22" {
		t.Errorf("outputs[1] = %+v", o)
	}
	if _, err := reg.New(cfg, drivers.Env{}); err != nil {
		t.Fatal(err)
	}
}

// Durations take the syntax of every config, days included.
func TestDurationSyntax(t *testing.T) {
	var c Config
	doc := "inputs:\n  - {pin: GPIO17, source: a, count: {interval: 1d}, poll: 250ms}\noutputs:\n  - {pin: GPIO27, when: {signal: uplink_offline, after: 1h30m}}\n"
	if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := c.Inputs[0].countInterval(); got != 24*time.Hour {
		t.Errorf("count.interval = %v, want 24h", got)
	}
	if got := c.Inputs[0].poll(); got != 250*time.Millisecond {
		t.Errorf("poll = %v, want 250ms", got)
	}
	if got := c.Outputs[0].When.After.D(); got != 90*time.Minute {
		t.Errorf("after = %v, want 1h30m", got)
	}
	c.Outputs[0].When.After = units.Duration(2 * units.Day)
	var es units.Errors
	if err := c.Validate(); !errors.As(err, &es) || len(es) != 1 || *es[0] != (units.FieldError{Path: "outputs[0].when.after", Msg: "2d is out of range 0s..24h"}) {
		t.Fatalf("err = %v", err)
	}
}
