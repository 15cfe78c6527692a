package edge

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/edgegw/gateway/buffer"
	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/edge/config"
	"github.com/edgegw/gateway/internal/backoff"
	"github.com/edgegw/gateway/uplink"
)

// pipeline is one generation of running parts built from one config: the
// embedded broker (if any), the drivers and the forwarders. The buffer is not
// part of it: swapping pipelines never touches buffered events.
type pipeline struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	broker *embeddedBroker
	up     *uplink.Client
	// readiers are the drivers that report whether their input is live,
	// by source name.
	readiers map[string]drivers.Readier
}

// keep, when not nil, is the running embedded broker of the pipeline this
// one replaces, held (Hold) so that its devices stay connected: the new
// pipeline takes it over and releases it once its sources have attached.
func (g *Gateway) startPipeline(parent context.Context, cfg *config.Config, keep *embeddedBroker) (_ *pipeline, err error) {
	ctx, cancel := context.WithCancel(parent)
	p := &pipeline{cancel: cancel}
	defer func() {
		if err != nil {
			p.stop()
		}
	}()
	g.mu.Lock()
	db := g.db
	g.mu.Unlock()

	var inbox drivers.Inbox
	switch {
	case keep != nil:
		p.broker, inbox = keep, keep
	case cfg.Broker != nil:
		b, err := newBroker(*cfg.Broker, g.log.With("component", "broker"))
		if err != nil {
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
		p.broker, inbox = b, b
	}

	up, err := uplink.New(cfg.Uplink, g.log.With("component", "uplink"))
	if err != nil {
		return nil, fmt.Errorf("uplink: %w", err)
	}
	p.up = up
	up.OnReceiptLatency(g.metrics.observeReceipt)

	var receivers []drivers.StateReceiver
	var inboxSources []drivers.Readier // sources fed by the embedded broker
	sink := &ingest{db: db, gateway: cfg.Gateway.ID, boot: db.Boot(), start: g.start, now: g.now, stats: &ingestStats{m: g.metrics}}
	for _, src := range cfg.Sources {
		reg, _ := drivers.Lookup(src.Driver)
		log := g.log.With("component", src.Driver, "source", src.Name)
		d, err := reg.New(src.Parsed, drivers.Env{Gateway: cfg.Gateway.ID, Logger: log, Inbox: inbox, Store: sourceStore(db, src.Name)})
		if err != nil {
			if src.Optional {
				log.Warn("optional source failed to start; continuing without it", "err", err)
				continue
			}
			return nil, fmt.Errorf("source %q: %w", src.Name, err)
		}
		if r, ok := d.(drivers.Readier); ok {
			if p.readiers == nil {
				p.readiers = map[string]drivers.Readier{}
			}
			p.readiers[src.Name] = r
			if usesInbox(src.Parsed) {
				inboxSources = append(inboxSources, r)
			}
		}
		if r, ok := d.(drivers.StateReceiver); ok {
			receivers = append(receivers, r)
		}
		p.run(func() {
			runDriver(ctx, d, g.observe(ctx, src, d, sink), src.Optional, log)
		})
	}

	if p.broker != nil {
		// Devices may publish only once every source the broker feeds has
		// attached: a publish on an event topic before that would be an
		// ordinary broker message, acked with nobody taking custody. A new
		// broker starts then; a kept one was held since the swap began.
		if !waitReady(ctx, inboxSources, attachWait) {
			g.log.Error("embedded broker: sources not attached in time; starting anyway", "waited", attachWait)
		}
		if keep != nil {
			keep.Release()
		} else if err := p.broker.Start(parent); err != nil {
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
	}

	p.run(func() { g.forwardAll(ctx, up, cfg) })
	p.run(func() { feedState(ctx, receivers, db, up, int64(cfg.Buffer.DiskBudget)) })
	return p, nil
}

// usesInbox reports whether a source's config takes its input from the
// embedded broker (the driver's config says so: drivers.InboxUser).
func usesInbox(parsed any) bool {
	u, ok := parsed.(drivers.InboxUser)
	if !ok {
		return false
	}
	_, uses := u.UsesInbox()
	return uses
}

// attachWait bounds how long the embedded broker waits for its sources to
// attach (they do at once; only a failing one takes longer).
const attachWait = 10 * time.Second

// waitReady waits until every r is ready, ctx ends or timeout passes; it
// reports whether all became ready.
func waitReady(ctx context.Context, rs []drivers.Readier, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		all := true
		for _, r := range rs {
			if !r.Ready() {
				all = false
				break
			}
		}
		if all {
			return true
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Millisecond):
		}
	}
}

// notReady names the sources whose input is not live yet.
func (p *pipeline) notReady() []string {
	if p == nil {
		return nil
	}
	var out []string
	for name, r := range p.readiers {
		if !r.Ready() {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func (p *pipeline) run(f func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
}

// handOverBroker takes the running embedded broker out of p when next (the
// config replacing p's) has the same broker section, and holds it: devices
// stay connected, their publishes wait until the next pipeline's sources
// attach. It returns nil (the broker stops with p) otherwise.
func (p *pipeline) handOverBroker(cur, next *config.Config) *embeddedBroker {
	if p == nil || p.broker == nil || cur.Broker == nil || next.Broker == nil || !reflect.DeepEqual(*cur.Broker, *next.Broker) {
		return nil
	}
	b := p.broker
	b.Hold()
	p.broker = nil
	return b
}

// stop cancels every part and waits for it; idempotent.
func (p *pipeline) stop() {
	if p == nil {
		return
	}
	p.cancel()
	p.wg.Wait()
	if p.up != nil {
		p.up.Close()
	}
	if p.broker != nil {
		p.broker.Close()
	}
}

// runDriver runs a driver until ctx ends, restarting it with backoff when it
// fails (a required driver's failure is logged as an error, an optional
// one's as a warning).
func runDriver(ctx context.Context, d drivers.Driver, sink drivers.Sink, optional bool, log interface {
	Error(string, ...any)
	Warn(string, ...any)
}) {
	bo := backoff.Backoff{Min: time.Second, Max: time.Minute}
	for {
		err := d.Run(ctx, sink)
		if ctx.Err() != nil {
			return
		}
		wait := bo.Next()
		if optional {
			log.Warn("source stopped; retrying", "err", err, "in", wait)
		} else {
			log.Error("source stopped; retrying", "err", err, "in", wait)
		}
		if !backoff.Sleep(ctx, wait) {
			return
		}
	}
}

// forwardAll checks deduplication, then runs one forwarder per stream.
func (g *Gateway) forwardAll(ctx context.Context, up *uplink.Client, cfg *config.Config) {
	log := g.log.With("component", "uplink")
	bo := backoff.Backoff{Min: time.Second, Max: time.Minute}
	for cfg.Uplink.RequireDedup {
		err := up.CheckDedup(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		wait := bo.Next()
		log.Error("not forwarding yet: uplink check failed; events keep buffering", "err", err, "retry_in", wait)
		if !backoff.Sleep(ctx, wait) {
			return
		}
	}
	g.mu.Lock()
	db := g.db
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range cfg.Streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := up.Forward(ctx, cfg.Gateway.ID, s.Name, s.Priority, &backlog{db: db, stream: s.Name})
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Error("forwarder stopped", "stream", s.Name, "err", err)
			}
		}()
	}
	wg.Wait()
}

// backlog adapts one buffer stream to uplink.Backlog.
type backlog struct {
	db     *buffer.DB
	stream string
}

var _ uplink.Backlog = (*backlog)(nil)

func (b *backlog) Read(after uint64, max int) ([]uplink.Entry, error) {
	es, err := b.db.Read(b.stream, after, max)
	if err != nil {
		return nil, err
	}
	out := make([]uplink.Entry, len(es))
	for i, e := range es {
		out[i] = uplink.Entry{Seq: e.Seq, Data: e.Data}
	}
	return out, nil
}

func (b *backlog) Ack(upTo uint64) error   { return b.db.Ack(b.stream, upTo) }
func (b *backlog) Notify() <-chan struct{} { return b.db.Notify(b.stream) }
