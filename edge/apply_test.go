package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/edge/config"
	"github.com/edgegw/gateway/edge/fleet"
	"github.com/edgegw/gateway/test/harness"
	"github.com/edgegw/gateway/test/testenv"
	"github.com/edgegw/gateway/uplink"
)

// applyRig is an in-process gateway with fleet config on, against the real
// Pulsar, in a namespace of its own.
type applyRig struct {
	t       *testing.T
	dir     string
	id      string
	key     *fleet.PrivateKey
	local   *config.Config
	ctl     *uplink.Control
	uplinkY string // the uplink section of documents
}

func newApplyRig(t *testing.T) *applyRig {
	pulsarURL, adminURL := testenv.Pulsar(t)
	ns := strings.SplitN(harness.Namespace(t, "apply"), "/", 2)
	r := &applyRig{t: t, dir: t.TempDir(), id: fmt.Sprintf("apply-%d", time.Now().UnixNano()%1e9)}
	var err error
	if r.key, err = fleet.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(r.dir, "trusted_keys")
	if err := os.WriteFile(keys, []byte(fleet.TrustedLine(r.key.Public(), "test")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.uplinkY = fmt.Sprintf("uplink:\n  service_url: %s\n  admin_url: %s\n  tenant: %s\n  namespace: %s\n  send_timeout: 5s\n  operation_timeout: 5s\n",
		pulsarURL, adminURL, ns[0], ns[1])
	local := fmt.Sprintf("gateway:\n  id: %s\n  trusted_keys_file: %s\nbuffer:\n  path: %s\nstreams:\n  - name: scans\n%shttp:\n  listen: \"off\"\nfleet:\n  probation: 3s\n  heartbeat: 200ms\n",
		r.id, keys, filepath.Join(r.dir, "buffer.db"), r.uplinkY)
	if r.local, err = config.Parse([]byte(local)); err != nil {
		t.Fatal(err)
	}
	if r.ctl, err = uplink.NewControl(r.local.Uplink, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.ctl.Close)
	return r
}

// run starts a gateway on the local file; the returned function stops it
// and waits for Run to return.
func (r *applyRig) run() (*Gateway, func()) {
	g := New(r.local, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() { runErr = g.Run(ctx); close(done) }()
	stop := func() {
		cancel()
		<-done
		if runErr != nil {
			r.t.Errorf("Run: %v", runErr)
		}
	}
	r.t.Cleanup(func() {
		cancel()
		<-done
	})
	testenv.Eventually(r.t, 30*time.Second, "gateway ready", func() bool { return g.Status().Ready })
	return g, stop
}

func (r *applyRig) push(version uint64, doc string) {
	r.t.Helper()
	b := &fleet.Bundle{Target: fleet.GatewayTarget(r.id), Version: version, IssuedAt: time.Now(), Document: []byte(doc)}
	b.Sign(r.key)
	data, err := fleet.Marshal(b)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.ctl.Publish(ctx, r.ctl.Topic("config"), uplink.KeyedMessage{Key: b.Target.Key(), Payload: data}); err != nil {
		r.t.Fatal(err)
	}
}

// heartbeat returns the latest heartbeat of the gateway on the status topic.
func (r *applyRig) heartbeat() *fleet.Status {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, err := r.ctl.Read(ctx, r.ctl.Topic("status"))
	if err != nil {
		return nil
	}
	m, ok := uplink.Latest(msgs)[r.id]
	if !ok {
		return nil
	}
	s, err := fleet.DecodeStatus(m.Payload)
	if err != nil {
		r.t.Fatalf("heartbeat: %v", err)
	}
	return s
}

func TestApplyProbationRollbackAndRestart(t *testing.T) {
	r := newApplyRig(t)
	g, stop := r.run()
	if st := g.FleetStatus(); st.State != fleet.StateLocal || st.Version != 0 {
		t.Fatalf("fresh gateway: %+v", st)
	}

	// v1 adds a stream: applied once the uplink is healthy.
	good := "streams:\n  - name: scans\n  - name: telemetry\n    overflow: drop-oldest\n" + r.uplinkY
	r.push(1, good)
	testenv.Eventually(t, 30*time.Second, "v1 applied", func() bool {
		st := g.FleetStatus()
		return st.State == fleet.StateApplied && st.Version == 1
	})
	if !runsStream(g, "telemetry") {
		t.Fatal("the stream added by v1 is not configured")
	}
	if got := g.Status().Config; got.Version != "1" || got.State != "applied" {
		t.Fatalf("/status.json config %+v", got)
	}
	testenv.Eventually(t, 30*time.Second, "heartbeat reports v1 applied", func() bool {
		hb := r.heartbeat()
		return hb != nil && hb.Config.Version == 1 && hb.Config.State == fleet.StateApplied && hb.Uplink == fleet.UplinkOnline && len(hb.Streams) == 2
	})

	// v2 points the uplink at a dead address: rolled back after probation.
	dead := strings.Replace(good, r.local.Uplink.ServiceURL, "pulsar://127.0.0.1:1", 1) + "  connection_timeout: 1s\n"
	dead = strings.Replace(dead, "operation_timeout: 5s", "operation_timeout: 2s", 1)
	r.push(2, dead)
	testenv.Eventually(t, 60*time.Second, "v2 rolled back", func() bool {
		st := g.FleetStatus()
		return st.State == fleet.StateRolledBack && st.Bundle == 2
	})
	st := g.FleetStatus()
	if st.Version != 1 || !strings.Contains(st.Reason, "uplink not healthy within the 3s probation") {
		t.Fatalf("rollback status %+v", st)
	}
	g.mu.Lock()
	running := g.cfg.Uplink.ServiceURL
	g.mu.Unlock()
	if running != r.local.Uplink.ServiceURL {
		t.Fatalf("running uplink %s after the rollback", running)
	}
	testenv.Eventually(t, 30*time.Second, "uplink healthy again", func() bool { ok, _ := (fleetRuntime{g}).UplinkHealthy(); return ok })

	// A stop says so on the status topic.
	stop()
	if hb := r.heartbeat(); hb == nil || !hb.Stopping || hb.Online(time.Now()) {
		t.Fatalf("last heartbeat %+v", hb)
	}

	// Restarted, the gateway runs v1 from its store at once, and does not
	// try v2 again.
	g2, _ := r.run()
	if !runsStream(g2, "telemetry") {
		t.Fatal("restart did not start from the applied bundle")
	}
	if st := g2.FleetStatus(); st.Version != 1 || st.State != fleet.StateRolledBack || st.Bundle != 2 {
		t.Fatalf("after restart: %+v", st)
	}
}

// runsStream reports whether the running config has the stream.
func runsStream(g *Gateway, name string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.cfg.Streams {
		if s.Name == name {
			return true
		}
	}
	return false
}

// An applied bundle that cannot start at the next boot (here: its embedded
// broker's port is taken) does not keep the gateway down: it starts its
// local file and reports the bundle rolled back.
func TestApplyBundleFailingAtBootFallsBack(t *testing.T) {
	r := newApplyRig(t)
	g, stop := r.run()
	port := harness.FreePort(t)
	r.push(1, fmt.Sprintf("broker:\n  listen: 127.0.0.1:%d\n  allow_anonymous: true\nstreams:\n  - name: scans\n%s", port, r.uplinkY))
	testenv.Eventually(t, 30*time.Second, "v1 applied", func() bool { return g.FleetStatus().State == fleet.StateApplied })
	stop()

	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	g2, _ := r.run()
	st := g2.FleetStatus()
	if st.State != fleet.StateRolledBack || st.Version != 0 || st.Bundle != 1 || !strings.Contains(st.Reason, "failed to start at boot") {
		t.Fatalf("status %+v", st)
	}
	g2.mu.Lock()
	running := g2.cfg
	g2.mu.Unlock()
	if running != r.local {
		t.Fatal("not running the local file")
	}
}

// After a refusal, /status.json and the status page show the running
// version, the refusal, the refused bundle's version and key, and why.
func TestStatusShowsRefusal(t *testing.T) {
	r := newApplyRig(t)
	g, _ := r.run()
	r.push(1, "streams:\n  - name: scans\n"+r.uplinkY)
	testenv.Eventually(t, 30*time.Second, "v1 applied", func() bool {
		st := g.FleetStatus()
		return st.State == fleet.StateApplied && st.Version == 1
	})
	r.push(2, "gateway:\n  id: someone-else\nstreams:\n  - name: scans\n"+r.uplinkY)
	testenv.Eventually(t, 30*time.Second, "v2 refused", func() bool {
		st := g.FleetStatus()
		return st.State == fleet.StateRejected && st.Bundle == 2
	})

	rec := get(t, g.handler(), "/status.json")
	var js struct {
		Config ConfigStatus `json:"config"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &js); err != nil {
		t.Fatalf("%v: %s", err, rec.Body)
	}
	c := js.Config
	key := fleet.GatewayTarget(r.id).Key()
	if c.Version != "1" || c.State != "rejected" || c.Bundle != 2 || c.Key != key ||
		!strings.Contains(c.Reason, "gateway.id") || !strings.Contains(c.Reason, "local-only") {
		t.Fatalf("/status.json config: %+v", c)
	}

	body := get(t, g.handler(), "/").Body.String()
	for _, want := range []string{
		`<dd id="config-version">1</dd>`,
		`<dd id="config-state">rejected`,
		`<dd id="config-bundle">version 2 (` + key + `)</dd>`,
		`<dd id="config-reason">` + html.EscapeString(c.Reason) + `</dd>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the status page lacks %s", want)
		}
	}
	if t.Failed() {
		i := strings.Index(body, `id="config"`)
		t.Logf("config section: %s", body[i:min(len(body), i+800)])
	}
}
