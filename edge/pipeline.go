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

// pipeline is the running parts built from one config: the embedded broker
// (if any), the sources, the uplink with its forwarders, and the feeder of
// the drivers' gateway state. The buffer is not part of it: swapping
// pipelines never touches buffered events.
//
// A full rebuild (startPipeline) makes a new pipeline; an apply that
// changes only some parts (reconfigure, plan.go) derives a new pipeline
// value from the running one that shares its unchanged parts. Every value
// derived that way shares ctx and cancel: stopping the current value stops
// every part that runs.
type pipeline struct {
	ctx    context.Context // parent of every part's context
	cancel context.CancelFunc
	cfg    *config.Config // the config it runs
	sink   *ingest        // shared by the sources

	broker *embeddedBroker
	up     *uplink.Client
	upKey  string // uplinkKey of the config up and fwd run with
	fwd    *part  // the forwarders of up
	feed   *part  // feeds the StateReceivers
	rules  *part  // closes the rules' windows as they end (sink.runRules)
	// sources are the running sources, by name (an optional source that
	// failed to start is absent).
	sources map[string]*sourcePart
	// readiers are the sources that report whether their input is live,
	// by source name.
	readiers map[string]drivers.Readier
}

// part is one running piece of a pipeline with a lifetime of its own.
type part struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startPart runs f in a goroutine until its context (a child of parent)
// ends.
func startPart(parent context.Context, f func(ctx context.Context)) *part {
	ctx, cancel := context.WithCancel(parent)
	pt := &part{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(pt.done)
		f(ctx)
	}()
	return pt
}

// stop cancels the part and waits for it; idempotent, nil-safe.
func (pt *part) stop() {
	if pt == nil {
		return
	}
	pt.cancel()
	<-pt.done
}

// sourcePart is one running source: its driver and the goroutine that
// runs it.
type sourcePart struct {
	*part
	cfg   config.Source
	key   string // sourceKey(cfg): an apply restarts the source when it changes
	d     drivers.Driver
	inbox bool // fed by the embedded broker
}

// keep, when not nil, is the running embedded broker of the pipeline this
// one replaces, held (Hold) so that its devices stay connected: the new
// pipeline takes it over and releases it once its sources have attached.
func (g *Gateway) startPipeline(parent context.Context, cfg *config.Config, keep *embeddedBroker) (_ *pipeline, err error) {
	ctx, cancel := context.WithCancel(parent)
	p := &pipeline{ctx: ctx, cancel: cancel, cfg: cfg, sources: map[string]*sourcePart{}}
	defer func() {
		if err != nil {
			p.stop()
		}
	}()
	g.mu.Lock()
	db := g.db
	g.mu.Unlock()

	switch {
	case keep != nil:
		p.broker = keep
	case cfg.Broker != nil:
		b, err := newBroker(*cfg.Broker, g.log.With("component", "broker"))
		if err != nil {
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
		p.broker = b
	}

	up, err := g.newUplink(cfg)
	if err != nil {
		return nil, err
	}
	p.up, p.upKey = up, uplinkKey(cfg)

	p.sink = &ingest{db: db, gateway: cfg.Gateway.ID, boot: db.Boot(), start: g.start, now: g.now, stats: &ingestStats{m: g.metrics}, logger: g.log.With("component", "rules")}
	// The rules run from the sink's first event: a rule set that does not
	// compile (a CSV table that cannot be read) refuses the config, and
	// windows a crash left open are recorded as gaps before any new one.
	set, err := g.compileRules(cfg)
	if err != nil {
		return nil, err
	}
	if err := p.sink.recoverWindows(ctx); err != nil {
		g.log.Error("rules: cannot record the windows lost in a crash", "err", err)
	}
	p.sink.SetRules(ctx, set)
	p.rules = startPart(ctx, p.sink.runRules)
	var inboxSources []drivers.Readier // sources fed by the embedded broker
	for _, src := range cfg.Sources {
		sp, err := g.startSource(p, src)
		if err != nil {
			return nil, err
		}
		if r, ok := sp.readier(); ok && sp.inbox {
			inboxSources = append(inboxSources, r)
		}
	}
	p.index()

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

	g.startForwarders(p, cfg)
	g.startFeed(p, cfg)
	return p, nil
}

// newUplink builds (without I/O) the uplink client of cfg.
func (g *Gateway) newUplink(cfg *config.Config) (*uplink.Client, error) {
	up, err := uplink.New(cfg.Uplink, g.log.With("component", "uplink"))
	if err != nil {
		return nil, fmt.Errorf("uplink: %w", err)
	}
	up.OnReceiptLatency(g.metrics.observeReceipt)
	return up, nil
}

// startSource builds src's driver and runs it as a part of p, recorded in
// p.sources. An optional source that fails to build is logged and left
// out (nil, nil); a required one's failure is returned.
func (g *Gateway) startSource(p *pipeline, src config.Source) (*sourcePart, error) {
	reg, _ := drivers.Lookup(src.Driver)
	log := g.log.With("component", src.Driver, "source", src.Name)
	var inbox drivers.Inbox
	if p.broker != nil {
		inbox = p.broker
	}
	d, err := reg.New(src.Parsed, drivers.Env{Gateway: p.cfg.Gateway.ID, Logger: log, Inbox: inbox, Store: sourceStore(p.sink.db, src.Name)})
	if err != nil {
		if src.Optional {
			log.Warn("optional source failed to start; continuing without it", "err", err)
			return nil, nil
		}
		return nil, fmt.Errorf("source %q: %w", src.Name, err)
	}
	sp := &sourcePart{cfg: src, key: sourceKey(src), d: d, inbox: usesInbox(src.Parsed)}
	// Its outputs with signal rules take the rules' gpio actions while it
	// runs.
	od, drives := d.(drivers.OutputDriver)
	if drives {
		p.sink.outputs.Store(src.Name, od)
	}
	sp.part = startPart(p.ctx, func(ctx context.Context) {
		if drives {
			defer p.sink.outputs.CompareAndDelete(src.Name, od)
		}
		runDriver(ctx, d, g.observe(ctx, src, d, p.sink), src.Optional, log)
	})
	p.sources[src.Name] = sp
	return sp, nil
}

// readier returns the source's driver as a drivers.Readier, if it is one;
// nil-safe.
func (sp *sourcePart) readier() (drivers.Readier, bool) {
	if sp == nil {
		return nil, false
	}
	r, ok := sp.d.(drivers.Readier)
	return r, ok
}

// index rebuilds p.readiers from p.sources.
func (p *pipeline) index() {
	p.readiers = nil
	for name, sp := range p.sources {
		if r, ok := sp.readier(); ok {
			if p.readiers == nil {
				p.readiers = map[string]drivers.Readier{}
			}
			p.readiers[name] = r
		}
	}
}

// startForwarders runs p.up's forwarders for cfg's streams as p.fwd.
func (g *Gateway) startForwarders(p *pipeline, cfg *config.Config) {
	up := p.up
	p.fwd = startPart(p.ctx, func(ctx context.Context) { g.forwardAll(ctx, up, cfg) })
}

// startFeed runs the feeder of the drivers' gateway state as p.feed, for
// p's current sources and uplink.
func (g *Gateway) startFeed(p *pipeline, cfg *config.Config) {
	var receivers []drivers.StateReceiver
	for _, src := range cfg.Sources { // in config order
		if sp, ok := p.sources[src.Name]; ok {
			if r, ok := sp.d.(drivers.StateReceiver); ok {
				receivers = append(receivers, r)
			}
		}
	}
	db, up, budget := p.sink.db, p.up, int64(cfg.Buffer.DiskBudget)
	p.feed = startPart(p.ctx, func(ctx context.Context) { feedState(ctx, receivers, db, up, budget) })
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
	if p.cancel != nil {
		p.cancel()
	}
	for _, sp := range p.sources {
		sp.stop()
	}
	p.rules.stop()
	if p.sink != nil {
		// After the sources: no reading can open a window now.
		p.sink.SetRules(context.WithoutCancel(p.ctx), nil)
	}
	p.fwd.stop()
	p.feed.stop()
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

func (b *backlog) Next() uint64 {
	for _, s := range b.db.Stats().Streams {
		if s.Config.Name == b.stream {
			return s.NextSeq
		}
	}
	return 0
}
