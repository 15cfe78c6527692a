package edge

import (
	"context"
	"errors"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/edge/config"
	"github.com/edgegw/gateway/event"
)

// Hooks through which the pipeline feeds the status page and the metrics.
// startPipeline calls them:
//
//	up.OnReceiptLatency(g.metrics.observeReceipt)        // after uplink.New
//	runDriver(ctx, d, g.observe(ctx, src, d, sink), …)   // per source
//
// Without them the page and /metrics still work, without the latest scans,
// per-source counts, driver stats and the receipt-latency histogram.

// observe wraps the sink handed to the driver d of source src: it counts
// results per source (edge_gateway_source_events_total), notes committed
// scans for the status page, and exports d's Stats() until ctx ends.
func (g *Gateway) observe(ctx context.Context, src config.Source, d drivers.Driver, sink drivers.Sink) drivers.Sink {
	remove := g.metrics.drivers.add(src.Name, src.Driver, d)
	context.AfterFunc(ctx, remove)
	return &observedSink{next: sink, g: g, source: src.Name}
}

// noteScans records the scans among evs (committed events) for the status
// page's "latest scans".
func (g *Gateway) noteScans(evs []*event.Event) {
	for _, e := range evs {
		if e.Kind == event.KindScan {
			g.metrics.scans.add(scanNoteOf(e))
		}
	}
}

// observedSink is a drivers.Sink that counts and notes what passes through
// it to the ingest sink.
type observedSink struct {
	next   drivers.Sink
	g      *Gateway
	source string
}

var _ drivers.Sink = (*observedSink)(nil)

// Emit passes evs on. The ingest sink stamps Seq inside the encoder the
// buffer calls only for the records it stores: an event of a successful
// Emit whose Seq is still 0 was a duplicate (a re-delivery already stored).
func (s *observedSink) Emit(ctx context.Context, evs []*event.Event) error {
	for _, e := range evs {
		e.Seq = 0
	}
	err := s.next.Emit(ctx, evs)
	m := s.g.metrics
	switch {
	case err == nil:
		accepted := evs
		dups := 0
		for _, e := range evs {
			if e.Seq == 0 {
				dups++
			}
		}
		if dups > 0 {
			accepted = make([]*event.Event, 0, len(evs)-dups)
			for _, e := range evs {
				if e.Seq != 0 {
					accepted = append(accepted, e)
				}
			}
			m.bySource.WithLabelValues(s.source, resultDuplicate).Add(float64(dups))
		}
		if len(accepted) > 0 {
			m.bySource.WithLabelValues(s.source, resultAccepted).Add(float64(len(accepted)))
			s.g.noteScans(accepted)
		}
	case errors.Is(err, drivers.ErrFull):
		m.bySource.WithLabelValues(s.source, resultRejected).Add(float64(len(evs)))
	case ctx.Err() == nil:
		m.bySource.WithLabelValues(s.source, resultError).Add(float64(len(evs)))
	}
	return err
}

func (s *observedSink) Quarantine(ctx context.Context, source string, payload []byte, reason string) error {
	err := s.next.Quarantine(ctx, source, payload, reason)
	if err == nil {
		s.g.metrics.bySource.WithLabelValues(s.source, resultQuarantined).Inc()
	}
	return err
}
