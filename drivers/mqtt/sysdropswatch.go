package mqtt

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/drivers/mqtt/ingest"
	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/internal/backoff"
)

// watchBrokerDrops starts the broker drop watch for the Run whose ctx this
// is, unless it runs already, is off, or the driver has no watchClient (a
// test's fake transport). Run calls it once connected.
func (d *Driver) watchBrokerDrops(ctx context.Context, sink drivers.Sink) {
	b := d.cfg.BrokerDrops
	newClient := d.watchClient
	if b.off() || newClient == nil || d.in.FirstStream() == "" {
		return
	}
	w := &d.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx == ctx {
		return
	}
	if w.done != nil {
		<-w.done // the previous Run's watch: its ctx has ended; one connection per client ID
	}
	w.ctx, w.done = ctx, make(chan struct{})
	go d.runBrokerWatch(ctx, sink, newClient, w.done)
}

// runBrokerWatch connects the watch, and turns its readings into gap
// events until ctx ends.
func (d *Driver) runBrokerWatch(ctx context.Context, sink drivers.Sink, newClient newClientFunc, done chan struct{}) {
	defer close(done)
	b := d.cfg.BrokerDrops
	stream, source := b.Stream, b.Source
	if stream == "" {
		stream = d.in.FirstStream()
	}
	if source == "" {
		source = defaultBrokerSource
	}
	opts := d.opts
	opts.clientID = b.ClientID
	if opts.clientID == "" {
		opts.clientID = d.opts.clientID + "-sys"
	}
	opts.wrapConn = nil
	uptimeTopic := b.UptimeTopic
	if uptimeTopic == "off" {
		uptimeTopic = ""
	}
	latest := make(chan uint64, 1) // the newest reading not yet taken
	var started atomic.Int64       // the broker's start from its latest uptime, unix s; 0: none yet
	uptimeSeen := make(chan struct{})
	var uptimeOnce sync.Once
	opts.onMessage = func(m ingest.Message) {
		if uptimeTopic != "" && m.Topic == uptimeTopic {
			f := strings.Fields(string(m.Payload))
			if len(f) == 0 {
				return
			}
			up, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil || up < 0 {
				return
			}
			started.Store(d.now().Unix() - up)
			uptimeOnce.Do(func() { close(uptimeSeen) })
			return
		}
		if m.Topic != b.Topic {
			return
		}
		v, err := strconv.ParseUint(strings.TrimSpace(string(m.Payload)), 10, 64)
		if err != nil {
			d.log.Debug("broker drop counter: not a count", "topic", b.Topic, "payload", ingest.Clip(string(m.Payload)))
			return
		}
		select { // one sender (paho's router): drain, then send cannot block
		case <-latest:
		default:
		}
		latest <- v
	}
	var cl client
	var refusedOnce sync.Once
	opts.onConnect = func() {
		sctx, cancel := context.WithTimeout(ctx, d.cfg.ConnectTimeout.D())
		defer cancel()
		filters := map[string]byte{b.Topic: 0}
		if uptimeTopic != "" {
			filters[uptimeTopic] = 0
		}
		refused, err := cl.Subscribe(sctx, filters)
		switch {
		case err != nil && ctx.Err() == nil:
			d.log.Warn("broker drop watch: subscribe failed", "topic", b.Topic, "err", err)
		case len(refused) > 0:
			refusedOnce.Do(func() {
				d.log.Warn("broker drop watch: the broker refused the subscription (ACL?); its drops are not watched", "topic", b.Topic)
			})
		}
	}
	opts.onLost = func(err error) { d.log.Info("broker drop watch: connection lost; reconnecting", "err", err) }
	cl = newClient(opts)
	bo := backoff.Backoff{Min: time.Second, Max: d.cfg.ReconnectMax.D()}
	for {
		err := cl.Connect(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		wait := bo.Next()
		d.log.Warn("broker drop watch: connect failed; retrying", "client_id", opts.clientID, "err", err, "retry_in", wait)
		if !backoff.Sleep(ctx, wait) {
			return
		}
	}
	defer cl.Disconnect(100 * time.Millisecond)
	w := &d.watch
	d.loadDropBaseline(w)
	if uptimeTopic != "" {
		// Mosquitto sends both retained values at once on subscribe; a
		// broker without an uptime topic costs this wait once.
		t := time.NewTimer(uptimeWait)
		select {
		case <-uptimeSeen:
		case <-t.C:
			d.log.Info("broker drop watch: no uptime reading; a broker restart shows only as its counter going backwards", "topic", uptimeTopic)
		case <-ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
	}
	var warned time.Time
	var unwarned uint64 // dropped since the last warning
	for {
		var v uint64
		select {
		case v = <-latest:
		case <-ctx.Done():
			return
		}
		d.link.brokerReadings.Add(1)
		w.mu.Lock()
		c, start := w.counter, w.start // advanced only once the gap is recorded
		w.mu.Unlock()
		keyStart := start
		if now := started.Load(); now != 0 {
			if start != 0 && c.have && absDiff(now, start) > int64(restartSlack/time.Second) {
				d.log.Info("the broker restarted since the last reading: its drops are counted from 0", "topic", b.Topic, "value", v)
				c = dropCounter{have: true} // the new broker's count starts at 0
			}
			start = now
		}
		g, rose, back := c.reading(v)
		if back {
			d.log.Info("broker drop counter went backwards (broker restarted?): new baseline", "topic", b.Topic, "value", v)
		}
		if rose {
			now := d.now()
			ev, err := event.NewGap(stream, source, g, now)
			if err == nil { // always: reading returns valid gaps
				ev.Received = now
				ev.Attrs["topic"] = b.Topic
				// Emitted again after a crash before the baseline below was
				// stored, it has the same key: the buffer keeps one.
				ev.DedupKey = ingest.DedupKey(b.Topic, fmt.Appendf(nil, "%d/%d-%d", keyStart, g.From, g.To))
				ev.Redelivered = true
				if !d.in.EmitReport(ctx, sink, ev, "broker drop gap") {
					return
				}
			}
			d.link.brokerDropped.Add(g.Count)
			d.link.brokerGaps.Add(1)
			unwarned += g.Count
			if now.Sub(warned) >= warnEvery {
				d.log.Warn("the MQTT broker dropped messages (\"Outgoing messages are being dropped\"): raise max_queued_messages / max_queued_bytes and max_inflight_messages in its config",
					"dropped", unwarned, "counter", v, "topic", b.Topic, "stream", stream)
				warned, unwarned = now, 0
			}
		}
		w.mu.Lock()
		changed := w.counter != c || w.start != start
		w.counter, w.start = c, start
		w.mu.Unlock()
		if changed {
			d.saveDropBaseline(dropBaseline{Value: c.last, Start: start})
		}
	}
}
