package rules

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edgegw/gateway/event"
)

// Replay runs recorded events through s, one at a time, on a simulated
// clock: each event's receive time (its time when it has none) is now;
// windows that end before it are closed first, and every window is
// closed at the last event's time at the end. Stored seqs are simulated
// per stream, so that alerts name their cause. It writes a line per
// firing and per summary to w, then a table of the rules' counts, and
// returns the number of firings.
func Replay(s *Set, evs []*event.Event, w io.Writer) (int, error) {
	seqs := map[string]uint64{}
	store := func(e *event.Event) {
		seqs[e.Stream]++
		e.Seq = seqs[e.Stream]
	}
	fired := 0
	var now time.Time
	report := func(o *Outcome) {
		for _, e := range o.Keep {
			store(e)
		}
		for _, f := range o.Fired {
			fired++
			phase := ""
			if f.Phase != "" {
				phase = " (" + f.Phase + ")"
			}
			fmt.Fprintf(w, "%s  FIRED %s%s  source=%s  actions: %s\n", f.Time.UTC().Format(time.RFC3339Nano), f.Rule, phase, f.Source, strings.Join(f.Actions, "; "))
		}
		for _, d := range o.Derived {
			store(d.Event)
			e := d.Event
			switch e.Kind {
			case KindAlert:
				fmt.Fprintf(w, "%s  alert %s/%d: %s\n", e.Received.UTC().Format(time.RFC3339Nano), e.Stream, e.Seq, attrText(e.Attrs, d.Cause))
			case KindSummary:
				fmt.Fprintf(w, "%s  summary %s/%d: %s\n", e.Time.UTC().Format(time.RFC3339Nano), e.Stream, e.Seq, attrText(e.Attrs, nil))
			}
		}
		o.Commit()
	}
	for i, e := range evs {
		if e.Received.IsZero() {
			e.Received = e.Time
		}
		if e.Received.IsZero() {
			return fired, fmt.Errorf("event %d: no time and no received time", i+1)
		}
		if e.Time.IsZero() {
			e.Time = e.Received
		}
		if e.Received.Before(now) {
			return fired, fmt.Errorf("event %d: received %s is before the previous event's %s (events must be in receive order)", i+1, e.Received.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano))
		}
		now = e.Received
		report(s.Tick(now))
		report(s.Process([]*event.Event{e}))
	}
	report(s.Flush(now))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\nrule\tevaluated\tfired\terrors\tdropped\tsummarized\t")
	for _, r := range s.Rules() {
		c := r.Counters
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t\n", r.Name, c.Evaluated.Load(), c.Fired.Load(), c.Errors.Load(), c.Dropped.Load(), c.Summarized.Load())
	}
	return fired, tw.Flush()
}

// attrText is attrs as sorted key=value pairs; an alert's cause seq is
// the simulated one.
func attrText(attrs map[string]any, cause *event.Event) string {
	keys := make([]string, 0, len(attrs)+1)
	for k := range attrs {
		keys = append(keys, k)
	}
	if cause != nil {
		keys = append(keys, "seq")
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := attrs[k]
		if k == "seq" && cause != nil {
			v = cause.Seq
		}
		if t, ok := v.(time.Time); ok {
			v = t.UTC().Format(time.RFC3339Nano)
		}
		parts = append(parts, fmt.Sprintf("%s=%v", k, v))
	}
	return strings.Join(parts, " ")
}
