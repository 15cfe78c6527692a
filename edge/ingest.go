package edge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/edgegw/gateway/buffer"
	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/event"
)

// ingest is the drivers.Sink over the buffer.
type ingest struct {
	db      *buffer.DB
	gateway string
	boot    uint64
	start   time.Time // monotonic base for Event.Mono
	now     func() time.Time
	stats   *ingestStats
}

var _ drivers.Sink = (*ingest)(nil)

// Emit stamps, encodes and durably appends evs, grouped by stream (order kept
// within each stream). It returns drivers.ErrFull when a reject-new stream is
// at its limit; the caller must not acknowledge its source then.
func (in *ingest) Emit(ctx context.Context, evs []*event.Event) error {
	if len(evs) == 0 {
		return nil
	}
	now := in.now()
	mono := uint64(time.Since(in.start))
	var order []string
	groups := map[string][]buffer.Record{}
	for _, e := range evs {
		e.Gateway = in.gateway
		e.Boot = in.boot
		e.Mono = mono
		if e.Received.IsZero() {
			e.Received = now
		}
		if e.Time.IsZero() {
			e.Time = e.Received
		}
		if _, ok := groups[e.Stream]; !ok {
			order = append(order, e.Stream)
		}
		e := e
		groups[e.Stream] = append(groups[e.Stream], buffer.Record{
			Enc: func(seq uint64) ([]byte, error) {
				e.Seq = seq
				return event.Marshal(e)
			},
			Key:      e.DedupKey,
			CheckDup: e.Redelivered && len(e.DedupKey) > 0,
		})
	}
	// Refuse the whole batch before writing any of it when one of its
	// reject-new streams is already full, so that a retry does not store the
	// other streams' events twice.
	if full := in.fullStream(order); full != "" {
		in.stats.add(full, 0, len(groups[full]))
		return fmt.Errorf("stream %q: %w", full, drivers.ErrFull)
	}
	if len(order) == 1 {
		return in.append(ctx, order[0], groups[order[0]])
	}
	var wg sync.WaitGroup
	errs := make([]error, len(order))
	for i, s := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = in.append(ctx, s, groups[s])
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (in *ingest) append(ctx context.Context, stream string, recs []buffer.Record) error {
	res, err := in.db.AppendRecords(ctx, stream, recs)
	switch {
	case err == nil:
		dups := 0
		for _, r := range res {
			if r.Dup {
				dups++
			}
		}
		in.stats.add(stream, len(recs)-dups, 0)
		in.stats.duplicates(stream, dups)
		return nil
	case errors.Is(err, buffer.ErrStreamFull), errors.Is(err, buffer.ErrDiskBudget), errors.Is(err, buffer.ErrDiskFull):
		in.stats.add(stream, 0, len(recs))
		return fmt.Errorf("stream %q: %w: %v", stream, drivers.ErrFull, err)
	default:
		return fmt.Errorf("stream %q: %w", stream, err)
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

func (s *ingestStats) add(stream string, accepted, rejected int) {
	if accepted > 0 {
		s.m.ingest.WithLabelValues(stream, "accepted").Add(float64(accepted))
	}
	if rejected > 0 {
		s.m.ingest.WithLabelValues(stream, "rejected").Add(float64(rejected))
	}
}

func (s *ingestStats) duplicates(stream string, n int) {
	if n > 0 {
		s.m.ingest.WithLabelValues(stream, "duplicate").Add(float64(n))
	}
}

func (s *ingestStats) quarantined(source string) {
	s.m.quarantined.WithLabelValues(source).Inc()
}
