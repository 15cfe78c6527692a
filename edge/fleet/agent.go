package fleet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgegw/gateway/edge/config"
	"github.com/edgegw/gateway/internal/loglimit"
)

// Runtime is the part of the gateway the agent drives.
type Runtime interface {
	// Swap applies cfg: the parts of the running pipeline whose settings
	// changed are restarted (a new pipeline replaces the old when a change
	// cannot be made in place). On error cfg did not start and the previous
	// config runs again.
	Swap(ctx context.Context, cfg *config.Config) error
	// UplinkHealthy reports whether the running pipeline's uplink is
	// healthy (every stream's producer connected, or receipts flowing) and,
	// if not, why.
	UplinkHealthy() (ok bool, why string)
	// Healthy reports whether the running pipeline works apart from its
	// uplink (every source's input live: subscribed, the embedded broker
	// listening; ingest committing to the buffer) and, if not, why.
	Healthy() (ok bool, why string)
}

// Message is the latest message of a config topic key, as OfferMessages
// takes it. Published tells a new message from the same one read again (a
// replay of a bundle's exact bytes is a new message); zero: unknown.
type Message struct {
	Payload   []byte
	Published time.Time
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
	// HealthPoll is how often probation asks the Runtime about its health;
	// default 200ms.
	HealthPoll time.Duration
	// Settle is how long the gateway must stay healthy, without a break,
	// to pass probation; default a quarter of the probation window, at most
	// 2s. A source that crashes and restarts breaks it.
	Settle time.Duration
	// RefusalLogEvery bounds how often the same refusal (same reason, same
	// bundle) is logged; default 30s. Different refusals are all logged.
	RefusalLogEvery time.Duration
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

	refusals *loglimit.Limiter[refusal] // refusal log lines, per reason and bundle
	replays  atomic.Uint64              // replays of the applied bundle's exact bytes

	mu       sync.Mutex // guards the fields below
	local    *config.Config
	rec      record
	applied  *Bundle // the running bundle; nil: the local file
	status   ConfigStatus
	rejected map[[32]byte]bool    // digests of refused messages, not reported twice
	seen     map[string]time.Time // per key: when the message last evaluated was published
}

// refusal is what refusal log lines are rate-limited by: the reason and the
// bundle (its key, version and signature).
type refusal struct {
	reason  Reason
	key     string
	version uint64
	sig     string
}

// maxRejected bounds the refused digests remembered.
const maxRejected = 64

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
	if o.RefusalLogEvery <= 0 {
		o.RefusalLogEvery = 30 * time.Second
	}
	return &Agent{o: o, store: store, rt: rt, log: o.Logger, local: o.Local,
		refusals: loglimit.New[refusal](o.RefusalLogEvery, 0),
		rejected: map[[32]byte]bool{}, seen: map[string]time.Time{},
		status: ConfigStatus{Decision: Decision{State: StateLocal}}}
}

// Replays is how many times the applied bundle's exact bytes were published
// again (and ignored).
func (a *Agent) Replays() uint64 { return a.replays.Load() }

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

// Offer is OfferMessages without publish times.
func (a *Agent) Offer(ctx context.Context, latest map[string][]byte) {
	msgs := make(map[string]Message, len(latest))
	for k, v := range latest {
		msgs[k] = Message{Payload: v}
	}
	a.OfferMessages(ctx, msgs)
}

// OfferMessages evaluates the latest message of each config topic key (a
// key absent from the map, or with an empty payload, a tombstone, has none)
// and, if the one that applies to this gateway is a new bundle, verifies and
// applies it. The gateway's own key ("gw:<id>") wins over its groups unless
// its message is refused or rolled back: then the group bundle is evaluated
// (a group bundle not newer than the versions applied or tried is skipped
// quietly then). It blocks through probation and returns early only when ctx
// ends (the bundle then stays in probation, to be tried again at the next
// start).
func (a *Agent) OfferMessages(ctx context.Context, latest map[string]Message) {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	a.mu.Lock()
	local := a.local
	a.mu.Unlock()

	payloads := make(map[string][]byte, len(latest))
	for k, m := range latest {
		if len(m.Payload) > 0 {
			payloads[k] = m.Payload
		}
	}
	own := GatewayTarget(local.Gateway.ID).Key()
	fallback := false
	if _, ok := payloads[own]; ok {
		if a.evaluate(ctx, own, latest[own], false) {
			return
		}
		delete(payloads, own)
		fallback = true
	}
	key, ok := Select(payloads, local.Gateway.ID, local.Gateway.Groups)
	if !ok {
		return
	}
	a.evaluate(ctx, key, latest[key], fallback)
}

// evaluate verifies and applies the message m of key. It reports whether
// the key stands: its bundle runs, was applied now, or stays in probation;
// false when it was refused or rolled back. fallback says the gateway's own
// key was refused: a stale group bundle is then skipped without a decision.
func (a *Agent) evaluate(ctx context.Context, key string, m Message, fallback bool) bool {
	a.mu.Lock()
	local, applied, rec := a.local, a.applied, a.rec
	a.mu.Unlock()
	data := m.Payload
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
	seen := a.rejected[digest]
	a.mu.Unlock()
	if seen {
		return false
	}
	b, err := Unmarshal(data)
	if err != nil {
		a.refuse(key, nil, digest, &RejectError{Reason: ReasonMalformed, Detail: oneLine(err.Error())})
		return false
	}
	if applied.Same(b) {
		a.noteSeen(key, m, bytes.Equal(data, rec.Applied), b)
		return true // already running
	}
	if rec.Failed.is(b) {
		a.noteSeen(key, m, false, b)
		return false // already rolled back
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
		return false
	}
	cfg, err := Verify(key, b, keys, local)
	if err == nil && b.Version <= rec.HighWater {
		if fallback {
			a.log.Debug("group fleet config not newer than the versions applied or tried; keeping the running config",
				"key", key, "version", b.Version, "high_water", rec.HighWater)
			return false
		}
		err = reject(ReasonStale, "version %d is not newer than version %d, applied or tried before (a replay or a rollback: push the old document again as a new version)",
			b.Version, rec.HighWater)
	}
	if err != nil {
		a.refuse(key, b, digest, err)
		return false
	}
	return a.apply(ctx, key, data, b, cfg)
}

// noteSeen records that the message of key, a bundle already decided (b),
// was read; a new publication of the same bundle (another publish time) is
// a replay, logged at debug and, if it is the applied bundle's exact bytes,
// counted.
func (a *Agent) noteSeen(key string, m Message, appliedBytes bool, b *Bundle) {
	if m.Published.IsZero() {
		return
	}
	a.mu.Lock()
	prev, ok := a.seen[key]
	a.seen[key] = m.Published
	a.mu.Unlock()
	if !ok || prev.Equal(m.Published) {
		return // the first read since the start, or the same message again
	}
	if appliedBytes {
		n := a.replays.Add(1)
		a.log.Debug("replay of the applied fleet config ignored", "key", key, "version", b.Version, "published", m.Published, "replays", n)
		return
	}
	a.log.Debug("fleet config published again ignored (already decided)", "key", key, "version", b.Version, "published", m.Published)
}

func (a *Agent) refuse(key string, b *Bundle, digest [32]byte, err error) {
	d := Decision{State: StateRejected, Key: key, Reason: oneLine(err.Error()), At: a.o.Now()}
	rk := refusal{reason: ReasonMalformed, key: key}
	if re, ok := err.(*RejectError); ok {
		rk.reason = re.Reason
	}
	if b != nil {
		d.Bundle = b.Version
		rk.version, rk.sig = b.Version, string(b.Signature)
	}
	// Rate-limited per reason and bundle: the message names both, so that
	// the log handler's limit (per message text) does not merge different
	// refusals either.
	if ok, held := a.refusals.Allow(rk, time.Now()); ok {
		a.log.Warn(fmt.Sprintf("fleet config refused (%s): %s version %d", rk.reason, key, d.Bundle),
			"key", key, "version", d.Bundle, "reason", d.Reason, loglimit.Held(held))
	}
	a.mu.Lock()
	if len(a.rejected) >= maxRejected {
		clear(a.rejected)
	}
	a.rejected[digest] = true
	a.rec.Last = d
	a.status.Decision = d
	a.saveLocked()
	st := a.status
	a.mu.Unlock()
	a.changed(st)
}

// apply swaps cfg in, runs probation and commits or rolls back. It reports
// whether the bundle was applied or stays in probation (ctx ended).
func (a *Agent) apply(ctx context.Context, key string, data []byte, b *Bundle, cfg *config.Config) bool {
	// The uplink counts in probation only when it was healthy before the
	// push: a push during a WAN outage is not rolled back for the outage.
	uplinkBefore, uplinkWhy := a.rt.UplinkHealthy()
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
	// The window starts now, so that a slow start counts against it.
	deadline := time.Now().Add(window)
	a.log.Info("applying fleet config", "key", key, "version", b.Version, "issued_at", b.IssuedAt, "key_id", b.KeyID, "probation", window)
	if !uplinkBefore {
		a.log.Warn("the uplink is not healthy before the push; probation does not judge it", "key", key, "version", b.Version, "uplink", uplinkWhy)
	}

	if err := a.rt.Swap(ctx, cfg); err != nil {
		if ctx.Err() != nil {
			return true
		}
		a.rolledBack(b, "the new config failed to start: "+oneLine(err.Error()))
		return false
	}
	what, why := a.probation(ctx, deadline, window, uplinkBefore)
	if ctx.Err() != nil {
		a.log.Info("stopping during probation; the bundle is tried again at the next start", "key", key, "version", b.Version)
		return true
	}
	if why != "" {
		reason := fmt.Sprintf("%s not healthy within the %s probation: %s", what, window, why)
		if err := a.rt.Swap(ctx, a.current()); err != nil {
			reason += "; returning to the previous config failed too: " + oneLine(err.Error())
		}
		a.rolledBack(b, reason)
		return false
	}
	a.mu.Lock()
	a.applied = b
	a.rec.Applied, a.rec.AppliedKey = data, key
	a.rec.HighWater = max(a.rec.HighWater, b.Version)
	a.rec.Pending = nil
	a.rec.Last = Decision{State: StateApplied, Bundle: b.Version, Key: key, At: a.o.Now()}
	if !uplinkBefore {
		if ok, uwhy := a.rt.UplinkHealthy(); !ok {
			a.rec.Last.Reason = "applied while the uplink is down (it was before the push too, so probation did not judge it): " + uwhy
		}
	}
	a.status.Decision = a.rec.Last
	a.setRunningLocked()
	a.saveLocked()
	st = a.status
	a.mu.Unlock()
	a.log.Info("fleet config applied", "key", key, "version", b.Version)
	a.changed(st)
	return true
}

// probation waits until the gateway has been healthy for the settle time
// (see AgentOptions.Settle), or deadline has passed. Healthy: the Runtime's
// Healthy and, when uplink is set, UplinkHealthy. On failure it returns
// what failed ("gateway" or "uplink") and why; why is empty on success.
func (a *Agent) probation(ctx context.Context, deadline time.Time, window time.Duration, uplink bool) (what, why string) {
	settle := a.o.Settle
	if settle <= 0 {
		settle = min(window/4, 2*time.Second)
	}
	// A start slower than the window still gets one settle time.
	if d := time.Now().Add(settle); d.After(deadline) {
		deadline = d
	}
	t := time.NewTicker(a.o.HealthPoll)
	defer t.Stop()
	var since time.Time // healthy since; zero: not healthy at the last check
	what, why = "gateway", "not checked"
	for {
		now := time.Now()
		if w, y := a.health(uplink); y != "" {
			since, what, why = time.Time{}, w, y
		} else if since.IsZero() {
			since = now
		}
		if !since.IsZero() && now.Sub(since) >= settle {
			return "", ""
		}
		if !now.Before(deadline) {
			if !since.IsZero() {
				why += fmt.Sprintf(" (healthy again only for the last %s)", now.Sub(since).Round(time.Millisecond))
			}
			return what, why
		}
		select {
		case <-ctx.Done():
			return "gateway", "stopping"
		case <-t.C:
		}
	}
}

// health asks the Runtime; why is empty when healthy.
func (a *Agent) health(uplink bool) (what, why string) {
	var bad []string
	what = "gateway"
	if ok, y := a.rt.Healthy(); !ok {
		bad = append(bad, y)
	}
	if uplink {
		if ok, y := a.rt.UplinkHealthy(); !ok {
			if len(bad) == 0 {
				what = "uplink"
			} else {
				y = "uplink: " + y
			}
			bad = append(bad, y)
		}
	}
	return what, strings.Join(bad, "; ")
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
