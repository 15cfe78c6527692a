package gpio

import (
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/edgegw/gateway/units"
)

// Defaults and limits of the settings.
const (
	DefaultStream    = "telemetry"
	DefaultDebounce  = 20 * time.Millisecond
	MaxDebounce      = 10 * time.Second
	DefaultInterval  = 10 * time.Second // count.interval
	MinCountInterval = time.Second
	MaxCountInterval = 24 * time.Hour
	DefaultPoll      = 10 * time.Millisecond
	MinPoll          = time.Millisecond
	MaxPoll          = time.Second
	MaxAfter         = 24 * time.Hour // outputs[].when.after
)

// Signals an output can follow (outputs[].when.signal).
const (
	SignalUplinkOffline = "uplink_offline"
	SignalBufferAbove   = "buffer_above"
)

// Config is the "gpio" driver's section of a source. The YAML keys are the
// yaml tags; every default is applied by New, so a zero field means "the
// default" where one is named.
type Config struct {
	// Simulate replaces the board with in-memory gpiotest pins whose inputs
	// a goroutine toggles (with contact bounce) every few seconds; for
	// development on a machine without GPIO. Default false.
	Simulate bool     `yaml:"simulate"`
	Inputs   []Input  `yaml:"inputs"`
	Outputs  []Output `yaml:"outputs"`
}

// Input is one watched pin.
type Input struct {
	// Pin is the name periph knows the pin by: "GPIO17", "P1_11", "17".
	Pin string `yaml:"pin"`
	// Source is the event source, e.g. "door-contact-2". Required.
	Source string `yaml:"source"`
	// Stream the events go to. Default "telemetry".
	Stream string `yaml:"stream"`
	// Pull is the internal resistor: up, down, or none (also spelt float:
	// no resistor). Default: leave the pin as the board configured it.
	Pull string `yaml:"pull"`
	// Edge selects the logical edges (after active_low) that are reported
	// and counted: rising, falling or both. Default both.
	Edge string `yaml:"edge"`
	// Debounce: an edge less than this after the last accepted edge is a
	// bounce and is ignored. Default 20ms (nil); 0s turns it off; at most
	// 10s.
	Debounce *units.Duration `yaml:"debounce"`
	// ActiveLow inverts the pin: a low pin is logical level true.
	ActiveLow bool `yaml:"active_low"`
	// Count, when set, emits a reading with the number of accepted edges
	// every Count.Interval.
	Count *Count `yaml:"count"`
	// CountOnly suppresses the per-edge events (requires count): for pulse
	// counters whose single edges are of no interest.
	CountOnly bool `yaml:"count_only"`
	// Poll is the sampling period used only when the pin has no edge
	// detection. Default 10ms; 1ms..1s.
	Poll units.Duration `yaml:"poll"`
}

// Count configures pulse counting.
type Count struct {
	// Interval between count readings. Default 10s; 1s..24h.
	Interval units.Duration `yaml:"interval"`
}

// Output is one pin driven from the gateway's state.
type Output struct {
	// Pin is the name periph knows the pin by.
	Pin string `yaml:"pin"`
	// Name shows in logs, e.g. "stack-light". Default: the pin name.
	Name string `yaml:"name"`
	// When says when the output is on.
	When Rule `yaml:"when"`
	// ActiveLow drives the pin low when the output is on.
	ActiveLow bool `yaml:"active_low"`
}

// Rule turns the output on while Signal has held for at least After.
//
//   - uplink_offline: the uplink is down (since State.UplinkOfflineSince).
//   - buffer_above: State.BufferFill is above Threshold (a fraction, 0..1].
//   - rules: the gateway's rules drive it (DriveOutput: on, off, pulse,
//     blink); off until the first command.
type Rule struct {
	Signal    string         `yaml:"signal"`
	After     units.Duration `yaml:"after"`     // default 0; at most 24h
	Threshold float64        `yaml:"threshold"` // buffer_above only
}

// NewConfig returns a Config with its defaults (an empty one: the defaults
// of inputs and outputs apply per element, see Input and Output).
func NewConfig() *Config { return &Config{} }

// Streams lists the streams the driver emits to, each once, in the order of
// the inputs.
func (c *Config) Streams() []string {
	var out []string
	seen := map[string]bool{}
	for _, in := range c.Inputs {
		s := in.stream()
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func (in *Input) stream() string {
	if in.Stream == "" {
		return DefaultStream
	}
	return in.Stream
}

func (in *Input) debounce() time.Duration {
	if in.Debounce == nil {
		return DefaultDebounce
	}
	return in.Debounce.D()
}

func (in *Input) poll() time.Duration {
	if in.Poll == 0 {
		return DefaultPoll
	}
	return in.Poll.D()
}

func (in *Input) countInterval() time.Duration {
	if in.Count == nil {
		return 0
	}
	if in.Count.Interval == 0 {
		return DefaultInterval
	}
	return in.Count.Interval.D()
}

func (o *Output) name() string {
	if o.Name == "" {
		return o.Pin
	}
	return o.Name
}

// pulls maps the pull setting to periph's.
var pulls = map[string]gpio.Pull{
	"":      gpio.PullNoChange,
	"up":    gpio.PullUp,
	"down":  gpio.PullDown,
	"none":  gpio.Float,
	"float": gpio.Float,
}

// edgeMode is the logical edge selection of an input.
type edgeMode int

const (
	edgeBoth edgeMode = iota
	edgeRising
	edgeFalling
)

var edgeModes = map[string]edgeMode{"": edgeBoth, "both": edgeBoth, "rising": edgeRising, "falling": edgeFalling}

// physical returns the edge to ask the hardware for: a logical rising edge
// of an active-low pin is a physical falling edge.
func (m edgeMode) physical(activeLow bool) gpio.Edge {
	switch {
	case m == edgeBoth:
		return gpio.BothEdges
	case (m == edgeRising) != activeLow:
		return gpio.RisingEdge
	default:
		return gpio.FallingEdge
	}
}
