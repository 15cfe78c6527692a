package rules

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/internal/loglimit"
)

// Counters are one rule's counts. They outlive a Set: a swap hands the
// counters of a rule to the rule of the same name in the new Set, so that
// the metrics never go down.
type Counters struct {
	Evaluated  atomic.Uint64 // events the condition was evaluated on
	Fired      atomic.Uint64 // firings (alert and gpio actions run)
	Errors     atomic.Uint64 // evaluations that failed (the event was kept)
	Dropped    atomic.Uint64 // events kept out of the buffer by drop or deadband
	Summarized atomic.Uint64 // readings a stored summary covers
	lastFired  atomic.Int64  // unix nanoseconds; 0: never
}

// LastFired is when the rule last fired (by the events' receive time);
// zero if never.
func (c *Counters) LastFired() time.Time {
	n := c.lastFired.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Options are Compile's settings; every field may be left zero.
type Options struct {
	// Tables are the loaded lookup tables (LoadTables), by name.
	Tables map[string]map[string]any
	// Counters returns a rule's counters; default: new ones per Set.
	Counters func(rule string) *Counters
	// Log gets the rate-limited lines about evaluation errors.
	Log *slog.Logger
	// Restore are stored firing states (FireStates of an earlier Set,
	// maybe of an earlier run); those of rules with the same name,
	// condition and for: are taken over.
	Restore []FireState
}

// Set is the compiled rules of one config. It is safe for concurrent use.
type Set struct {
	rules  []*compiled
	tables map[string]map[string]any
	log    *slog.Logger
	limit  *loglimit.Limiter[string]

	mu    sync.Mutex
	evals sync.Pool // *evaluator
	fire  map[fkey]fireState
	seen  map[fkey]seen // rules with silence: the last matching event per source
	wins  map[wkey]window
	bands map[wkey]band
}

// compiled is one rule ready to run.
type compiled struct {
	Rule
	prog   *vm.Program
	cond   int        // index of the condition among the Set's distinct ones
	vars   []topicVar // Match.Vars, as a slice (ranging over a map is slow)
	c      *Counters
	alerts []*Alert
	gpios  []*GPIO
	drop   bool
	down   *Downsample
	band   *Deadband
}

// topicVar is a Match.Vars entry.
type topicVar struct{ name, want string }

func (r *compiled) fires() bool { return len(r.alerts) > 0 || len(r.gpios) > 0 }

// Compile compiles rules that Validate accepted (it checks them again
// without the config's streams and outputs).
func Compile(rs []Rule, tables map[string]Table, opts Options) (*Set, error) {
	if es := Validate(rs, tables, Env{}); len(es) > 0 {
		return nil, es
	}
	s := &Set{
		tables: opts.Tables,
		log:    opts.Log,
		limit:  loglimit.New[string](time.Minute, 0),
		fire:   map[fkey]fireState{},
		seen:   map[fkey]seen{},
		wins:   map[wkey]window{},
		bands:  map[wkey]band{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	conds := map[string]int{} // a condition's text → its index
	for _, r := range rs {
		prog, err := compileWhen(r.When, tables)
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", r.Name, err)
		}
		idx, seen := conds[r.When]
		if !seen {
			idx = len(conds)
			conds[r.When] = idx
		}
		c := &compiled{Rule: r, prog: prog, cond: idx}
		for name, want := range r.Match.Vars {
			c.vars = append(c.vars, topicVar{name, want})
		}
		if opts.Counters != nil {
			c.c = opts.Counters(r.Name)
		} else {
			c.c = &Counters{}
		}
		for _, a := range r.Actions {
			switch {
			case a.Alert != nil:
				c.alerts = append(c.alerts, a.Alert)
			case a.GPIO != nil:
				c.gpios = append(c.gpios, a.GPIO)
			case a.Drop != nil:
				c.drop = true
			case a.Downsample != nil:
				c.down = a.Downsample
			case a.Deadband != nil:
				c.band = a.Deadband
			}
		}
		s.rules = append(s.rules, c)
	}
	s.restore(opts.Restore)
	n := len(conds)
	s.evals.New = func() any { return &evaluator{env: newEnv(opts.Tables), results: make([]result, n)} }
	return s, nil
}

// Rules returns the rules with their counters, in config order.
func (s *Set) Rules() []RuleInfo {
	if s == nil {
		return nil
	}
	out := make([]RuleInfo, len(s.rules))
	for i, r := range s.rules {
		out[i] = RuleInfo{Name: r.Name, When: r.When, Counters: r.c}
	}
	return out
}

// RuleInfo is one rule of a Set, for status pages and metrics.
type RuleInfo struct {
	Name     string
	When     string
	Counters *Counters
}

// Command is a gpio action to carry out once its commit succeeded.
type Command struct {
	Rule, Source, Output string
	Cmd                  drivers.OutputCommand
}
