package fleet

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/edge/fleet"
	"github.com/edgegw/gateway/test/harness"
)

// A bundle signed by a key the operator does not trust, at version 2^64-1,
// does not wedge `gatewayctl config push`: the push names it, ignores it for
// the version, and the gateway (which refused the rogue bundle) applies it.
func TestRogueMaxVersionDoesNotWedgePush(t *testing.T) {
	r := newRig(t, "rogue", harness.FleetOptions{})
	me := fleet.GatewayTarget(r.g.ID)
	stranger, err := fleet.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	r.f.Publish(me.Key(), r.f.Sign(me, math.MaxUint64, r.f.Document(r.g.ID, harness.DocOptions{}), stranger))
	r.f.WaitConfig(r.g, 30*time.Second, "rogue bundle refused", func(c fleet.ConfigStatus) bool {
		return c.State == fleet.StateRejected && c.Bundle == math.MaxUint64
	})
	path := r.f.Dir + "/doc.yaml"
	writeDoc(t, path, r.f.Document(r.g.ID, harness.DocOptions{Extra: true}))
	out, err := r.f.Ctl("config", "push", "--target", r.g.ID, "-f", path, "--key", r.f.KeyFile)
	if err != nil {
		t.Fatalf("push after a rogue max-version bundle: %v\n%s", err, out)
	}
	if !strings.Contains(out, "ignored for the version: gw:"+r.g.ID+" version 18446744073709551615") || !strings.Contains(out, "version 1 ") {
		t.Fatalf("push output:\n%s", out)
	}
	r.f.WaitConfig(r.g, 30*time.Second, "the normal push applied", applied(1))
	r.flowing(20)
	r.checkDelivery(t)
}

// `gatewayctl config reset --target` removes a gateway's own bundle; a group
// push afterwards is applied. Before the reset the group push is ignored
// (the own bundle wins).
func TestGroupPushAfterReset(t *testing.T) {
	f := harness.NewFleet(t, "reset")
	g := f.NewGateway("gw", harness.FleetOptions{Groups: []string{"east"}})
	g.Start()
	vOwn := f.Push("--target", g.ID, f.Document(g.ID, harness.DocOptions{ScansMaxEvents: 100000}))
	f.WaitConfig(g, 30*time.Second, "own bundle applied", applied(vOwn))
	vg1 := f.Push("--group", "east", f.Document("", harness.DocOptions{Extra: true}))
	time.Sleep(3 * time.Second)
	if hb := f.Heartbeat(g.ID); hb.Config.Version != vOwn {
		t.Fatalf("group v%d replaced the own bundle: %+v", vg1, hb.Config)
	}
	out, err := f.Ctl("config", "reset", "--target", g.ID)
	if err != nil || !strings.Contains(out, "reset gw:"+g.ID) {
		t.Fatalf("config reset: %v\n%s", err, out)
	}
	out, err = f.Ctl("config", "show")
	if err != nil || strings.Contains(out, "gw:"+g.ID) {
		t.Fatalf("after the reset, config show still lists the gateway's key: %v\n%s", err, out)
	}
	vg2 := f.Push("--group", "east", f.Document("", harness.DocOptions{Extra: true, ScansMaxEvents: 50000}))
	hb := f.WaitConfig(g, 30*time.Second, "group push after the reset applied", applied(vg2))
	if hb.Config.Target != "group:east" {
		t.Fatalf("heartbeat %+v", hb.Config)
	}
}

// SIGTERM during probation (a pushed config whose uplink cannot connect)
// stops the gateway promptly, not after its stop timeout.
func TestSIGTERMInProbation(t *testing.T) {
	r := newRig(t, "sigterm", harness.FleetOptions{Probation: "30s"})
	r.flowing(10)
	dead := r.f.Document(r.g.ID, harness.DocOptions{ServiceURL: "pulsar://127.0.0.1:1", UplinkExtra: "  connection_timeout: 1s\n"})
	v := r.f.Push("--target", r.g.ID, dead)
	r.f.WaitConfig(r.g, 30*time.Second, "in probation", func(c fleet.ConfigStatus) bool {
		return c.State == fleet.StateProbation && c.Bundle == v
	})
	time.Sleep(time.Second)
	start := time.Now()
	r.g.Stop()
	took := time.Since(start)
	t.Logf("stopped %s after SIGTERM in probation", took.Round(time.Millisecond))
	if took > 8*time.Second {
		t.Fatalf("stopping in probation took %s", took)
	}
	r.traffic.Stop()
}

// A push while the uplink is unhealthy (here: the deduplication check
// cannot reach the admin API, so nothing forwards) is not rolled back for
// the uplink: it was unhealthy before the push too. Events are buffered and
// delivered once the uplink is fixed by the next push.
func TestPushDuringWANOutageNotRolledBack(t *testing.T) {
	dead := harness.DocOptions{AdminURL: "http://127.0.0.1:1"}
	f := harness.NewFleet(t, "wan")
	g := f.NewGateway("gw", harness.FleetOptions{Probation: "3s", Doc: dead})
	col := harness.Collect(t, f.Topic("scans"))
	g.Start()
	f.WaitConfig(g, 30*time.Second, "first heartbeat, ready", func(c fleet.ConfigStatus) bool {
		hb := f.Heartbeat(g.ID)
		return c.State == fleet.StateLocal && hb.Ready && hb.Uplink != fleet.UplinkOnline
	})
	pub := harness.NewPublisher(t, f.MQTT, g.ID+"-pub")
	for n := 1; n <= 20; n++ {
		pub.MustPublish(g.ScanTopic("dock1", "scn1"), harness.ScanPayload("traffic", n))
	}
	v := f.Push("--target", g.ID, f.Document(g.ID, harness.DocOptions{AdminURL: dead.AdminURL, Extra: true}))
	hb := f.WaitConfig(g, 60*time.Second, "push during the outage decided", func(c fleet.ConfigStatus) bool {
		return c.Bundle == v && (c.State == fleet.StateApplied || c.State == fleet.StateRolledBack)
	})
	if hb.Config.State != fleet.StateApplied || !strings.Contains(hb.Config.Reason, "uplink is down") {
		t.Fatalf("push during the outage: %+v (decisions %v)", hb.Config, f.Decisions(g.ID))
	}
	for n := 21; n <= 40; n++ {
		pub.MustPublish(g.ScanTopic("dock1", "scn1"), harness.ScanPayload("traffic", n))
	}
	// The uplink is fixed by the next push: everything arrives.
	v2 := f.Push("--target", g.ID, f.Document(g.ID, harness.DocOptions{Extra: true}))
	f.WaitConfig(g, 60*time.Second, "fixed uplink applied", applied(v2))
	g.WaitDelivered(col, "scans", map[string]int{"traffic": 40}, true, 2*time.Minute)
}

func writeDoc(t *testing.T, path, doc string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
}
