package fleet

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/testenv"
)

type agentRig struct {
	*testEnv
	store   *memStore
	rt      *fakeRuntime
	agent   *Agent
	mu      sync.Mutex
	changes []ConfigStatus
}

func newAgentRig(t *testing.T, store *memStore) *agentRig {
	e := newTestEnv(t)
	if store == nil {
		store = &memStore{}
	}
	r := &agentRig{testEnv: e, store: store, rt: &fakeRuntime{dead: map[string]bool{"pulsar://127.0.0.1:1": true}}}
	r.agent = NewAgent(AgentOptions{Local: e.local, HealthPoll: 10 * time.Millisecond, OnChange: func(s ConfigStatus) {
		r.mu.Lock()
		r.changes = append(r.changes, s)
		r.mu.Unlock()
	}}, store, r.rt)
	return r
}

// restart is a new agent on the same store and keys (the gateway restarted).
func (r *agentRig) restart(t *testing.T) *agentRig {
	n := &agentRig{testEnv: r.testEnv, store: r.store, rt: &fakeRuntime{dead: r.rt.dead}}
	n.agent = NewAgent(AgentOptions{Local: r.local, HealthPoll: 10 * time.Millisecond}, r.store, n.rt)
	return n
}

func (r *agentRig) offer(latest map[string][]byte) ConfigStatus {
	r.agent.Offer(context.Background(), latest)
	return r.agent.Status()
}

func doc(serviceURL string) string {
	return "streams: [{name: scans}]\nuplink:\n  service_url: " + serviceURL + "\n  admin_url: http://127.0.0.1:8080\n"
}

func TestAgentAppliesRejectsAndRollsBack(t *testing.T) {
	r := newAgentRig(t, nil)
	if cfg := r.agent.Start(); cfg != r.local {
		t.Fatal("a fresh gateway must start from its local file")
	}
	me := GatewayTarget("dock-7")
	v1 := r.wire(r.bundle(me, 1, doc("pulsar://good:6650")))
	st := r.offer(map[string][]byte{me.Key(): v1})
	if st.State != StateApplied || st.Version != 1 || st.Target != "gw:dock-7" || r.rt.current().Uplink.ServiceURL != "pulsar://good:6650" {
		t.Fatalf("v1 not applied: %+v", st)
	}
	if r.rt.current().Buffer.Path != r.local.Buffer.Path {
		t.Fatal("local-only settings not merged")
	}
	// The same bundle again (a re-read of the topic) changes nothing.
	r.offer(map[string][]byte{me.Key(): v1})
	if len(r.rt.swaps) != 1 {
		t.Fatalf("re-offering the applied bundle swapped again: %d swaps", len(r.rt.swaps))
	}

	// Refusals leave the running config alone and say why.
	forged := r.bundle(me, 5, doc("pulsar://evil:6650"))
	forged.Document = []byte(doc("pulsar://evil2:6650"))
	for _, tc := range []struct {
		data []byte
		want Reason
	}{
		{r.wire(forged), ReasonBadSignature},
		{[]byte("not a bundle"), ReasonMalformed},
		{r.wire(r.bundle(me, 1, doc("pulsar://other:6650"))), ReasonStale},
		{r.wire(r.bundle(me, 6, "streams: []")), ReasonInvalid},
	} {
		st := r.offer(map[string][]byte{me.Key(): tc.data})
		if st.State != StateRejected || !strings.HasPrefix(st.Reason, string(tc.want)) || st.Version != 1 {
			t.Fatalf("want rejected %s, got %+v", tc.want, st)
		}
	}
	if len(r.rt.swaps) != 1 {
		t.Fatalf("a refused bundle was swapped in")
	}

	// A dead uplink fails probation: rolled back to v1.
	v2 := r.wire(r.bundle(me, 2, doc("pulsar://127.0.0.1:1")))
	st = r.offer(map[string][]byte{me.Key(): v2})
	if st.State != StateRolledBack || st.Bundle != 2 || st.Version != 1 || !strings.Contains(st.Reason, "connection refused") {
		t.Fatalf("want rolled back to v1, got %+v", st)
	}
	if got := r.rt.current().Uplink.ServiceURL; got != "pulsar://good:6650" {
		t.Fatalf("running %s after the rollback", got)
	}
	// Offered again (a reconnect re-reads the topic): not tried again.
	n := len(r.rt.swaps)
	r.offer(map[string][]byte{me.Key(): v2})
	if len(r.rt.swaps) != n {
		t.Fatal("a rolled-back bundle was tried again")
	}
	// A config that fails to start is rolled back too.
	r.rt.failNext = errBoom
	st = r.offer(map[string][]byte{me.Key(): r.wire(r.bundle(me, 3, doc("pulsar://good2:6650")))})
	if st.State != StateRolledBack || !strings.Contains(st.Reason, "failed to start: boom") {
		t.Fatalf("want rolled back after a failed start, got %+v", st)
	}

	// Every state change was reported.
	var states []State
	for _, c := range r.changes {
		states = append(states, c.State)
	}
	want := "probation applied rejected rejected rejected rejected probation rolled-back probation rolled-back"
	if got := strings.Join(toStrings(states), " "); got != want {
		t.Fatalf("reported states %q, want %q", got, want)
	}

	// After a restart the applied bundle overrides the local file, and the
	// last decision is still reported.
	r2 := r.restart(t)
	cfg := r2.agent.Start()
	if cfg.Uplink.ServiceURL != "pulsar://good:6650" {
		t.Fatalf("restart did not start from the applied bundle: %s", cfg.Uplink.ServiceURL)
	}
	if st := r2.agent.Status(); st.Version != 1 || st.State != StateRolledBack || st.Bundle != 3 {
		t.Fatalf("status after restart %+v", st)
	}
}

func toStrings(s []State) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = string(v)
	}
	return out
}

func TestAgentGroupsAndStartChecks(t *testing.T) {
	r := newAgentRig(t, nil)
	r.agent.Start()
	g := r.wire(r.bundle(GroupTarget("east"), 4, doc("pulsar://east:6650")))
	if st := r.offer(map[string][]byte{"group:east": g, "gw:other": []byte("x")}); st.State != StateApplied || st.Target != "group:east" {
		t.Fatalf("group bundle: %+v", st)
	}
	// The gateway's own key wins over its groups, with a newer version.
	own := r.wire(r.bundle(GatewayTarget("dock-7"), 5, doc("pulsar://own:6650")))
	if st := r.offer(map[string][]byte{"group:east": g, "gw:dock-7": own}); st.State != StateApplied || st.Version != 5 {
		t.Fatalf("own bundle: %+v", st)
	}

	// The key is removed from the trusted-keys file: at the next start the
	// stored bundle no longer verifies and the local file runs.
	if err := writeFile(r.local.Gateway.TrustedKeysFile, TrustedLine(r.other.Public(), "")+"\n"); err != nil {
		t.Fatal(err)
	}
	r2 := r.restart(t)
	if cfg := r2.agent.Start(); cfg != r.local {
		t.Fatalf("started from a bundle signed by a key no longer trusted")
	}
	if st := r2.agent.Status(); st.State != StateLocal || st.Version != 0 || !strings.Contains(st.Reason, "unknown-key") {
		t.Fatalf("status %+v", st)
	}
	// ...and an older bundle is still refused as stale, even though the
	// applied one is not usable.
	old := r.bundle(GatewayTarget("dock-7"), 5, doc("pulsar://old:6650"))
	old.Sign(r.other)
	if st := r2.offer(map[string][]byte{"gw:dock-7": r.wire(old)}); st.State != StateRejected || !strings.HasPrefix(st.Reason, "stale-version") {
		t.Fatalf("want stale, got %+v", st)
	}
}

func TestAgentInterruptedProbation(t *testing.T) {
	store := &memStore{}
	r := newAgentRig(t, store)
	r.agent.Start()
	b := r.wire(r.bundle(GatewayTarget("dock-7"), 1, doc("pulsar://127.0.0.1:1")))
	// The gateway stops during probation, twice.
	for i := 0; i < maxAttempts; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); r.agent.Offer(ctx, map[string][]byte{"gw:dock-7": b}) }()
		testenv.Eventually(t, 10*time.Second, "the agent in probation", func() error {
			if st := r.agent.Status(); st.State != StateProbation {
				return fmt.Errorf("state %s", st.State)
			}
			return nil
		})
		cancel()
		<-done
		r = r.restart(t)
		r.agent.Start()
	}
	st := r.agent.Status()
	if st.State != StateRolledBack || !strings.Contains(st.Reason, "stopped 2 times") {
		t.Fatalf("want rolled back after two interrupted probations, got %+v", st)
	}
	r.offer(map[string][]byte{"gw:dock-7": b})
	if len(r.rt.swaps) != 0 {
		t.Fatal("the bundle was tried a third time")
	}
}

func TestAgentReloadLocal(t *testing.T) {
	r := newAgentRig(t, nil)
	r.agent.Start()
	r.offer(map[string][]byte{"gw:dock-7": r.wire(r.bundle(GatewayTarget("dock-7"), 1, doc("pulsar://good:6650")))})
	local := *r.local
	local.HTTP.Listen = "127.0.0.1:9999"
	if err := r.agent.Reload(context.Background(), &local); err != nil {
		t.Fatal(err)
	}
	cur := r.rt.current()
	if cur.Uplink.ServiceURL != "pulsar://good:6650" || cur.HTTP.Listen != "127.0.0.1:9999" {
		t.Fatalf("reload: uplink %s http %s", cur.Uplink.ServiceURL, cur.HTTP.Listen)
	}
}

// A bundle refused for its key is applied once the key is trusted: the
// trusted-keys file is read for every offer.
func TestAgentTrustedKeysReadEveryTime(t *testing.T) {
	r := newAgentRig(t, nil)
	r.agent.Start()
	b := r.bundle(GatewayTarget("dock-7"), 1, doc("pulsar://good:6650"))
	b.Sign(r.other)
	latest := map[string][]byte{"gw:dock-7": r.wire(b)}
	if st := r.offer(latest); st.State != StateRejected || !strings.HasPrefix(st.Reason, "unknown-key") {
		t.Fatalf("want unknown-key, got %+v", st)
	}
	n := len(r.changes)
	r.offer(latest)
	if len(r.changes) != n {
		t.Fatal("the same refusal was reported twice")
	}
	keys := TrustedLine(r.key.Public(), "") + "\n" + TrustedLine(r.other.Public(), "new") + "\n"
	if err := writeFile(r.local.Gateway.TrustedKeysFile, keys); err != nil {
		t.Fatal(err)
	}
	if st := r.offer(latest); st.State != StateApplied || st.Version != 1 {
		t.Fatalf("after trusting the key: %+v", st)
	}
	if err := writeFile(r.local.Gateway.TrustedKeysFile, "# nobody\n"); err != nil {
		t.Fatal(err)
	}
	b2 := r.wire(r.bundle(GatewayTarget("dock-7"), 2, doc("pulsar://good2:6650")))
	if st := r.offer(map[string][]byte{"gw:dock-7": b2}); st.State != StateRejected || !strings.HasPrefix(st.Reason, "trusted-keys") {
		t.Fatalf("with no trusted keys: %+v", st)
	}
}

// An applied bundle that fails to start at boot is dropped for the local
// file, and not applied again.
func TestAgentStartFailed(t *testing.T) {
	r := newAgentRig(t, nil)
	r.agent.Start()
	v1 := r.wire(r.bundle(GatewayTarget("dock-7"), 1, doc("pulsar://good:6650")))
	r.offer(map[string][]byte{"gw:dock-7": v1})
	r2 := r.restart(t)
	if cfg := r2.agent.Start(); cfg == r.local {
		t.Fatal("did not start from the applied bundle")
	}
	if cfg := r2.agent.StartFailed(errBoom); cfg != r.local {
		t.Fatal("StartFailed did not return the local file")
	}
	st := r2.agent.Status()
	if st.State != StateRolledBack || st.Version != 0 || st.Bundle != 1 || !strings.Contains(st.Reason, "at boot: boom") {
		t.Fatalf("status %+v", st)
	}
	r2.offer(map[string][]byte{"gw:dock-7": v1})
	if len(r2.rt.swaps) != 0 {
		t.Fatal("the bundle that failed at boot was applied again")
	}
	if cfg := r2.restart(t).agent.Start(); cfg != r.local {
		t.Fatal("the next start used the failed bundle")
	}
}
