package fleet

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegw/gateway/edge/config"
)

// Probation judges the whole gateway: a config whose source never becomes
// ready is rolled back although its uplink is fine.
func TestProbationSourceNotReadyRolledBack(t *testing.T) {
	r := newAgentRig(t, nil)
	r.agent.Start()
	r.rt.unhealthy = func(cfg *config.Config) string {
		if cfg.Uplink.ServiceURL == "pulsar://nosub:6650" {
			return "sources not ready: mosquitto"
		}
		return ""
	}
	me := GatewayTarget("dock-7")
	r.offer(map[string][]byte{me.Key(): r.wire(r.bundle(me, 1, doc("pulsar://good:6650")))})
	st := r.offer(map[string][]byte{me.Key(): r.wire(r.bundle(me, 2, doc("pulsar://nosub:6650")))})
	if st.State != StateRolledBack || st.Version != 1 || !strings.Contains(st.Reason, "gateway not healthy within the 1s probation: sources not ready: mosquitto") {
		t.Fatalf("want rolled back for the source, got %+v", st)
	}
	if got := r.rt.current().Uplink.ServiceURL; got != "pulsar://good:6650" {
		t.Fatalf("running %s after the rollback", got)
	}
}

// A source that keeps crashing (healthy, then not, then healthy again) does
// not pass probation: health must hold for the settle time.
func TestProbationCrashLoopRolledBack(t *testing.T) {
	r := newAgentRig(t, nil)
	r.agent.Start()
	var mu sync.Mutex
	n := 0
	r.rt.unhealthy = func(cfg *config.Config) string {
		if cfg.Uplink.ServiceURL != "pulsar://flappy:6650" {
			return ""
		}
		mu.Lock()
		defer mu.Unlock()
		n++
		if n%10 < 5 { // 50ms healthy, 50ms not, at a 10ms poll
			return ""
		}
		return "sources not ready: scanner (restarting)"
	}
	me := GatewayTarget("dock-7")
	st := r.offer(map[string][]byte{me.Key(): r.wire(r.bundle(me, 1, doc("pulsar://flappy:6650")))})
	if st.State != StateRolledBack || !strings.Contains(st.Reason, "restarting") {
		t.Fatalf("want rolled back for the crash loop, got %+v", st)
	}
}

// A push while the uplink is down (a WAN outage) is judged without the
// uplink: applied, with the outage said in the reason; when the uplink was
// healthy before, losing it still rolls back.
func TestProbationWANDownNotRolledBack(t *testing.T) {
	r := newAgentRig(t, nil)
	r.agent.Start()
	r.rt.wanDown = true
	me := GatewayTarget("dock-7")
	st := r.offer(map[string][]byte{me.Key(): r.wire(r.bundle(me, 1, doc("pulsar://good:6650")))})
	if st.State != StateApplied || st.Version != 1 || !strings.Contains(st.Reason, "uplink is down") {
		t.Fatalf("want applied despite the WAN outage, got %+v", st)
	}
	// The gateway must still be healthy otherwise.
	r.rt.unhealthy = func(cfg *config.Config) string {
		if cfg.Uplink.ServiceURL == "pulsar://broken:6650" {
			return "ingest not committing"
		}
		return ""
	}
	st = r.offer(map[string][]byte{me.Key(): r.wire(r.bundle(me, 2, doc("pulsar://broken:6650")))})
	if st.State != StateRolledBack || !strings.Contains(st.Reason, "ingest not committing") {
		t.Fatalf("want rolled back for ingest, got %+v", st)
	}
	r.rt.wanDown = false
	st = r.offer(map[string][]byte{me.Key(): r.wire(r.bundle(me, 3, doc("pulsar://127.0.0.1:1")))})
	if st.State != StateRolledBack || !strings.Contains(st.Reason, "uplink not healthy") {
		t.Fatalf("uplink healthy before the push, dead after: want rolled back, got %+v", st)
	}
}

// The rollback comes within the window, counted from the start of the
// apply (a slow swap counts against it), not window + the swap.
func TestProbationRollbackWithinWindow(t *testing.T) {
	r := newAgentRig(t, nil)
	r.agent.Start()
	r.rt.swapDelay = 300 * time.Millisecond
	me := GatewayTarget("dock-7")
	start := time.Now()
	st := r.offer(map[string][]byte{me.Key(): r.wire(r.bundle(me, 1, doc("pulsar://127.0.0.1:1")))})
	took := time.Since(start)
	if st.State != StateRolledBack {
		t.Fatalf("want rolled back, got %+v", st)
	}
	// window 1s; the swap back takes another 300ms.
	if took > 1500*time.Millisecond {
		t.Fatalf("rolled back after %s, want about the 1s window plus the swap back", took)
	}
}

// Stopping during probation returns at once; the bundle stays pending.
func TestProbationStopsPromptly(t *testing.T) {
	r := newAgentRig(t, nil)
	r.agent.Start()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan time.Time)
	b := r.wire(r.bundle(GatewayTarget("dock-7"), 1, doc("pulsar://127.0.0.1:1")))
	go func() { r.agent.Offer(ctx, map[string][]byte{"gw:dock-7": b}); done <- time.Now() }()
	for r.agent.Status().State != StateProbation {
		time.Sleep(time.Millisecond)
	}
	cancelled := time.Now()
	cancel()
	if d := (<-done).Sub(cancelled); d > 100*time.Millisecond {
		t.Fatalf("Offer returned %s after the stop", d)
	}
	if st := r.agent.Status(); st.State != StateProbation {
		t.Fatalf("state %s after a stop in probation", st.State)
	}
}

// A refused bundle under the gateway's own key does not hide the group's;
// after the own key is removed (a tombstone: `gatewayctl config reset`) a
// newer group bundle is applied, an older one is skipped without a decision.
func TestGroupAfterOwnRefusedOrReset(t *testing.T) {
	r := newAgentRig(t, nil)
	r.agent.Start()
	rogue := r.bundle(GatewayTarget("dock-7"), 1<<63, doc("pulsar://evil:6650"))
	rogue.Sign(r.other)
	g1 := r.wire(r.bundle(GroupTarget("east"), 2, doc("pulsar://east:6650")))
	st := r.offer(map[string][]byte{"gw:dock-7": r.wire(rogue), "group:east": g1})
	if st.State != StateApplied || st.Version != 2 || st.Target != "group:east" {
		t.Fatalf("group bundle behind a refused own bundle: %+v", st)
	}
	// Own bundle applied; the group's is ignored while it stands.
	own := r.wire(r.bundle(GatewayTarget("dock-7"), 5, doc("pulsar://own:6650")))
	g2 := r.wire(r.bundle(GroupTarget("east"), 6, doc("pulsar://east2:6650")))
	if st := r.offer(map[string][]byte{"gw:dock-7": own, "group:east": g1}); st.Version != 5 {
		t.Fatalf("own bundle: %+v", st)
	}
	if st := r.offer(map[string][]byte{"gw:dock-7": own, "group:east": g2}); st.Version != 5 {
		t.Fatalf("the group replaced the own bundle: %+v", st)
	}
	// Reset: the own key is gone (or empty). The group bundle v6 is newer
	// than v5: applied.
	if st := r.offer(map[string][]byte{"gw:dock-7": nil, "group:east": g2}); st.State != StateApplied || st.Version != 6 || st.Target != "group:east" {
		t.Fatalf("after the reset: %+v", st)
	}
	// Another own bundle, reset, and an old group bundle: stale, refused
	// (the running one stays).
	own2 := r.wire(r.bundle(GatewayTarget("dock-7"), 7, doc("pulsar://own2:6650")))
	r.offer(map[string][]byte{"gw:dock-7": own2, "group:east": g2})
	st = r.offer(map[string][]byte{"group:east": g2})
	if st.Version != 7 || st.State != StateRejected || !strings.HasPrefix(st.Reason, "stale-version") {
		t.Fatalf("old group bundle after a reset: %+v", st)
	}
}

// Every refusal is logged, rate-limited per reason and bundle (not per
// message text): different refusals in a row are all written; the same one
// again within the interval is held back and counted.
func TestRefusalsLoggedPerReasonAndBundle(t *testing.T) {
	e := newTestEnv(t)
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rt := &fakeRuntime{}
	a := NewAgent(AgentOptions{Local: e.local, Logger: log, HealthPoll: 10 * time.Millisecond}, &memStore{}, rt)
	a.Start()
	me := GatewayTarget("dock-7")
	unknown := e.bundle(me, 3, pushedYAML)
	unknown.Sign(e.other)
	forged := e.bundle(me, 4, pushedYAML)
	forged.Document = []byte(doc("pulsar://evil:6650"))
	for _, data := range [][]byte{e.wire(unknown), []byte("junk"), e.wire(forged), e.wire(e.bundle(me, 5, "streams: []"))} {
		a.Offer(context.Background(), map[string][]byte{me.Key(): data})
	}
	// The same unknown-key bundle evaluated again (the trusted-keys file
	// changed): held back.
	if err := writeFile(e.local.Gateway.TrustedKeysFile, TrustedLine(e.key.Public(), "ops")+"\n# edited\n"); err != nil {
		t.Fatal(err)
	}
	a.Offer(context.Background(), map[string][]byte{me.Key(): e.wire(unknown)})
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, want := range []string{"refused (unknown-key)", "refused (malformed)", "refused (bad-signature)", "refused (invalid-document)"} {
		if strings.Count(out, want) != 1 {
			t.Errorf("want one %q line in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "suppressed") {
		t.Errorf("a refusal line says others were held back:\n%s", out)
	}
}

// Replays of the applied bundle's exact bytes are ignored, logged at debug
// and counted; re-reads of the same message are not replays.
func TestReplayOfAppliedCounted(t *testing.T) {
	e := newTestEnv(t)
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rt := &fakeRuntime{}
	a := NewAgent(AgentOptions{Local: e.local, Logger: log, HealthPoll: 10 * time.Millisecond}, &memStore{}, rt)
	a.Start()
	me := GatewayTarget("dock-7")
	v1 := e.wire(e.bundle(me, 1, pushedYAML))
	t1 := time.Unix(1700000000, 0)
	a.OfferMessages(context.Background(), map[string]Message{me.Key(): {Payload: v1, Published: t1}})
	a.OfferMessages(context.Background(), map[string]Message{me.Key(): {Payload: v1, Published: t1}}) // re-read
	if n := a.Replays(); n != 0 {
		t.Fatalf("a re-read counted as a replay: %d", n)
	}
	a.OfferMessages(context.Background(), map[string]Message{me.Key(): {Payload: v1, Published: t1.Add(time.Minute)}})
	if n := a.Replays(); n != 1 {
		t.Fatalf("replays %d, want 1", n)
	}
	if len(rt.swaps) != 1 {
		t.Fatalf("the replay was applied again: %d swaps", len(rt.swaps))
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(buf.String(), "level=DEBUG msg=\"replay of the applied fleet config ignored\"") {
		t.Fatalf("no debug line for the replay:\n%s", buf.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
