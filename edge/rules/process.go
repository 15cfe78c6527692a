package rules

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/internal/loglimit"
)

// fkey is the firing state of one rule for one source.
type fkey struct {
	rule   int
	source string
}

// fireState tracks a for: stretch and the cooldown.
type fireState struct {
	since   time.Time // the condition has held since; zero: not holding
	fired   bool      // fired in this stretch
	last    time.Time // last firing, for the cooldown
	peak    float64
	hasPeak bool
}

// seen is the last event of a source that a rule with silence saw: when,
// and the stream and kind a silent end's alert names.
type seen struct {
	at           time.Time
	stream, kind string
}

// wkey is one window (or deadband) of a rule, source and metric.
type wkey struct {
	rule           int
	source, metric string
}

// window is one open downsample window.
type window struct {
	from, to      time.Time
	stream, unit  string
	min, max, sum float64
	last          float64
	count         uint64
}

// band is the deadband's last forwarded reading.
type band struct {
	v  float64
	at time.Time
}

// Derived is an event a rule made: an alert (Cause set: its stream and seq
// go into the alert once the cause is stored, in the same commit), a
// summary or a gap.
type Derived struct {
	Event *event.Event
	Cause *event.Event
}

// Firing is one firing of a rule, for logs and the rules test tool.
type Firing struct {
	Rule, Source string
	Time         time.Time // the cause's receive time
	Phase        string    // "" (no for:), "start" or "end"
	Actions      []string  // what ran: "alert alerts", "gpio dock3-io/red-light pulse", ...
}

// Outcome is what the rules make of a batch of events: the events to
// store, the events they derived, commands to run after the commit. Its
// state changes apply with Commit, once the batch is stored; an Outcome
// not committed (the append failed) changes nothing.
type Outcome struct {
	Keep     []*event.Event // in input order
	Derived  []Derived      // store after Keep, in the same commit
	Commands []Command      // run after the commit
	Fired    []Firing
	// Opened says that windows were opened: store the marks
	// (Set.MarksWith(o)) before the commit. Closed says some were closed:
	// store Set.Marks() after Commit.
	Opened, Closed bool
	// FireChanged says that firing states (for: stretches, cooldowns)
	// changed: store Set.FireStates() after Commit.
	FireChanged bool

	set    *Set
	fire   map[fkey]fireState
	wins   map[wkey]*window // nil: closed
	bands  map[wkey]band
	counts []delta // by rule index
}

type delta struct{ evaluated, fired, errors, dropped, summarized uint64 }

func (o *Outcome) count(i int) *delta {
	if o.counts == nil {
		o.counts = make([]delta, len(o.set.rules))
	}
	return &o.counts[i]
}

func (o *Outcome) fireState(k fkey) fireState {
	if st, ok := o.fire[k]; ok {
		return st
	}
	return o.set.fire[k]
}

func (o *Outcome) setFire(k fkey, st fireState) {
	if o.fire == nil {
		o.fire = map[fkey]fireState{}
	}
	o.fire[k] = st
}

func (o *Outcome) window(k wkey) *window {
	if w, ok := o.wins[k]; ok {
		return w
	}
	if w, ok := o.set.wins[k]; ok {
		c := w
		o.setWindow(k, &c)
		return &c
	}
	return nil
}

func (o *Outcome) setWindow(k wkey, w *window) {
	if o.wins == nil {
		o.wins = map[wkey]*window{}
	}
	o.wins[k] = w
}

func (o *Outcome) band(k wkey) (band, bool) {
	if b, ok := o.bands[k]; ok {
		return b, true
	}
	b, ok := o.set.bands[k]
	return b, ok
}

// Process evaluates evs (stamped: their Received is the rules' clock).
// Events the rules derive are not evaluated again.
func (s *Set) Process(evs []*event.Event) *Outcome {
	o := &Outcome{set: s}
	if s == nil || len(s.rules) == 0 {
		o.Keep = evs
		return o
	}
	// Conditions are evaluated without the lock (each Process has an
	// evaluator of its own), so that concurrent sources do not wait for
	// each other's rules; the state the actions read and change is
	// touched under it.
	ev := s.evals.Get().(*evaluator)
	defer s.evals.Put(ev)
	for _, e := range evs {
		if !s.event(o, ev, e) {
			o.Keep = append(o.Keep, e)
		}
	}
	return o
}

// evaluator is a VM and an env, for one Process at a time, and the
// results of the current event's conditions: rules with the same condition
// (the mis-sort alert and the mis-sort light) evaluate it once per event.
type evaluator struct {
	vm      vm.VM
	env     map[string]any
	results []result // by compiled.cond
}

type result struct {
	done, ok bool
	err      error
}

// event runs the rules on e and reports whether one of them consumed it
// (drop, downsample, or a deadband that held it).
func (s *Set) event(o *Outcome, ev *evaluator, e *event.Event) (consumed bool) {
	t := e.Received
	env := ev.env
	fillEnv(env, e)
	clear(ev.results)
	for i, r := range s.rules {
		if !r.matches(e) {
			continue
		}
		d := o.count(i)
		d.evaluated++
		res := &ev.results[r.cond]
		if !res.done {
			res.ok, res.err = eval(&ev.vm, r.prog, env)
			res.done = true
		}
		ok, err := res.ok, res.err
		if err != nil {
			d.errors++
			if let, held := s.limit.Allow(r.Name, t); let {
				s.log.Warn("rule failed on an event; the event is kept", "rule", r.Name, "source", e.Source, "stream", e.Stream, "err", err, loglimit.Held(held))
			}
			continue
		}
		if r.fires() && (ok || r.For > 0) {
			s.mu.Lock()
			s.fireRule(o, i, r, e, ok)
			s.mu.Unlock()
		}
		if ok && !consumed && (r.drop || r.band != nil || r.down != nil) {
			s.mu.Lock()
			consumed = s.transform(o, i, r, e)
			s.mu.Unlock()
		}
	}
	return consumed
}

// fireRule runs the firing actions of r for e, whose condition is ok.
func (s *Set) fireRule(o *Outcome, i int, r *compiled, e *event.Event, ok bool) {
	if !ok && r.For == 0 {
		return // nothing to fire, no state to keep
	}
	if r.For == 0 && r.Cooldown == 0 {
		s.fired(o, i, r, e, "", fireState{}) // fires on every event, keeps no state
		return
	}
	k := fkey{i, e.Source}
	st := o.fireState(k)
	before := st
	t := e.Received
	if r.Silence > 0 {
		s.seen[k] = seen{t, e.Stream, e.Kind}
	}
	cool := st.last.IsZero() || t.Sub(st.last) >= r.Cooldown.D()
	switch {
	case ok && r.For == 0:
		if cool {
			st.last = t
			s.fired(o, i, r, e, "", st)
		}
	case ok:
		if st.since.IsZero() {
			st = fireState{since: t, last: st.last}
		}
		for _, a := range r.alerts {
			if a.Peak != "" {
				if v, isNum := number(e.Attrs[a.Peak]); isNum && (!st.hasPeak || v > st.peak) {
					st.peak, st.hasPeak = v, true
				}
			}
		}
		if !st.fired && t.Sub(st.since) >= r.For.D() && cool {
			st.fired, st.last = true, t
			s.fired(o, i, r, e, "start", st)
		}
	case !st.since.IsZero():
		if st.fired {
			s.fired(o, i, r, e, "end", st)
		}
		st = fireState{last: st.last}
	}
	if st != before {
		o.setFire(k, st)
		// A higher peak alone is not worth a write to the store (a rising
		// temperature would write at every reading); it is stored with the
		// next change that is.
		if st.since != before.since || st.fired != before.fired || st.last != before.last {
			o.FireChanged = true
		}
	}
}

// fired records one firing: alerts derived, commands queued.
func (s *Set) fired(o *Outcome, i int, r *compiled, e *event.Event, phase string, st fireState) {
	o.count(i).fired++
	f := Firing{Rule: r.Name, Source: e.Source, Time: e.Received, Phase: phase}
	for _, a := range r.alerts {
		attrs := map[string]any{"rule": r.Name, "stream": e.Stream, "cause_kind": e.Kind}
		for _, name := range a.Attrs {
			if v, ok := e.Attrs[name]; ok {
				attrs[name] = v
			}
		}
		if phase != "" {
			attrs["phase"] = phase
			attrs["start"] = st.since
			if phase == "end" {
				attrs["end"] = e.Received
			}
			if st.hasPeak {
				attrs["peak"] = st.peak
			}
		}
		al := &event.Event{Stream: a.stream(), Source: e.Source, Kind: KindAlert, Time: e.Time, Received: e.Received, Attrs: attrs}
		if len(e.DedupKey) > 0 {
			al.DedupKey = append(append([]byte(nil), e.DedupKey...), []byte("|rule|"+r.Name+"|"+phase)...)
			al.Redelivered = e.Redelivered
		}
		o.Derived = append(o.Derived, Derived{Event: al, Cause: e})
		f.Actions = append(f.Actions, "alert "+a.stream())
	}
	for _, g := range r.gpios {
		cmd := g.command()
		if phase == "end" {
			if cmd.Mode != "on" {
				continue // a pulse or blink has run its course; only "on" is turned off
			}
			cmd.Mode = "off"
		}
		o.Commands = append(o.Commands, Command{Rule: r.Name, Source: g.Source, Output: g.Output, Cmd: cmd})
		f.Actions = append(f.Actions, fmt.Sprintf("gpio %s/%s %s", g.Source, g.Output, cmd.Mode))
	}
	o.Fired = append(o.Fired, f)
}

// transform applies r's drop, deadband and downsample to e (whose
// condition holds) and reports whether e is consumed.
func (s *Set) transform(o *Outcome, i int, r *compiled, e *event.Event) bool {
	d := o.count(i)
	switch {
	case r.drop:
		d.dropped++
		return true
	case r.band != nil:
		m := r.band.metric()
		v, ok := number(e.Attrs[m])
		if !ok {
			return false
		}
		k := wkey{i, e.Source, m}
		b, seen := o.band(k)
		if !seen || math.Abs(v-b.v) > r.band.Threshold || (r.band.MaxInterval > 0 && e.Received.Sub(b.at) >= r.band.MaxInterval.D()) {
			if o.bands == nil {
				o.bands = map[wkey]band{}
			}
			o.bands[k] = band{v, e.Received}
			return false
		}
		if r.down != nil {
			return s.aggregate(o, i, r, e)
		}
		d.dropped++
		return true
	case r.down != nil:
		return s.aggregate(o, i, r, e)
	}
	return false
}

// aggregate adds e's metrics to r's windows; e is consumed when it had
// at least one of them.
func (s *Set) aggregate(o *Outcome, i int, r *compiled, e *event.Event) bool {
	any := false
	iv := r.down.Interval.D()
	t := e.Received
	for _, m := range r.down.metrics() {
		v, ok := number(e.Attrs[m])
		if !ok {
			continue
		}
		any = true
		k := wkey{i, e.Source, m}
		w := o.window(k)
		if w != nil && !t.Before(w.to) {
			s.close(o, k, w, w.to)
			w = nil
		}
		if w == nil {
			from := t.Truncate(iv)
			unit, _ := e.Attrs["unit"].(string)
			w = &window{from: from, to: from.Add(iv), stream: e.Stream, unit: unit, min: v, max: v}
			o.setWindow(k, w)
			o.Opened = true
		}
		w.count++
		w.sum += v
		w.min = math.Min(w.min, v)
		w.max = math.Max(w.max, v)
		w.last = v
	}
	return any
}

// close ends window k (at end) with a summary event.
func (s *Set) close(o *Outcome, k wkey, w *window, end time.Time) {
	r := s.rules[k.rule]
	attrs := map[string]any{
		"rule": r.Name, "metric": k.metric,
		"from": w.from, "to": end,
		"min": w.min, "max": w.max, "mean": w.sum / float64(w.count), "last": w.last,
		"count": w.count,
	}
	if w.unit != "" {
		attrs["unit"] = w.unit
	}
	o.Derived = append(o.Derived, Derived{Event: &event.Event{Stream: w.stream, Source: k.source, Kind: KindSummary, Time: end, Received: end, Attrs: attrs}})
	o.count(k.rule).summarized += w.count
	o.setWindow(k, nil)
	o.Closed = true
}

// Tick closes the windows that ended by now, and ends the for: stretches
// whose source has been silent for their rule's silence.
func (s *Set) Tick(now time.Time) *Outcome {
	o := s.closeWindows(func(w window) (time.Time, bool) { return w.to, !now.Before(w.to) })
	if s != nil {
		s.mu.Lock()
		s.endSilent(o, now)
		s.mu.Unlock()
	}
	return o
}

// endSilent ends, with an end alert of reason silent, each fired for:
// stretch of a rule with silence whose source sent no matching event for
// that long. A stretch restored at start has seen nothing yet: its silence
// counts from the first tick.
func (s *Set) endSilent(o *Outcome, now time.Time) {
	keys := make([]fkey, 0, len(s.fire))
	for k, st := range s.fire {
		if r := s.rules[k.rule]; r.Silence > 0 && st.fired && !st.since.IsZero() {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(a, b int) bool {
		if keys[a].rule != keys[b].rule {
			return keys[a].rule < keys[b].rule
		}
		return keys[a].source < keys[b].source
	})
	for _, k := range keys {
		r := s.rules[k.rule]
		last, ok := s.seen[k]
		if !ok {
			s.seen[k] = seen{at: now}
			continue
		}
		if now.Sub(last.at) < r.Silence.D() {
			continue
		}
		st := o.fireState(k)
		e := &event.Event{Stream: last.stream, Source: k.source, Kind: last.kind, Time: last.at, Received: last.at}
		if last.stream == "" && len(r.Match.Streams) > 0 {
			e.Stream = r.Match.Streams[0]
		}
		s.fired(o, k.rule, r, e, "end", st)
		for i := len(o.Derived) - len(r.alerts); i < len(o.Derived); i++ {
			d := &o.Derived[i]
			d.Cause = nil // no event caused it
			d.Event.Attrs["reason"] = "silent"
			d.Event.Time, d.Event.Received = now, now
		}
		o.Fired[len(o.Fired)-1].Time = now
		o.setFire(k, fireState{last: st.last})
		o.FireChanged = true
	}
}

// Flush closes every window, at now for those not ended yet (a summary of
// part of an interval): before the Set is replaced or stopped.
func (s *Set) Flush(now time.Time) *Outcome {
	return s.closeWindows(func(w window) (time.Time, bool) {
		if now.Before(w.to) {
			return now, true
		}
		return w.to, true
	})
}

func (s *Set) closeWindows(due func(window) (time.Time, bool)) *Outcome {
	o := &Outcome{set: s}
	if s == nil {
		return o
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]wkey, 0, len(s.wins))
	for k := range s.wins {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool { return keyLess(keys[a], keys[b]) })
	for _, k := range keys {
		w := s.wins[k]
		if end, ok := due(w); ok {
			s.close(o, k, &w, end)
		}
	}
	return o
}

func keyLess(a, b wkey) bool {
	if a.rule != b.rule {
		return a.rule < b.rule
	}
	if a.source != b.source {
		return a.source < b.source
	}
	return a.metric < b.metric
}

// Commit applies the outcome's state changes and counts, once its events
// are stored. Commit twice, or on a nil Outcome, is a no-op.
func (o *Outcome) Commit() {
	if o == nil || o.set == nil {
		return
	}
	s := o.set
	o.set = nil
	s.mu.Lock()
	for k, st := range o.fire {
		if st == (fireState{}) {
			delete(s.fire, k)
		} else {
			s.fire[k] = st
		}
	}
	for k, w := range o.wins {
		if w == nil {
			delete(s.wins, k)
		} else {
			s.wins[k] = *w
		}
	}
	for k, b := range o.bands {
		s.bands[k] = b
	}
	s.mu.Unlock()
	for i := range o.counts {
		d := &o.counts[i]
		c := s.rules[i].c
		c.Evaluated.Add(d.evaluated)
		c.Fired.Add(d.fired)
		c.Errors.Add(d.errors)
		c.Dropped.Add(d.dropped)
		c.Summarized.Add(d.summarized)
	}
	for _, f := range o.Fired {
		for i, r := range s.rules {
			if r.Name == f.Rule {
				s.rules[i].c.lastFired.Store(f.Time.UnixNano())
			}
		}
	}
}

// number reads a numeric attr.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case uint64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint32:
		return float64(x), true
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		return f, err == nil
	}
	return 0, false
}
