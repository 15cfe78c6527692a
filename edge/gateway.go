package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/edgegw/gateway/buffer"
	"github.com/edgegw/gateway/edge/config"
	"github.com/edgegw/gateway/event"
)

// Build identifies the running binary; cmd/gateway sets it.
type Build struct {
	Version, Commit, GoVersion, Target string
}

// Options for New.
type Options struct {
	Logger *slog.Logger
	Build  Build
	Now    func() time.Time // injected clock; default time.Now
	// FirmwareDir is the firmware directory the launcher (gateway launch)
	// runs the gateway with; empty: over-the-air firmware is off.
	FirmwareDir string
	// Restart is called once a new release is installed: the caller stops
	// the gateway and exits with firmware.ExitRestart, so that the launcher
	// starts the release. It must not block.
	Restart func()
}

// Gateway runs one gateway: the store, the HTTP server and the pipeline.
// New starts nothing; Run runs until its context ends; Reload swaps the
// pipeline for one built from a new config.
type Gateway struct {
	log     *slog.Logger
	build   Build
	opts    Options
	now     func() time.Time
	start   time.Time
	metrics *metrics
	// ruleCounters are the rules' counters by rule name, kept across
	// swaps (rulesrun.go).
	ruleCounters ruleCounters

	mu   sync.Mutex
	cfg  *config.Config
	db   *buffer.DB
	pipe *pipeline
	http *http.Server
	ln   net.Listener
	// ready is true once the store is open and the pipeline runs.
	ready bool
	fleet *fleetState // fleet config and heartbeats (apply.go); set by Run
	ota   *ota        // over-the-air firmware (ota.go); set by startFleet when on

	reloadMu sync.Mutex // serialises Reload
}

// New returns a gateway for cfg; it starts nothing.
func New(cfg *config.Config, opts Options) *Gateway {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := newMetrics()
	m.buildInfo.WithLabelValues(opts.Build.Version, opts.Build.Commit, opts.Build.GoVersion).Set(1)
	g := &Gateway{log: opts.Logger, build: opts.Build, opts: opts, now: opts.Now, cfg: cfg, metrics: m, start: time.Now()}
	m.reg.MustRegister(ruleCollector{rc: &g.ruleCounters})
	return g
}

// Run opens the store, serves HTTP, starts the pipeline and blocks until ctx
// ends; then it stops ingest, lets in-flight appends finish, closes the
// uplink and the store.
func (g *Gateway) Run(ctx context.Context) error {
	cfg := g.cfg
	db, err := buffer.Open(cfg.Buffer.Path, g.bufferOptions(cfg))
	if err != nil {
		return fmt.Errorf("open buffer: %w", err)
	}
	defer db.Close()
	cfg = g.fleetStartConfig(db, cfg) // an applied fleet bundle overrides the local file
	if err := configureStreams(db, cfg); err != nil {
		return err
	}
	g.mu.Lock()
	g.db = db
	g.mu.Unlock()
	g.metrics.reg.MustRegister(&bufferCollector{db: db})

	if err := g.serveHTTP(cfg.HTTP); err != nil {
		return err
	}
	defer g.stopHTTP()

	p, cfg, err := g.fleetStartPipeline(ctx, cfg) // falls back to the local file if an applied bundle fails
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.pipe = p
	g.ready = true
	g.mu.Unlock()
	g.log.Info("gateway running", "gateway", cfg.Gateway.ID, "boot", db.Boot(), "streams", len(cfg.Streams), "sources", len(cfg.Sources))

	stopFleet := g.startFleet(ctx)
	<-ctx.Done()
	stopFleet()
	g.mu.Lock()
	g.ready = false
	p = g.pipe
	g.mu.Unlock()
	p.stop()
	g.log.Info("gateway stopped")
	return nil
}

// Reload applies cfg to the running pipeline: only the parts whose settings
// changed restart (plan.go); a change no part takes in place builds and
// starts a new pipeline, swaps it in and stops the old one. On error the
// previous config runs again. Settings that need a restart (gateway ID,
// buffer path) are refused.
func (g *Gateway) Reload(ctx context.Context, cfg *config.Config) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	g.mu.Lock()
	old, db, cur := g.pipe, g.db, g.cfg
	g.mu.Unlock()
	if db == nil || old == nil {
		return errors.New("gateway is not running")
	}
	if cfg.Gateway.ID != cur.Gateway.ID {
		return fmt.Errorf("gateway.id cannot change without a restart (%q → %q)", cur.Gateway.ID, cfg.Gateway.ID)
	}
	if cfg.Buffer.Path != cur.Buffer.Path {
		return fmt.Errorf("buffer.path cannot change without a restart")
	}
	if err := configureStreams(db, cfg); err != nil {
		return err
	}
	// Only what changed restarts (plan.go); a change no part can take in
	// place rebuilds the whole pipeline.
	pl := planApply(old, cfg)
	if pl.full == "" {
		p, err := g.reconfigure(old, cfg, pl)
		if p != nil {
			g.mu.Lock()
			g.pipe = p
			if err == nil {
				g.cfg = cfg
			}
			g.mu.Unlock()
		}
		switch {
		case err == nil:
			g.log.Info("config reloaded", "restarted", restartsAttr(pl))
			return nil
		case p != nil:
			g.log.Error("new config failed to start; the previous one runs again", "err", err)
			g.restoreStreams(db, cur)
			return err
		}
		// The parts could not be changed back: restart the previous config
		// in full.
		g.log.Error("new config failed to start, and its parts could not be changed back; restarting the previous config", "err", err)
		return g.restartPrevious(ctx, db, cur, err)
	}
	// Stop the old pipeline's inputs first so two MQTT sessions with the
	// same client ID never fight; buffered events are untouched. An
	// embedded broker whose section did not change survives the swap, with
	// its devices' connections.
	keep := old.handOverBroker(cur, cfg)
	old.stop()
	p, err := g.startPipeline(ctx, cfg, keep)
	if err != nil {
		g.log.Error("new config failed to start; restarting the previous one", "err", err)
		return g.restartPrevious(ctx, db, cur, err)
	}
	g.mu.Lock()
	g.pipe, g.cfg = p, cfg
	g.mu.Unlock()
	g.log.Info("config reloaded", "restarted", restartsAttr(pl))
	return nil
}

// restartPrevious starts cur's pipeline in full after a new config failed
// to start with err (its streams' limits restored first), and returns err,
// joined with the restart's own error if that fails too.
func (g *Gateway) restartPrevious(ctx context.Context, db *buffer.DB, cur *config.Config, err error) error {
	g.restoreStreams(db, cur)
	p, err2 := g.startPipeline(ctx, cur, nil)
	if err2 != nil {
		return errors.Join(err, fmt.Errorf("restart previous config: %w", err2))
	}
	g.mu.Lock()
	g.pipe = p
	g.mu.Unlock()
	return err
}

// restartsAttr is a plan's restarted parts as one log value.
func restartsAttr(pl plan) string {
	r := pl.restarts()
	if len(r) == 0 {
		return "nothing"
	}
	return strings.Join(r, ", ")
}

// restoreStreams sets the buffer's stream limits of cfg again, after an
// apply that failed.
func (g *Gateway) restoreStreams(db *buffer.DB, cfg *config.Config) {
	if err := configureStreams(db, cfg); err != nil {
		g.log.Error("cannot restore the previous stream limits", "err", err)
	}
}

func (g *Gateway) bufferOptions(cfg *config.Config) *buffer.Options {
	o := *buffer.DefaultOptions
	o.CommitWindow = cfg.Buffer.CommitWindow.D()
	o.FillWindow = cfg.Buffer.FillWindow.D()
	if o.FillWindow == 0 {
		o.FillWindow = -1 // off
	}
	o.MaxBatch = cfg.Buffer.MaxBatch
	o.JournalSize = int64(cfg.Buffer.JournalSize)
	if o.JournalSize == 0 {
		o.JournalSize = -1 // off
	}
	o.MoveInterval = cfg.Buffer.JournalMoveInterval.D()
	o.DiskBudget = int64(cfg.Buffer.DiskBudget)
	if cfg.Buffer.MaxFileSize > 0 {
		o.MaxFileSize = int64(cfg.Buffer.MaxFileSize)
	} else if cfg.Buffer.DiskBudget > 0 {
		o.MaxFileSize = 2*int64(cfg.Buffer.DiskBudget) + 64<<20
	}
	o.Now = g.now
	o.TimeSeededSeq = true
	o.Logger = g.log.With("component", "buffer")
	o.OnCommit = g.metrics.observeCommit
	gw := cfg.Gateway.ID
	o.GapEncoder = func(stream string, seq uint64, gap buffer.Gap) ([]byte, error) {
		now := g.now()
		return event.Marshal(&event.Event{
			Gateway: gw, Stream: stream, Seq: seq, Source: "gateway", Kind: event.KindGap,
			Time: gap.At, Received: now, Mono: uint64(time.Since(g.start)),
			Attrs: map[string]any{"from": gap.From, "to": gap.To, "count": gap.Count, "reason": gap.Reason},
		})
	}
	return &o
}

func configureStreams(db *buffer.DB, cfg *config.Config) error {
	for _, s := range cfg.Streams {
		pol := buffer.PolicyRejectNew
		if s.Overflow == "drop-oldest" {
			pol = buffer.PolicyDropOldest
		}
		err := db.ConfigureStream(buffer.StreamConfig{
			Name: s.Name, Priority: s.Priority, MaxBytes: int64(s.MaxBytes),
			MaxEvents: s.MaxEvents, MaxAge: s.MaxAge.D(), Overflow: pol,
		})
		if err != nil {
			return fmt.Errorf("stream %q: %w", s.Name, err)
		}
	}
	return nil
}

// readiness is what /readyz answers: the store is open, the pipeline runs
// and every driver that can tell (MQTT: connected and subscribed) has its
// input live. An offline uplink does not make the gateway unready:
// buffering is its job.
func (g *Gateway) readiness() (bool, string) {
	g.mu.Lock()
	ready, pipe := g.ready, g.pipe
	g.mu.Unlock()
	if !ready {
		return false, "store not open or ingest not running"
	}
	if srcs := pipe.notReady(); len(srcs) > 0 {
		return false, "inputs not live yet: " + strings.Join(srcs, ", ")
	}
	return true, ""
}
