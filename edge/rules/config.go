package rules

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/expr-lang/expr/file"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/units"
)

// Limits of the settings.
const (
	MaxRules      = 256
	MaxExprLen    = 2048 // bytes of a when expression
	MaxExprNodes  = 512  // AST nodes of a when expression
	MemoryBudget  = 100_000
	MaxTableRows  = 1_000_000
	DefaultStream = "alerts"
	KindAlert     = "alert"
	KindSummary   = "summary"
	ReasonLost    = "rule-window-lost" // the reason of a gap for a window lost in a crash
)

// Rule is one rule of the config (rules: in the gateway's YAML).
type Rule struct {
	// Name identifies the rule in alerts, metrics and logs. Required.
	Name string `yaml:"name"`
	// Match selects the events the rule sees; empty matches every event.
	Match Match `yaml:"match"`
	// When is the condition, an expr expression of type bool over kind,
	// source, stream, time, attrs and tables. Empty: always.
	When string `yaml:"when"`
	// For: the condition must hold this long, per source, before the
	// rule fires (alert and gpio); the alert then says start and, when
	// the condition stops holding, an end alert says start, end and peak.
	For units.Duration `yaml:"for"`
	// Silence ends a for: stretch that fired when no event of the source
	// matches the rule for this long (a sensor that fell silent while the
	// condition held): the end alert then says reason: silent, and its end
	// is the last event's receive time. 0: the stretch ends only on an
	// event for which the condition does not hold.
	Silence units.Duration `yaml:"silence"`
	// Cooldown: after firing for a source, the rule does not fire again
	// for it for this long.
	Cooldown units.Duration `yaml:"cooldown"`
	// Actions run in order. At least one.
	Actions []Action `yaml:"actions"`
}

// Match selects events. Each non-empty list must contain the event's
// value; Vars must equal the event's topic variables (attrs a named MQTT
// wildcard sets, e.g. "+dock" → attrs.dock).
type Match struct {
	Streams []string          `yaml:"streams"`
	Kinds   []string          `yaml:"kinds"`
	Sources []string          `yaml:"sources"`
	Vars    map[string]string `yaml:"vars"`
}

// Action is one of its fields set.
type Action struct {
	Alert      *Alert      `yaml:"alert"`
	GPIO       *GPIO       `yaml:"gpio"`
	Drop       *Drop       `yaml:"drop"`
	Downsample *Downsample `yaml:"downsample"`
	Deadband   *Deadband   `yaml:"deadband"`
}

// Alert appends an event of kind alert to Stream, in the commit of its
// cause, naming the rule and the cause's stream and seq.
type Alert struct {
	// Stream the alert goes to; default "alerts". It must be a stream of
	// the config, and not one the rule matches.
	Stream string `yaml:"stream"`
	// Attrs of the cause copied into the alert.
	Attrs []string `yaml:"attrs"`
	// Peak names the numeric attr whose largest value over a for: stretch
	// the alerts carry as peak.
	Peak string `yaml:"peak"`
}

// GPIO drives an output (with signal rules) of a gpio source.
type GPIO struct {
	Source string         `yaml:"source"` // the gpio source. Required.
	Output string         `yaml:"output"` // its output's name. Required.
	Mode   string         `yaml:"mode"`   // on, off, pulse or blink. Required.
	For    units.Duration `yaml:"for"`    // pulse (required) and blink (0: until the next command)
	Period units.Duration `yaml:"period"` // blink: default 500ms
}

// Drop keeps matching events (whose condition holds) out of the buffer,
// counted per rule.
type Drop struct{}

// Downsample replaces matching readings by one summary event per source
// and metric per Interval: min, max, mean, count, last.
type Downsample struct {
	Interval units.Duration `yaml:"interval"` // required, 1s..24h
	Metrics  []string       `yaml:"metrics"`  // numeric attrs; default [value]
}

// Deadband forwards a reading when its metric moved more than Threshold
// from the last forwarded one, or MaxInterval has passed since; the others
// go to the rule's downsample window if it has one, else are dropped.
type Deadband struct {
	Metric      string         `yaml:"metric"` // default value
	Threshold   float64        `yaml:"threshold"`
	MaxInterval units.Duration `yaml:"max_interval"` // 0: no forced forward
}

// Table is a lookup table, from an inline map or a CSV file (first column
// the key, second the value; a header row is skipped when header is set).
type Table struct {
	Inline map[string]any `yaml:"inline"`
	CSV    string         `yaml:"csv"`
	Header bool           `yaml:"header"`
}

var nameRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`)

// Env is what Validate checks the rules against: the config's streams and
// the outputs of each source (drivers.OutputNamer), by source name.
type Env struct {
	Streams map[string]bool
	Outputs map[string][]string
}

// Validate checks rules and tables without I/O and compiles every
// expression. Paths are relative to the document ("rules[2].when").
func Validate(rs []Rule, tables map[string]Table, env Env) units.Errors {
	var es units.Errors
	if len(rs) > MaxRules {
		es.Add("rules", "%d rules: at most %d", len(rs), MaxRules)
	}
	for name, t := range tables {
		p := "tables." + name
		if !nameRe.MatchString(name) {
			es.Add(p, "table name: use a letter, then letters, digits, '_' or '-'")
		}
		if (t.CSV == "") == (t.Inline == nil) {
			es.Add(p, "set one of inline or csv")
		}
		if t.Header && t.CSV == "" {
			es.Add(p+".header", "applies only to csv")
		}
	}
	names := map[string]bool{}
	for i := range rs {
		validateRule(&es, fmt.Sprintf("rules[%d]", i), &rs[i], names, tables, env)
	}
	return es
}

func validateRule(es *units.Errors, p string, r *Rule, names map[string]bool, tables map[string]Table, env Env) {
	switch {
	case r.Name == "":
		es.Add(p+".name", "required")
	case !nameRe.MatchString(r.Name):
		es.Add(p+".name", "%q: use a letter, then letters, digits, '_' or '-'", r.Name)
	case names[r.Name]:
		es.Add(p+".name", "rule %q is defined twice", r.Name)
	}
	names[r.Name] = true
	for i, s := range r.Match.Streams {
		if env.Streams != nil && !env.Streams[s] {
			es.Add(fmt.Sprintf("%s.match.streams[%d]", p, i), "%q is not a stream of the config", s)
		}
	}
	if _, err := compileWhen(r.When, tables); err != nil {
		es.Add(p+".when", "rule %s: %s", r.Name, oneLine(err))
	}
	if r.For < 0 || r.Cooldown < 0 {
		es.Add(p, "for and cooldown must not be negative")
	}
	switch {
	case r.Silence < 0:
		es.Add(p+".silence", "must not be negative")
	case r.Silence > 0 && r.For <= 0:
		es.Add(p+".silence", "ends a for: stretch; the rule has no for:")
	case r.Silence > 0 && r.Silence.D() < time.Second:
		es.Add(p+".silence", "at least 1s (the rules are checked for silence every second)")
	}
	if len(r.Actions) == 0 {
		es.Add(p+".actions", "at least one action is required")
	}
	fires, transforms := false, 0
	drop, bands := false, 0
	for i, a := range r.Actions {
		ap := fmt.Sprintf("%s.actions[%d]", p, i)
		n := 0
		if a.Alert != nil {
			n++
			fires = true
			s := a.Alert.stream()
			if env.Streams != nil && !env.Streams[s] {
				es.Add(ap+".alert.stream", "%q is not a stream of the config (add it, with a high priority)", s)
			}
			for _, m := range r.Match.Streams {
				if m == s {
					es.Add(ap+".alert.stream", "%q is a stream the rule matches: alerts go to a stream of their own", s)
				}
			}
			if a.Alert.Peak != "" && r.For == 0 {
				es.Add(ap+".alert.peak", "needs for: (the peak is over the stretch the condition held)")
			}
		}
		if g := a.GPIO; g != nil {
			n++
			fires = true
			validateGPIO(es, ap+".gpio", g, env)
		}
		if a.Drop != nil {
			n++
			transforms++
			drop = true
		}
		if d := a.Downsample; d != nil {
			n++
			transforms++
			if d.Interval.D() < 1e9 || d.Interval.D() > 24*3600e9 {
				es.Add(ap+".downsample.interval", "%s is out of range 1s..24h", d.Interval)
			}
		}
		if d := a.Deadband; d != nil {
			n++
			bands++
			if d.Threshold < 0 {
				es.Add(ap+".deadband.threshold", "must not be negative")
			}
			if d.MaxInterval < 0 {
				es.Add(ap+".deadband.max_interval", "must not be negative")
			}
		}
		if n != 1 {
			es.Add(ap, "set exactly one of alert, gpio, drop, downsample, deadband")
		}
	}
	if transforms > 1 || bands > 1 || (drop && bands > 0) {
		es.Add(p+".actions", "at most one drop or downsample, and one deadband (not with drop)")
	}
	if !fires && (r.For != 0 || r.Cooldown != 0) {
		es.Add(p, "for and cooldown apply to alert and gpio actions; the rule has neither")
	}
}

func validateGPIO(es *units.Errors, p string, g *GPIO, env Env) {
	if g.Source == "" {
		es.Add(p+".source", "required (a gpio source)")
	} else if env.Outputs != nil {
		outs, ok := env.Outputs[g.Source]
		switch {
		case !ok:
			es.Add(p+".source", "%q is not a source with outputs rules can drive", g.Source)
		case g.Output == "":
		case !contains(outs, g.Output):
			es.Add(p+".output", "source %q has no output %q with signal rules (has %s)", g.Source, g.Output, strings.Join(outs, ", "))
		}
	}
	if g.Output == "" {
		es.Add(p+".output", "required")
	}
	switch g.Mode {
	case drivers.OutputOn, drivers.OutputOff:
		if g.For != 0 || g.Period != 0 {
			es.Add(p, "mode %s takes no for or period", g.Mode)
		}
	case drivers.OutputPulse:
		if g.For <= 0 {
			es.Add(p+".for", "required for a pulse")
		}
	case drivers.OutputBlink:
		if g.For < 0 || g.Period < 0 {
			es.Add(p, "for and period must not be negative")
		}
	default:
		es.Add(p+".mode", "%q: want on, off, pulse or blink", g.Mode)
	}
}

func (a *Alert) stream() string {
	if a.Stream == "" {
		return DefaultStream
	}
	return a.Stream
}

func (g *GPIO) command() drivers.OutputCommand {
	c := drivers.OutputCommand{Mode: g.Mode, For: g.For.D(), Period: g.Period.D()}
	if c.Mode == drivers.OutputBlink && c.Period == 0 {
		c.Period = 5e8
	}
	return c
}

func (d *Downsample) metrics() []string {
	if len(d.Metrics) == 0 {
		return []string{"value"}
	}
	return d.Metrics
}

func (d *Deadband) metric() string {
	if d.Metric == "" {
		return "value"
	}
	return d.Metric
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// oneLine is an expression's compile error on one line: expr's message
// and where in the expression (its own snippet spans lines).
func oneLine(err error) string {
	var fe *file.Error
	if errors.As(err, &fe) {
		if fe.Line > 0 {
			return fmt.Sprintf("%s (expression line %d, column %d)", fe.Message, fe.Line, fe.Column+1)
		}
		return fe.Message
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}
