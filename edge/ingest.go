package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgegw/gateway/buffer"
	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/edge/rules"
	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/internal/loglimit"
)

// ingest is the drivers.Sink over the buffer.
type ingest struct {
	db      *buffer.DB
	gateway string
	boot    uint64
	start   time.Time // monotonic base for Event.Mono
	now     func() time.Time
	stats   *ingestStats
	logger  *slog.Logger

	// rules is the rule set evaluated on every batch (nil: none);
	// SetRules swaps it.
	rules atomic.Pointer[rules.Set]
	// outputs are the running sources that rules' gpio actions drive
	// (drivers.OutputDriver), by source name.
	outputs   sync.Map
	metaMu    sync.Mutex // serialises the rules' writes of window marks and firing states
	limitOnce sync.Once
	limit     *loglimit.Limiter[string]
}

var _ drivers.Sink = (*ingest)(nil)

// Emit stamps, encodes and durably appends evs, grouped by stream (order kept
// within each stream). It returns drivers.ErrFull when a reject-new stream is
// at its limit; the caller must not acknowledge its source then.
func (in *ingest) Emit(ctx context.Context, evs []*event.Event) error {
	out, err := in.emit(ctx, evs)
	in.count(ctx, "", out, err, len(evs), false)
	return err
}

// count adds one emit's results to the per-stream counters and, when source
// is set, to the per-source ones. again says the same batch was refused on
// the previous try: its refusal is not counted twice.
func (in *ingest) count(ctx context.Context, source string, out emitted, err error, n int, again bool) {
	m := in.stats.m
	bySource := func(result string, k int) {
		if source != "" && k > 0 {
			m.bySource.WithLabelValues(source, result).Add(float64(k))
		}
	}
	for s, k := range out.accepted {
		m.ingest.WithLabelValues(s, resultAccepted).Add(float64(k))
	}
	bySource(resultAccepted, len(out.stored))
	dups := 0
	for s, k := range out.dups {
		m.ingest.WithLabelValues(s, resultDuplicate).Add(float64(k))
		dups += k
	}
	bySource(resultDuplicate, dups)
	if !again {
		refused := 0
		for s, k := range out.refused {
			m.ingest.WithLabelValues(s, resultRejected).Add(float64(k))
			refused += k
		}
		bySource(resultRejected, refused)
	}
	if err != nil && len(out.refused) == 0 && ctx.Err() == nil {
		failed := n - len(out.stored) - dups
		bySource(resultError, failed)
		if source != "" && failed > 0 {
			m.ingestErrors.Add(uint64(failed)) // the sum of bySource's errors
		}
	}
}

// emitted is what one emit did, for the counters.
type emitted struct {
	stored   []*event.Event // appended by this call (not duplicates)
	accepted map[string]int // per stream: how many of stored
	dups     map[string]int // per stream: re-deliveries already stored
	refused  map[string]int // per stream: events refused because it is full
}

// emit is Emit, also saying which events it stored and which it did not.
// It counts nothing: its caller does, once per refusal episode.
func (in *ingest) emit(ctx context.Context, evs []*event.Event) (emitted, error) {
	var out emitted
	if len(evs) == 0 {
		return out, nil
	}
	now := in.now()
	mono := uint64(time.Since(in.start))
	for _, e := range evs {
		in.stamp(e, now, mono)
	}
	// The rules see the stamped events; what they keep is stored, with
	// the events they derive, in the same transaction.
	set := in.rules.Load()
	ro := set.Process(evs)
	for _, d := range ro.Derived {
		in.stamp(d.Event, now, mono)
	}
	var order []string
	groups := map[string][]*event.Event{}
	for _, e := range ro.Keep {
		if _, ok := groups[e.Stream]; !ok {
			order = append(order, e.Stream)
		}
		groups[e.Stream] = append(groups[e.Stream], e)
	}
	check := append([]string(nil), order...)
	for _, d := range ro.Derived {
		check = append(check, d.Event.Stream)
	}
	// Refuse the whole batch before writing any of it when one of its
	// reject-new streams is already full, so that a retry does not store the
	// other streams' events twice.
	if full := in.fullStream(check); full != "" {
		if _, own := groups[full]; own {
			out.refused = map[string]int{full: len(groups[full])}
		} else {
			// Only a stream of derived events (alerts) is full: the
			// causes are refused with their alerts.
			out.refused = map[string]int{}
			for _, s := range order {
				out.refused[s] = len(groups[s])
			}
			for _, d := range ro.Derived {
				if d.Event.Stream == full {
					out.refused[full]++
				}
			}
		}
		return out, fmt.Errorf("stream %q: %w", full, drivers.ErrFull)
	}
	// A window opened by this batch is marked before its readings'
	// commit, so that a crash cannot lose it silently.
	if ro.Opened {
		if err := in.putMarks(set, ro); err != nil {
			return out, fmt.Errorf("rules: storing the window marks: %w", err)
		}
	}
	// One transaction for every stream: a batch is stored whole or not at
	// all, so a retry never stores part of it twice.
	batches := make([]buffer.Batch, len(order), len(order)+1)
	for i, s := range order {
		batches[i] = buffer.Batch{Stream: s, Records: records(groups[s])}
	}
	all := derivedBatches(ro.Derived, batches)
	res, err := in.db.AppendBatch(ctx, all)
	if err != nil {
		err = appendError(err)
		if errors.Is(err, drivers.ErrFull) {
			out.refused = map[string]int{}
			for _, s := range order {
				out.refused[s] += len(groups[s])
			}
		}
		return out, err
	}
	for i, s := range order {
		n := len(out.stored)
		for j, r := range res[i] {
			if !r.Dup {
				out.stored = append(out.stored, groups[s][j])
			}
		}
		addTo(&out.accepted, s, len(out.stored)-n)
		addTo(&out.dups, s, len(res[i])-(len(out.stored)-n))
	}
	for i := len(order); i < len(res); i++ { // the derived events
		n := 0
		for _, r := range res[i] {
			if !r.Dup {
				n++
			}
		}
		addTo(&out.accepted, all[i].Stream, n)
	}
	in.committed(set, ro)
	return out, nil
}

// addTo adds n (when positive) to (*m)[key], making the map on first use.
func addTo(m *map[string]int, key string, n int) {
	if n <= 0 {
		return
	}
	if *m == nil {
		*m = map[string]int{}
	}
	(*m)[key] += n
}

// stamp sets what the gateway stamps on every event it stores.
func (in *ingest) stamp(e *event.Event, now time.Time, mono uint64) {
	e.Gateway = in.gateway
	e.Boot = in.boot
	e.Mono = mono
	if e.Received.IsZero() {
		e.Received = now
	}
	if e.Time.IsZero() {
		e.Time = e.Received
	}
}

// records makes the buffer records of evs: each encoder stamps the event's
// seq and encodes it.
func records(evs []*event.Event) []buffer.Record {
	recs := make([]buffer.Record, len(evs))
	for i, e := range evs {
		recs[i] = buffer.Record{
			Enc: func(seq uint64) ([]byte, error) {
				e.Seq = seq
				return event.Marshal(e)
			},
			Key:      e.DedupKey,
			CheckDup: e.Redelivered && len(e.DedupKey) > 0,
		}
	}
	return recs
}

// appendError maps the buffer's refusals for lack of room to drivers.ErrFull.
func appendError(err error) error {
	switch {
	case errors.Is(err, buffer.ErrStreamFull), errors.Is(err, buffer.ErrDiskBudget), errors.Is(err, buffer.ErrDiskFull):
		return fmt.Errorf("%w: %v", drivers.ErrFull, err)
	default:
		return err
	}
}

func (in *ingest) fullStream(streams []string) string {
	st := in.db.Stats()
	for _, ss := range st.Streams {
		c := ss.Config
		if c.Overflow != buffer.PolicyRejectNew {
			continue
		}
		if (c.MaxEvents > 0 && ss.Depth >= c.MaxEvents) || (c.MaxBytes > 0 && ss.Bytes >= c.MaxBytes) {
			for _, s := range streams {
				if s == c.Name {
					return s
				}
			}
		}
	}
	return ""
}

// Quarantine records an input that failed to parse.
func (in *ingest) Quarantine(ctx context.Context, source string, payload []byte, reason string) error {
	in.stats.quarantined(source)
	return in.db.Quarantine(ctx, buffer.QuarantineItem{Source: source, Reason: reason, Time: in.now(), Payload: payload})
}

// ingestStats counts ingest results; it feeds the Prometheus metrics.
type ingestStats struct {
	m *metrics
}

func (s *ingestStats) quarantined(source string) {
	s.m.quarantined.WithLabelValues(source).Inc()
}
