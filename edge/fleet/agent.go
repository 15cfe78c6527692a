package fleet

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/edgegw/gateway/edge/config"
)

// Runtime is the part of the gateway the agent drives.
type Runtime interface {
	// Swap builds and starts a pipeline for cfg, swaps it in and stops the
	// old one. On error cfg did not start and the previous config runs
	// again.
	Swap(ctx context.Context, cfg *config.Config) error
	// UplinkHealthy reports whether the running pipeline's uplink is
	// healthy (every stream's producer connected, or receipts flowing) and,
	// if not, why.
	UplinkHealthy() (ok bool, why string)
}

// Store keeps the agent's state durably: the buffer's metadata. Get returns
// nil and no error for a key never stored.
type Store interface {
	Get(key string) ([]byte, error)
	Put(key string, val []byte) error
}

// AgentOptions configure an Agent.
type AgentOptions struct {
	// Local is the local config file: identity, trusted keys, local-only
	// settings and the probation window. Required.
	Local *config.Config
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Now is the clock of the reported times; default time.Now.
	Now func() time.Time
	// OnChange is called (on the agent's goroutine) after every change of
	// ConfigStatus, e.g. to send a heartbeat at once. It must not block.
	OnChange func(ConfigStatus)
	// HealthPoll is how often probation asks Runtime.UplinkHealthy; default
	// 200ms.
	HealthPoll time.Duration
}

// maxAttempts is how often a bundle may be interrupted in probation (by a
// stop or a crash of the gateway) before it counts as failed.
const maxAttempts = 2

// Agent decides which fleet bundle the gateway runs. Start (once, before the
// pipeline starts) returns the config to start with; Offer evaluates the
// latest bundles of the config topic and applies the one for this gateway
// through the Runtime, with probation and rollback. Offer and Reload are
// serialised; Status may be called at any time.
type Agent struct {
	o     AgentOptions
	store Store
	rt    Runtime
	log   *slog.Logger

	applyMu sync.Mutex // serialises Offer and Reload

	mu       sync.Mutex // guards the fields below
	local    *config.Config
	rec      record
	applied  *Bundle // the running bundle; nil: the local file
	status   ConfigStatus
	rejected [32]byte // digest of the last rejected message, not reported twice
}

// NewAgent returns an agent; it does no I/O.
func NewAgent(o AgentOptions, store Store, rt Runtime) *Agent {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HealthPoll <= 0 {
		o.HealthPoll = 200 * time.Millisecond
	}
	return &Agent{o: o, store: store, rt: rt, log: o.Logger, local: o.Local,
		status: ConfigStatus{Decision: Decision{State: StateLocal}}}
}

// Start loads the persisted state and returns the config the gateway starts
// with: the applied bundle merged over the local file, when there is one and
// it still verifies with the trusted keys and the local settings of today;
// else the local file. A bundle interrupted in probation maxAttempts times
// is marked as failed (rolled back).
func (a *Agent) Start() *config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	raw, err := a.store.Get(MetaKey)
	if err == nil {
		a.rec, err = decodeRecord(raw)
	}
	if err != nil {
		a.log.Error("fleet state unreadable; starting from the local config file", "err", err)
		a.rec = record{}
	}
	if p := a.rec.Pending; p != nil && p.Attempts >= maxAttempts {
		a.rec.Failed, a.rec.Pending = p, nil
		a.rec.HighWater = max(a.rec.HighWater, p.Version)
		a.rec.Last = Decision{State: StateRolledBack, Bundle: p.Version, Key: a.rec.Last.Key, At: a.o.Now(),
			Reason: fmt.Sprintf("the gateway stopped %d times while version %d was in probation", p.Attempts, p.Version)}
		a.saveLocked()
	}
	a.status = ConfigStatus{Decision: a.rec.Last}
	if a.status.State == "" || a.status.State == StateProbation {
		a.status.State = StateLocal
	}
	if a.rec.Applied == nil {
		return a.local
	}
	b, err := Unmarshal(a.rec.Applied)
	var cfg *config.Config
	if err == nil {
		var keys TrustedKeys
		if keys, err = LoadTrustedKeys(a.local.Gateway.TrustedKeysFile); err == nil {
			cfg, err = Verify(a.rec.AppliedKey, b, keys, a.local)
		}
	}
	if err != nil {
		a.log.Error("the applied fleet config no longer verifies; starting from the local config file", "err", err)
		a.status.Decision = Decision{State: StateLocal, At: a.o.Now(),
			Reason: "the applied fleet config was refused at start: " + oneLine(err.Error())}
		return a.local
	}
	a.applied = b
	a.setRunningLocked()
	if a.status.State == StateLocal { // the last decision was interrupted
		a.status.Decision = Decision{State: StateApplied, Bundle: b.Version, Key: a.rec.AppliedKey, At: a.o.Now()}
	}
	a.log.Info("starting from the applied fleet config", "version", b.Version, "target", b.Target.Key())
	return cfg
}

// StartFailed tells the agent that the config Start returned (the applied
// bundle) failed to start: the bundle is marked as rolled back, will not be
// applied again, and the local file is returned to start instead.
func (a *Agent) StartFailed(err error) *config.Config {
	a.mu.Lock()
	b := a.applied
	if b == nil {
		a.mu.Unlock()
		return a.local
	}
	a.applied = nil
	a.rec.Failed = &mark{Version: b.Version, Signature: b.Signature}
	a.rec.Applied, a.rec.AppliedKey = nil, ""
	a.rec.Last = Decision{State: StateRolledBack, Bundle: b.Version, Key: b.Target.Key(), At: a.o.Now(),
		Reason: "the applied config failed to start at boot: " + oneLine(err.Error())}
	a.status = ConfigStatus{Decision: a.rec.Last}
	a.saveLocked()
	st, local := a.status, a.local
	a.mu.Unlock()
	a.changed(st)
	return local
}

// Status returns the config part of the heartbeat.
func (a *Agent) Status() ConfigStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status
}

// Offer evaluates the latest message of each config topic key (a key absent
// from the map has none) and, if the one that applies to this gateway is a
// new bundle, verifies and applies it. It blocks through probation and
// returns early only when ctx ends (the bundle then stays in probation, to
// be tried again at the next start).
func (a *Agent) Offer(ctx context.Context, latest map[string][]byte) {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	a.mu.Lock()
	local, applied, rec := a.local, a.applied, a.rec
	a.mu.Unlock()

	key, ok := Select(latest, local.Gateway.ID, local.Gateway.Groups)
	if !ok {
		return
	}
	data := latest[key]
	// The trusted keys are read for every bundle, so that adding or removing
	// a key needs no restart; a refused bundle is evaluated again (at the
	// next offer) only if the message or the trusted keys changed.
	trusted, trustErr := config.ReadFile(local.Gateway.TrustedKeysFile)
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s%d:", len(key), key, len(data))
	h.Write(data)
	h.Write(trusted)
	var digest [32]byte
	h.Sum(digest[:0])
	a.mu.Lock()
	seen := digest == a.rejected
	a.mu.Unlock()
	if seen {
		return
	}
	b, err := Unmarshal(data)
	if err != nil {
		a.refuse(key, nil, digest, &RejectError{Reason: ReasonMalformed, Detail: oneLine(err.Error())})
		return
	}
	if applied.Same(b) || rec.Failed.is(b) {
		return // already running, or already rolled back
	}
	keys, err := ParseTrustedKeys(trusted)
	switch {
	case trustErr != nil:
		err = trustErr
	case err != nil:
		err = fmt.Errorf("%s: %w", local.Gateway.TrustedKeysFile, err)
	case len(keys) == 0:
		err = fmt.Errorf("%s: no keys", local.Gateway.TrustedKeysFile)
	}
	if err != nil {
		a.refuse(key, b, digest, &RejectError{Reason: ReasonNoTrust, Detail: oneLine(err.Error())})
		return
	}
	cfg, err := Verify(key, b, keys, local)
	if err == nil && b.Version <= rec.HighWater {
		err = reject(ReasonStale, "version %d is not newer than version %d, applied or tried before (a replay or a rollback: push the old document again as a new version)",
			b.Version, rec.HighWater)
	}
	if err != nil {
		a.refuse(key, b, digest, err)
		return
	}
	a.apply(ctx, key, data, b, cfg)
}

func (a *Agent) refuse(key string, b *Bundle, digest [32]byte, err error) {
	d := Decision{State: StateRejected, Key: key, Reason: oneLine(err.Error()), At: a.o.Now()}
	if b != nil {
		d.Bundle = b.Version
	}
	a.log.Warn("fleet config refused", "key", key, "version", d.Bundle, "reason", d.Reason)
	a.mu.Lock()
	a.rejected = digest
	a.rec.Last = d
	a.status.Decision = d
	a.saveLocked()
	st := a.status
	a.mu.Unlock()
	a.changed(st)
}

// apply swaps cfg in, runs probation and commits or rolls back.
func (a *Agent) apply(ctx context.Context, key string, data []byte, b *Bundle, cfg *config.Config) {
	a.mu.Lock()
	p := &mark{Version: b.Version, Signature: b.Signature, Attempts: 1}
	if a.rec.Pending.is(b) {
		p.Attempts = a.rec.Pending.Attempts + 1
	}
	a.rec.Pending = p
	a.rec.Last = Decision{State: StateProbation, Bundle: b.Version, Key: key, At: a.o.Now()}
	a.status.Decision = a.rec.Last
	a.saveLocked()
	st := a.status
	window := a.local.Fleet.Probation.D()
	a.mu.Unlock()
	a.changed(st)
	a.log.Info("applying fleet config", "key", key, "version", b.Version, "issued_at", b.IssuedAt, "key_id", b.KeyID, "probation", window)

	if err := a.rt.Swap(ctx, cfg); err != nil {
		if ctx.Err() != nil {
			return
		}
		a.rolledBack(b, "the new config failed to start: "+oneLine(err.Error()))
		return
	}
	ok, why := a.probation(ctx, window)
	if ctx.Err() != nil {
		return
	}
	if !ok {
		reason := fmt.Sprintf("uplink not healthy within the %s probation: %s", window, why)
		if err := a.rt.Swap(ctx, a.current()); err != nil {
			reason += "; returning to the previous config failed too: " + oneLine(err.Error())
		}
		a.rolledBack(b, reason)
		return
	}
	a.mu.Lock()
	a.applied = b
	a.rec.Applied, a.rec.AppliedKey = data, key
	a.rec.HighWater = max(a.rec.HighWater, b.Version)
	a.rec.Pending = nil
	a.rec.Last = Decision{State: StateApplied, Bundle: b.Version, Key: key, At: a.o.Now()}
	a.status.Decision = a.rec.Last
	a.setRunningLocked()
	a.saveLocked()
	st = a.status
	a.mu.Unlock()
	a.log.Info("fleet config applied", "key", key, "version", b.Version)
	a.changed(st)
}

// probation waits until the uplink is healthy or window has passed.
func (a *Agent) probation(ctx context.Context, window time.Duration) (bool, string) {
	deadline := time.Now().Add(window)
	t := time.NewTicker(a.o.HealthPoll)
	defer t.Stop()
	why := "not checked"
	for {
		var ok bool
		if ok, why = a.rt.UplinkHealthy(); ok {
			return true, ""
		}
		if !time.Now().Before(deadline) {
			return false, why
		}
		select {
		case <-ctx.Done():
			return false, "stopping"
		case <-t.C:
		}
	}
}

func (a *Agent) rolledBack(b *Bundle, reason string) {
	a.log.Error("fleet config rolled back", "version", b.Version, "reason", reason)
	a.mu.Lock()
	a.rec.Failed = &mark{Version: b.Version, Signature: b.Signature}
	a.rec.Pending = nil
	a.rec.HighWater = max(a.rec.HighWater, b.Version)
	a.rec.Last = Decision{State: StateRolledBack, Bundle: b.Version, Key: a.rec.Last.Key, Reason: reason, At: a.o.Now()}
	a.status.Decision = a.rec.Last
	a.saveLocked()
	st := a.status
	a.mu.Unlock()
	a.changed(st)
}

// current is the config the gateway returns to: the applied bundle over
// the local file, or the local file.
func (a *Agent) current() *config.Config {
	a.mu.Lock()
	local, applied := a.local, a.applied
	a.mu.Unlock()
	if applied == nil {
		return local
	}
	cfg, err := Merge(local, applied.Document)
	if err != nil {
		a.log.Error("the applied fleet config does not merge with the local file; using the local file", "err", err)
		return local
	}
	return cfg
}

// Reload takes a new local config file (e.g. on SIGHUP) and swaps in the
// running config built over it: the applied bundle merged with the new
// local-only settings, or the new local file itself.
func (a *Agent) Reload(ctx context.Context, local *config.Config) error {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	a.mu.Lock()
	a.local = local
	a.mu.Unlock()
	return a.rt.Swap(ctx, a.current())
}

func (a *Agent) setRunningLocked() {
	b := a.applied
	a.status.Version, a.status.Target, a.status.IssuedAt, a.status.KeyID = b.Version, b.Target.Key(), b.IssuedAt, b.KeyID
}

func (a *Agent) saveLocked() {
	if err := a.store.Put(MetaKey, a.rec.encode()); err != nil {
		a.log.Error("cannot persist the fleet state", "err", err)
	}
}

func (a *Agent) changed(st ConfigStatus) {
	if a.o.OnChange != nil {
		a.o.OnChange(st)
	}
}
