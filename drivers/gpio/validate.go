package gpio

import (
	"fmt"
	"regexp"
	"time"

	"github.com/edgegw/gateway/units"
)

var (
	// pinRe accepts the names periph gives pins: GPIO17, P1_11, 17, PA10,
	// XIO-P0, and gpiochip line names.
	pinRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}$`)
)

// Validate checks the config without I/O. It returns nil or units.Errors,
// one *units.FieldError per problem, its Path relative to the driver's
// section ("inputs[1].debounce"; the gateway's config loader puts the
// source's path in front and finds the line). Two names that alias the same pin (e.g.
// "17" and "GPIO17") are only caught by Run, which resolves them.
func (c *Config) Validate() error {
	var v units.Errors
	if len(c.Inputs) == 0 && len(c.Outputs) == 0 {
		v.Add("inputs", "at least one input or output is required")
	}
	pins := map[string]string{} // pin name -> path of its first use
	usePin := func(path, pin string) {
		switch {
		case pin == "":
			v.Add(path, "required")
		case !pinRe.MatchString(pin):
			v.Add(path, "%q is not a pin name (e.g. GPIO17, P1_11, 17)", pin)
		case pins[pin] != "":
			v.Add(path, "pin %q is already used by %s", pin, pins[pin])
		default:
			pins[pin] = path
		}
	}
	for i := range c.Inputs {
		in := &c.Inputs[i]
		p := fmt.Sprintf("inputs[%d]", i)
		usePin(p+".pin", in.Pin)
		switch {
		case in.Source == "":
			v.Add(p+".source", "required (the event source, e.g. door-contact-2)")
		case !units.ValidName(in.Source):
			v.Add(p+".source", "%q: %s", in.Source, units.NameRule)
		}
		if in.Stream != "" && !units.ValidName(in.Stream) {
			v.Add(p+".stream", "%q: %s", in.Stream, units.NameRule)
		}
		if _, ok := pulls[in.Pull]; !ok {
			v.Add(p+".pull", "%q: want up, down, none or float", in.Pull)
		}
		if _, ok := edgeModes[in.Edge]; !ok {
			v.Add(p+".edge", "%q: want rising, falling or both", in.Edge)
		}
		if d := in.debounce(); d < 0 || d > MaxDebounce {
			v.Add(p+".debounce", "%s is out of range 0s..%s", d, MaxDebounce)
		}
		if in.Poll != 0 && (in.Poll.D() < MinPoll || in.Poll.D() > MaxPoll) {
			v.Add(p+".poll", "%s is out of range %s..%s", in.Poll, MinPoll, MaxPoll)
		}
		if in.Count != nil {
			if d := in.countInterval(); d < MinCountInterval || d > MaxCountInterval {
				v.Add(p+".count.interval", "%s is out of range %s..%s", d, MinCountInterval, fmtDur(MaxCountInterval))
			}
		} else if in.CountOnly {
			v.Add(p+".count_only", "needs count")
		}
	}
	for i := range c.Outputs {
		o := &c.Outputs[i]
		p := fmt.Sprintf("outputs[%d]", i)
		usePin(p+".pin", o.Pin)
		if o.Name != "" && !units.ValidName(o.Name) {
			v.Add(p+".name", "%q: %s", o.Name, units.NameRule)
		}
		r := &o.When
		switch r.Signal {
		case SignalUplinkOffline:
			if r.Threshold != 0 {
				v.Add(p+".when.threshold", "applies only to signal %s", SignalBufferAbove)
			}
		case SignalBufferAbove:
			if !(r.Threshold > 0 && r.Threshold <= 1) {
				v.Add(p+".when.threshold", "%g: want a fill fraction in (0, 1], e.g. 0.8", r.Threshold)
			}
		case SignalRules:
			if r.Threshold != 0 || r.After != 0 {
				v.Add(p+".when", "signal %s takes no threshold or after (the rules' actions say when)", SignalRules)
			}
		case "":
			v.Add(p+".when.signal", "required (%s, %s or %s)", SignalUplinkOffline, SignalBufferAbove, SignalRules)
		default:
			v.Add(p+".when.signal", "%q: want %s, %s or %s", r.Signal, SignalUplinkOffline, SignalBufferAbove, SignalRules)
		}
		if r.After < 0 || r.After.D() > MaxAfter {
			v.Add(p+".when.after", "%s is out of range 0s..%s", r.After, fmtDur(MaxAfter))
		}
	}
	return v.Err()
}

// fmtDur prints whole hours as "24h" rather than "24h0m0s".
func fmtDur(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}
