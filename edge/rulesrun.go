package edge

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgegw/gateway/buffer"
	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/edge/config"
	"github.com/edgegw/gateway/edge/rules"
	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/internal/loglimit"
)

// ruleCounters keeps each rule's counters by name for the Gateway's life:
// a swap hands them to the new rule of the same name, so the per-rule
// metrics never go down.
type ruleCounters struct {
	mu sync.Mutex
	m  map[string]*rules.Counters
}

func (rc *ruleCounters) get(name string) *rules.Counters {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.m == nil {
		rc.m = map[string]*rules.Counters{}
	}
	c := rc.m[name]
	if c == nil {
		c = &rules.Counters{}
		rc.m[name] = c
	}
	return c
}

// compileRules loads cfg's tables and compiles its rules. A table that
// cannot be read is reported on its line, like the config's own errors.
func (g *Gateway) compileRules(cfg *config.Config) (*rules.Set, error) {
	if len(cfg.Rules) == 0 {
		return nil, nil
	}
	tables, err := rules.LoadTables(cfg.Tables, cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", cfg.Locate(err))
	}
	// The for: stretches and cooldowns of the previous set, or of the
	// previous run, carry over to the same rules.
	var restore []rules.FireState
	g.mu.Lock()
	db := g.db
	g.mu.Unlock()
	if db != nil {
		b, err := metaStore{db: db}.Get(rules.FireKey)
		if err == nil {
			restore, err = rules.DecodeFireStates(b)
		}
		if err != nil {
			g.log.Warn("rules: the stored for: stretches and cooldowns cannot be read; they start afresh", "component", "rules", "err", err)
		}
	}
	return rules.Compile(cfg.Rules, cfg.Tables, rules.Options{
		Tables:   tables,
		Counters: g.ruleCounters.get,
		Log:      g.log.With("component", "rules"),
		Restore:  restore,
	})
}

// SetRules swaps the rule set the ingest evaluates (nil: none). The old
// set's open windows are closed with summaries of what they hold.
func (in *ingest) SetRules(ctx context.Context, set *rules.Set) {
	old := in.rules.Swap(set)
	if old != nil && old != set {
		in.flushRules(ctx, old)
	}
}

// flushRules stores summaries of set's open windows (within 5s, also
// when ctx is one that ended: its values are kept, not its end).
func (in *ingest) flushRules(ctx context.Context, set *rules.Set) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	o := set.Flush(in.now())
	if err := in.storeDerived(ctx, set, o); err != nil {
		in.log().Error("rules: cannot store the summaries of the open windows; they will be reported as lost at the next start", "err", err)
	}
}

// runRules closes the rules' windows as they end, every second, until ctx
// ends (the pipeline's stop flushes the open ones, once its sources have
// stopped).
func (in *ingest) runRules(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if set := in.rules.Load(); set != nil {
			if err := in.storeDerived(ctx, set, set.Tick(in.now())); err != nil && ctx.Err() == nil {
				in.logLimited("tick", "rules: cannot store window summaries; retrying", "err", err)
			}
		}
	}
}

// storeDerived stores an outcome that has derived events only (summaries,
// gaps) and commits it.
func (in *ingest) storeDerived(ctx context.Context, set *rules.Set, o *rules.Outcome) error {
	if len(o.Derived) == 0 {
		o.Commit()
		return nil
	}
	now := in.now()
	mono := uint64(time.Since(in.start))
	for _, d := range o.Derived {
		in.stamp(d.Event, now, mono)
	}
	if _, err := in.db.AppendBatch(ctx, derivedBatches(o.Derived, nil)); err != nil {
		return appendError(err)
	}
	in.committed(set, o)
	return nil
}

// committed runs what follows a stored outcome: its state changes, the
// window marks, the gpio commands.
func (in *ingest) committed(set *rules.Set, o *rules.Outcome) {
	o.Commit()
	if o.Closed {
		if err := in.putMarks(set, nil); err != nil {
			in.logLimited("marks", "rules: cannot store the window marks", "err", err)
		}
	}
	if o.FireChanged {
		in.metaMu.Lock()
		err := in.meta().Put(rules.FireKey, rules.EncodeFireStates(set.FireStates()))
		in.metaMu.Unlock()
		if err != nil {
			in.logLimited("fire", "rules: cannot store the for: stretches and cooldowns", "err", err)
		}
	}
	for _, c := range o.Commands {
		d, ok := in.outputs.Load(c.Source)
		if !ok {
			in.logLimited("out:"+c.Source, "rules: no running source to drive", "rule", c.Rule, "source", c.Source, "output", c.Output)
			continue
		}
		if err := d.(drivers.OutputDriver).DriveOutput(c.Output, c.Cmd); err != nil {
			in.logLimited("out:"+c.Source, "rules: cannot drive output", "rule", c.Rule, "err", err)
		}
	}
}

// putMarks stores the open windows: set's, with those o opens (nil: none),
// and, while a swap is under way, the current set's too, so that neither
// set's marks hide the other's.
func (in *ingest) putMarks(set *rules.Set, o *rules.Outcome) error {
	in.metaMu.Lock()
	defer in.metaMu.Unlock()
	ms := set.MarksWith(o)
	if cur := in.rules.Load(); cur != set {
		ms = append(ms, cur.Marks()...)
	}
	return in.meta().Put(rules.MarksKey, rules.EncodeMarks(ms))
}

// recoverWindows reports the windows a crash lost (their marks are still
// stored) as gaps, once, when the first rule set starts.
func (in *ingest) recoverWindows(ctx context.Context) error {
	b, err := in.meta().Get(rules.MarksKey)
	if err != nil {
		return err
	}
	ms, err := rules.DecodeMarks(b)
	if err != nil || len(ms) == 0 {
		return err
	}
	gaps := rules.LostWindows(ms, in.now())
	now, mono := in.now(), uint64(time.Since(in.start))
	ds := make([]rules.Derived, len(gaps))
	for i, e := range gaps {
		in.stamp(e, now, mono)
		ds[i] = rules.Derived{Event: e}
	}
	if _, err := in.db.AppendBatch(ctx, derivedBatches(ds, nil)); err != nil {
		return err
	}
	in.log().Warn("rules: windows lost in a crash recorded as gaps", "windows", len(gaps), "reason", rules.ReasonLost)
	return in.meta().Put(rules.MarksKey, nil)
}

// derivedBatches appends the derived events to batches, one batch per
// stream after the causes' batches: an alert's encoder reads its cause's
// seq, given by an earlier batch of the same commit.
func derivedBatches(ds []rules.Derived, batches []buffer.Batch) []buffer.Batch {
	var order []string
	groups := map[string][]rules.Derived{}
	for _, d := range ds {
		s := d.Event.Stream
		if _, ok := groups[s]; !ok {
			order = append(order, s)
		}
		groups[s] = append(groups[s], d)
	}
	for _, s := range order {
		batches = append(batches, buffer.Batch{Stream: s, Records: derivedRecords(groups[s])})
	}
	return batches
}

// derivedRecords are the buffer records of derived events; an alert
// records its cause's stored seq.
func derivedRecords(ds []rules.Derived) []buffer.Record {
	recs := make([]buffer.Record, len(ds))
	for i, d := range ds {
		e, cause := d.Event, d.Cause
		recs[i] = buffer.Record{
			Enc: func(seq uint64) ([]byte, error) {
				e.Seq = seq
				if cause != nil && cause.Seq != 0 {
					e.Attrs["seq"] = cause.Seq
				}
				return event.Marshal(e)
			},
			Key:      e.DedupKey,
			CheckDup: e.Redelivered && len(e.DedupKey) > 0,
		}
	}
	return recs
}

func (in *ingest) log() *slog.Logger {
	if in.logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return in.logger
}

func (in *ingest) meta() metaStore { return metaStore{db: in.db, prefix: ""} }

func (in *ingest) logLimited(key, msg string, args ...any) {
	in.limitOnce.Do(func() { in.limit = loglimit.New[string](time.Minute, 0) })
	if ok, held := in.limit.Allow(key, in.now()); ok {
		in.log().Error(msg, append(args, loglimit.Held(held))...)
	}
}

// ruleCollector exports the per-rule counters at scrape time.
type ruleCollector struct{ rc *ruleCounters }

var (
	descRuleEval  = prometheus.NewDesc("edge_gateway_rule_evaluations_total", "Events a rule's condition was evaluated on, per rule.", []string{"rule"}, nil)
	descRuleFired = prometheus.NewDesc("edge_gateway_rule_firings_total", "Times a rule fired (its alert and gpio actions ran), per rule.", []string{"rule"}, nil)
	descRuleErr   = prometheus.NewDesc("edge_gateway_rule_errors_total", "Evaluations of a rule's condition that failed at run time (the event was kept), per rule.", []string{"rule"}, nil)
	descRuleDrop  = prometheus.NewDesc("edge_gateway_rule_dropped_events_total", "Events a rule kept out of the buffer (drop, or a deadband without a window), per rule.", []string{"rule"}, nil)
	descRuleSum   = prometheus.NewDesc("edge_gateway_rule_summarized_events_total", "Readings covered by stored downsample summaries instead of being stored, per rule.", []string{"rule"}, nil)
)

func (c ruleCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRuleEval, descRuleFired, descRuleErr, descRuleDrop, descRuleSum} {
		ch <- d
	}
}

func (c ruleCollector) Collect(ch chan<- prometheus.Metric) {
	c.rc.mu.Lock()
	defer c.rc.mu.Unlock()
	for name, r := range c.rc.m {
		ch <- prometheus.MustNewConstMetric(descRuleEval, prometheus.CounterValue, float64(r.Evaluated.Load()), name)
		ch <- prometheus.MustNewConstMetric(descRuleFired, prometheus.CounterValue, float64(r.Fired.Load()), name)
		ch <- prometheus.MustNewConstMetric(descRuleErr, prometheus.CounterValue, float64(r.Errors.Load()), name)
		ch <- prometheus.MustNewConstMetric(descRuleDrop, prometheus.CounterValue, float64(r.Dropped.Load()), name)
		ch <- prometheus.MustNewConstMetric(descRuleSum, prometheus.CounterValue, float64(r.Summarized.Load()), name)
	}
}
