package edge

import (
	"context"
	"sync"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/edge/config"
	"github.com/edgegw/gateway/event"
)

// The per-source wrapper on the ingest path: every event a driver emits
// passes through observe's sink, which hands it to the ingest sink and then
// counts the outcome per source and notes committed scans. startPipeline
// wraps each source's sink with it:
//
//	runDriver(ctx, d, g.observe(ctx, src, d, sink), …)   // per source
//
// (and hooks the receipt-latency histogram with
// up.OnReceiptLatency(g.metrics.observeReceipt) after uplink.New).

// observe wraps the sink handed to the driver d of source src: it counts
// results per source (edge_gateway_source_events_total), notes committed
// scans for the status page, and exports d's Metrics() until ctx ends.
func (g *Gateway) observe(ctx context.Context, src config.Source, d drivers.Driver, in *ingest) drivers.Sink {
	remove := g.metrics.drivers.add(src.Name, src.Driver, d)
	context.AfterFunc(ctx, remove)
	return &observedSink{in: in, g: g, source: src.Name}
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

// observedSink is the drivers.Sink of one source's driver: the ingest sink,
// counting per source too and noting committed scans for the status page.
type observedSink struct {
	in     *ingest
	g      *Gateway
	source string

	mu      sync.Mutex
	refused bool // the previous Emit was refused (a stream full): the driver retries the same batch
}

var _ drivers.Sink = (*observedSink)(nil)

// Emit appends evs and counts what the buffer did with each: stored,
// duplicate (a re-delivery already stored), or refused. A batch the driver
// retries while a stream stays full counts as rejected once.
func (s *observedSink) Emit(ctx context.Context, evs []*event.Event) error {
	out, err := s.in.emit(ctx, evs)
	s.mu.Lock()
	again := s.refused && len(out.refused) > 0
	s.refused = len(out.refused) > 0
	s.mu.Unlock()
	s.in.count(ctx, s.source, out, err, len(evs), again)
	s.g.noteScans(out.stored)
	return err
}

func (s *observedSink) Quarantine(ctx context.Context, source string, payload []byte, reason string) error {
	err := s.in.Quarantine(ctx, source, payload, reason)
	if err == nil {
		s.g.metrics.bySource.WithLabelValues(s.source, resultQuarantined).Inc()
	}
	return err
}
