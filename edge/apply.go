package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgegw/gateway/buffer"
	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/edge/config"
	"github.com/edgegw/gateway/edge/firmware"
	"github.com/edgegw/gateway/edge/fleet"
	"github.com/edgegw/gateway/uplink"
)

// fleetState is the gateway's side of fleet operations: the agent that
// applies signed config bundles (nil when gateway.trusted_keys_file is not
// set) and the heartbeat publisher. Both use the control channel of the
// local file's uplink settings, so that no pushed document can cut the
// gateway off from its own control topics.
type fleetState struct {
	local *config.Config // the local file
	agent *fleet.Agent
	kick  chan struct{} // a heartbeat is due now

	ingestMu     sync.Mutex
	ingestErrors uint64 // store errors of ingest at the last health check
}

// fleetStartConfig is called by Run once the store is open: it loads the
// fleet state from the store's metadata and returns the config to start
// with, the applied bundle over the local file if there is one that still
// verifies, else the local file.
func (g *Gateway) fleetStartConfig(db *buffer.DB, local *config.Config) *config.Config {
	f := &fleetState{local: local, kick: make(chan struct{}, 1)}
	log := g.log.With("component", "fleet")
	if local.Gateway.TrustedKeysFile != "" {
		f.agent = fleet.NewAgent(fleet.AgentOptions{
			Local:    local,
			Logger:   log,
			Now:      g.now,
			OnChange: func(st fleet.ConfigStatus) { g.fleetChanged(f, st) },
		}, metaStore{db: db}, fleetRuntime{g})
	}
	// Published whole: the status page reads f.agent without a lock.
	g.mu.Lock()
	g.fleet = f
	g.mu.Unlock()
	if f.agent == nil {
		log.Info("fleet config is off: gateway.trusted_keys_file is not set")
		return local
	}
	cfg := f.agent.Start()
	g.mu.Lock()
	g.cfg = cfg
	g.mu.Unlock()
	f.ingestErrors = g.metrics.ingestErrors.Load()
	// Registered once per Gateway; it reads whichever agent runs.
	_ = g.metrics.reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "edge_gateway_config_replays_total",
		Help: "Publications of the applied fleet config bundle's exact bytes again, ignored (logged at debug).",
	}, func() float64 {
		g.mu.Lock()
		f := g.fleet
		g.mu.Unlock()
		if f == nil || f.agent == nil {
			return 0
		}
		return float64(f.agent.Replays())
	}))
	g.fleetChanged(f, f.agent.Status())
	return cfg
}

// fleetStartPipeline starts the pipeline Run starts with. If that config
// is an applied fleet bundle and it fails to start, the bundle is marked as
// rolled back and the local file is started instead, so that a bundle can
// never keep a gateway from starting.
func (g *Gateway) fleetStartPipeline(ctx context.Context, cfg *config.Config) (*pipeline, *config.Config, error) {
	p, err := g.startPipeline(ctx, cfg, nil)
	g.mu.Lock()
	f, db := g.fleet, g.db
	g.mu.Unlock()
	if err == nil || f == nil || f.agent == nil || cfg == f.local {
		return p, cfg, err
	}
	g.log.Error("the applied fleet config failed to start; starting the local config file", "component", "fleet", "err", err)
	local := f.agent.StartFailed(err)
	if err := configureStreams(db, local); err != nil {
		return nil, nil, err
	}
	g.mu.Lock()
	g.cfg = local
	g.mu.Unlock()
	p, err = g.startPipeline(ctx, local, nil)
	return p, local, err
}

// fleetChanged records a config state change for /metrics and /status.json
// and asks for a heartbeat at once.
func (g *Gateway) fleetChanged(f *fleetState, st fleet.ConfigStatus) {
	v := ""
	if st.Version > 0 {
		v = strconv.FormatUint(st.Version, 10)
	}
	g.setConfigState(v, string(st.State))
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// kickHeartbeat asks for a heartbeat at once.
func (g *Gateway) kickHeartbeat() {
	g.mu.Lock()
	f := g.fleet
	g.mu.Unlock()
	if f == nil {
		return
	}
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// startFleet starts watching the config topic and sending heartbeats; the
// returned function stops both, sends a last heartbeat that says the gateway
// is stopping, and closes the control channel.
func (g *Gateway) startFleet(ctx context.Context) (stop func()) {
	g.mu.Lock()
	f := g.fleet
	g.mu.Unlock()
	if f == nil {
		return func() {}
	}
	local, log := f.local, g.log.With("component", "fleet")
	hb := local.Fleet.Heartbeat.D()
	if f.agent == nil && hb == 0 {
		return func() {}
	}
	ctl, err := uplink.NewControl(local.Uplink, log)
	if err != nil {
		log.Error("fleet control channel unusable; no fleet config, no heartbeats", "err", err)
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if f.agent != nil {
		keys := fleet.Keys(local.Gateway.ID, local.Gateway.Groups)
		topic := ctl.Topic(local.Fleet.ConfigTopic)
		log.Info("watching fleet config", "topic", topic, "keys", keys)
		wg.Go(func() {
			_ = ctl.Watch(ctx, topic, func(k string) bool { return slices.Contains(keys, k) },
				func(latest map[string]uplink.KeyedMessage) {
					m := make(map[string]fleet.Message, len(latest))
					for k, v := range latest {
						m[k] = fleet.Message{Payload: v.Payload, Published: v.Published}
					}
					f.agent.OfferMessages(ctx, m)
				})
		})
	}
	if f.agent != nil && g.opts.FirmwareDir != "" {
		o := newOTA(g, g.opts.FirmwareDir, local)
		g.mu.Lock()
		g.ota = o
		g.mu.Unlock()
		keys := o.keys()
		topic := ctl.Topic(firmware.ManifestTopic)
		o.log.Info("watching firmware releases", "topic", topic, "keys", keys, "dir", g.opts.FirmwareDir)
		wg.Go(func() {
			_ = ctl.Watch(ctx, topic, func(k string) bool { return slices.Contains(keys, k) }, o.offer)
		})
		wg.Go(func() { o.run(ctx, ctl) })
	}
	hbs := &heartbeats{g: g, f: f, ctl: ctl, topic: ctl.Topic(local.Fleet.StatusTopic), every: hb, log: log}
	if hb > 0 {
		wg.Go(func() { hbs.run(ctx) })
	}
	return func() {
		cancel()
		wg.Wait()
		if hb > 0 {
			sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
			hbs.send(sctx, true)
			scancel()
		}
		done := make(chan struct{})
		go func() { ctl.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			log.Warn("control channel close is taking long; not waiting")
		}
	}
}

// heartbeats publishes the gateway's fleet.Status, keyed by gateway ID.
type heartbeats struct {
	g       *Gateway
	f       *fleetState
	ctl     *uplink.Control
	topic   string
	every   time.Duration
	log     *slog.Logger
	failing bool // only run touches it (and stop, after run ended)
}

func (h *heartbeats) run(ctx context.Context) {
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		sctx, cancel := context.WithTimeout(ctx, max(h.every, 5*time.Second))
		h.send(sctx, false)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-h.f.kick:
		}
	}
}

func (h *heartbeats) send(ctx context.Context, stopping bool) {
	b, err := json.Marshal(h.g.fleetStatus(h.f, stopping))
	if err == nil {
		err = h.ctl.Publish(ctx, h.topic, uplink.KeyedMessage{Key: h.f.local.Gateway.ID, Payload: b,
			Properties: map[string]string{"kind": "status"}})
	}
	switch {
	case err != nil && !h.failing && ctx.Err() == nil:
		h.failing = true
		h.log.Warn("cannot send heartbeats; retrying every interval", "topic", h.topic, "err", err)
	case err == nil && h.failing:
		h.failing = false
		h.log.Info("heartbeats sent again", "topic", h.topic)
	}
}

// fleetStatus builds a heartbeat from the gateway's status.
func (g *Gateway) fleetStatus(f *fleetState, stopping bool) fleet.Status {
	s := g.Status()
	g.mu.Lock()
	cfg := g.cfg
	g.mu.Unlock()
	out := fleet.Status{
		Gateway: s.Gateway, Time: g.now().UTC(), HeartbeatSeconds: f.local.Fleet.Heartbeat.D().Seconds(), Stopping: stopping,
		Build:   fleet.Build{Version: g.build.Version, Commit: g.build.Commit, Go: g.build.GoVersion, Target: g.build.Target},
		Started: s.Started, Boot: s.Boot, Ready: s.Ready, Quarantined: s.Quarantined, Streams: []fleet.StreamStatus{},
	}
	if f.agent != nil {
		out.Config = f.agent.Status()
	} else {
		out.Config.State, out.Config.Reason = fleet.StateLocal, "fleet config is off (no gateway.trusted_keys_file)"
	}
	out.Firmware = s.Firmware
	configured, connected := 0, 0
	for _, ss := range s.Streams {
		out.Streams = append(out.Streams, fleet.StreamStatus{Name: ss.Name, Backlog: ss.Depth, Bytes: ss.Bytes,
			OldestAgeSeconds: ss.OldestAgeSec, Dropped: ss.Dropped, UplinkOnline: ss.UplinkOnline, UplinkError: ss.UplinkError})
		out.Drops += ss.Dropped
		if slices.ContainsFunc(cfg.Streams, func(c config.Stream) bool { return c.Name == ss.Name }) {
			configured++
			if ss.UplinkOnline {
				connected++
			}
		}
	}
	switch {
	case stopping:
		out.Uplink = fleet.UplinkStopped
	case !s.Ready || configured == 0:
		out.Uplink = fleet.UplinkStarting
	case connected == configured:
		out.Uplink = fleet.UplinkOnline
	case connected == 0:
		out.Uplink = fleet.UplinkOffline
	default:
		out.Uplink = fleet.UplinkPartial
	}
	return out
}

// ReloadLocal takes a new local config file (e.g. on SIGHUP). With fleet
// config on, the applied bundle stays in force, merged over the new file's
// local-only settings; otherwise it is Reload.
func (g *Gateway) ReloadLocal(ctx context.Context, local *config.Config) error {
	g.mu.Lock()
	f := g.fleet
	g.mu.Unlock()
	if f == nil || f.agent == nil {
		return g.Reload(ctx, local)
	}
	return f.agent.Reload(ctx, local)
}

// FleetStatus returns the config part of the heartbeat.
func (g *Gateway) FleetStatus() fleet.ConfigStatus {
	g.mu.Lock()
	f := g.fleet
	g.mu.Unlock()
	if f == nil || f.agent == nil {
		return fleet.ConfigStatus{Decision: fleet.Decision{State: fleet.StateLocal}}
	}
	return f.agent.Status()
}

// fleetRuntime lets the agent drive the gateway.
type fleetRuntime struct{ g *Gateway }

var _ fleet.Runtime = fleetRuntime{}

func (r fleetRuntime) Swap(ctx context.Context, cfg *config.Config) error {
	return r.g.Reload(ctx, cfg)
}

// UplinkHealthy: every stream of the running config has a connected
// producer, or has had receipts.
func (r fleetRuntime) UplinkHealthy() (bool, string) {
	g := r.g
	g.mu.Lock()
	pipe, cfg := g.pipe, g.cfg
	g.mu.Unlock()
	if pipe == nil || pipe.up == nil {
		return false, "no pipeline runs"
	}
	states := map[string]uplink.StreamState{}
	for _, s := range pipe.up.Streams() {
		states[s.Stream] = s
	}
	var bad []string
	for _, s := range cfg.Streams {
		st, ok := states[s.Name]
		switch {
		case !ok:
			bad = append(bad, s.Name+": not forwarding yet (the uplink check has not passed)")
		case st.Connected || st.Receipts > 0:
		case st.LastError != "":
			bad = append(bad, s.Name+": "+st.LastError)
		default:
			bad = append(bad, s.Name+": no producer yet")
		}
	}
	return len(bad) == 0, strings.Join(bad, "; ")
}

// Healthy: every source of the running pipeline has its input live
// (subscribed; fed by a listening embedded broker) and ingest had no store
// failures since the last check. A source that crashes and restarts is not
// ready while it restarts, which breaks probation's settle time.
func (r fleetRuntime) Healthy() (bool, string) {
	g := r.g
	g.mu.Lock()
	pipe, f := g.pipe, g.fleet
	g.mu.Unlock()
	if pipe == nil {
		return false, "no pipeline runs"
	}
	var bad []string
	if srcs := pipe.notReady(); len(srcs) > 0 {
		bad = append(bad, "sources not ready: "+strings.Join(srcs, ", "))
	}
	if f != nil {
		n := g.metrics.ingestErrors.Load()
		f.ingestMu.Lock()
		failed := n - f.ingestErrors
		f.ingestErrors = n
		f.ingestMu.Unlock()
		if failed > 0 {
			bad = append(bad, fmt.Sprintf("ingest not committing: %d inputs failed to store since the last check", failed))
		}
	}
	return len(bad) == 0, strings.Join(bad, "; ")
}

// metaStore keeps small state (the fleet agent's, a source's) in the
// buffer's metadata, under keys that start with prefix.
type metaStore struct {
	db     *buffer.DB
	prefix string
}

func (s metaStore) Get(key string) ([]byte, error) {
	b, err := s.db.GetMeta(s.prefix + key)
	if errors.Is(err, buffer.ErrNotFound) {
		return nil, nil
	}
	return b, err
}

func (s metaStore) Put(key string, val []byte) error { return s.db.PutMeta(s.prefix+key, val) }

// sourceStore is a source's drivers.Store.
func sourceStore(db *buffer.DB, source string) drivers.Store {
	return metaStore{db: db, prefix: "source/" + source + "/"}
}
