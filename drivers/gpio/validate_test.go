package gpio

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/edgegw/gateway/drivers"
)

func validInput() Input { return Input{Pin: "GPIO17", Source: "door-contact-2"} }

func TestValidate(t *testing.T) {
	out := func(signal string, after time.Duration, th float64) Output {
		return Output{Pin: "GPIO27", Name: "stack-light", When: Rule{Signal: signal, After: after, Threshold: th}}
	}
	tests := []struct {
		name  string
		cfg   Config
		paths []string // the FieldPath of each error, in order; none: valid
	}{
		{"one input", Config{Inputs: []Input{validInput()}}, nil},
		{"one output", Config{Outputs: []Output{out(SignalUplinkOffline, 5*time.Minute, 0)}}, nil},
		{"empty", Config{}, []string{"inputs"}},
		{"full input", Config{Inputs: []Input{{
			Pin: "P1_11", Source: "meter.1", Stream: "flow", Pull: "up", Edge: "falling",
			Debounce: ptr(10 * time.Second), ActiveLow: true, Count: &Count{Interval: time.Hour},
			CountOnly: true, Poll: time.Second,
		}}}, nil},
		{"debounce 0s is allowed", Config{Inputs: []Input{{Pin: "4", Source: "b", Debounce: ptr(time.Duration(0))}}}, nil},
		{"missing pin and source", Config{Inputs: []Input{{}}}, []string{"inputs[0].pin", "inputs[0].source"}},
		{"bad pin name", Config{Inputs: []Input{{Pin: "GPIO 17", Source: "a"}}}, []string{"inputs[0].pin"}},
		{"bad source", Config{Inputs: []Input{{Pin: "GPIO17", Source: "door contact"}}}, []string{"inputs[0].source"}},
		{"bad stream", Config{Inputs: []Input{{Pin: "GPIO17", Source: "a", Stream: "a/b"}}}, []string{"inputs[0].stream"}},
		{"bad pull and edge", Config{Inputs: []Input{{Pin: "GPIO17", Source: "a", Pull: "weak", Edge: "any"}}},
			[]string{"inputs[0].pull", "inputs[0].edge"}},
		{"debounce too long", Config{Inputs: []Input{validInput(), {Pin: "GPIO18", Source: "b", Debounce: ptr(11 * time.Second)}}},
			[]string{"inputs[1].debounce"}},
		{"debounce negative", Config{Inputs: []Input{{Pin: "GPIO18", Source: "b", Debounce: ptr(-time.Millisecond)}}},
			[]string{"inputs[0].debounce"}},
		{"poll out of range", Config{Inputs: []Input{{Pin: "GPIO18", Source: "b", Poll: 2 * time.Second}}},
			[]string{"inputs[0].poll"}},
		{"count interval too short", Config{Inputs: []Input{{Pin: "GPIO18", Source: "b", Count: &Count{Interval: 500 * time.Millisecond}}}},
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
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var fp interface{ FieldPath() string }
					if !errors.As(e, &fp) {
						t.Fatalf("error without FieldPath: %v", e)
					}
					if !strings.HasPrefix(e.Error(), fp.FieldPath()+": ") {
						t.Errorf("message %q does not start with its path", e)
					}
					paths = append(paths, fp.FieldPath())
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
	if o := c.Outputs[0]; o.When.After != 5*time.Minute || o.When.Signal != SignalUplinkOffline {
		t.Errorf("outputs[0] = %+v", o)
	}
	if o := c.Outputs[1]; o.When.Threshold != 0.8 || o.name() != "GPIO22" {
		t.Errorf("outputs[1] = %+v", o)
	}
	if _, err := reg.New(cfg, drivers.Env{}); err != nil {
		t.Fatal(err)
	}
}
