package fleet

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/edge/fleet"
	"github.com/edgegw/gateway/test/harness"
)

// rig is one gateway of a fleet with scans flowing through it.
type rig struct {
	f       *harness.Fleet
	g       *harness.FleetGateway
	col     *harness.Collector
	traffic *harness.Traffic
	want    map[string]int
}

func newRig(t *testing.T, name string, o harness.FleetOptions) *rig {
	f := harness.NewFleet(t, name)
	g := f.NewGateway("gw", o)
	r := &rig{f: f, g: g, col: harness.Collect(t, f.Topic("scans")), want: map[string]int{}}
	g.Start()
	g.WarmUp(r.col)
	r.traffic = harness.StartTraffic(t, f.MQTT, g.ID+"-traffic", g.ScanTopic("dock1", "scn1"), "traffic", 50*time.Millisecond)
	f.WaitConfig(g, 30*time.Second, "first heartbeat", func(c fleet.ConfigStatus) bool { return c.State == fleet.StateLocal })
	return r
}

// flowing waits until n more scans of the steady traffic reached Pulsar.
func (r *rig) flowing(n int) {
	base := r.traffic.Sent()
	r.g.Eventually(60*time.Second, fmt.Sprintf("%d more scans delivered", n), func() bool {
		return r.delivered("traffic") >= base+n
	})
}

func (r *rig) delivered(pub string) int {
	return len(harness.Summarise(r.col.Messages()).PerPub[pub])
}

// scans are the events delivered, without the warm-up ones.
func (r *rig) scans() []harness.Received { return harness.WithoutPub(r.col.Messages(), "warmup") }

// checkDelivery stops the traffic and checks that every scan published
// arrived exactly once, in order.
func (r *rig) checkDelivery(t *testing.T) {
	t.Helper()
	r.want["traffic"] = r.traffic.Stop()
	total := 0
	for _, n := range r.want {
		total += n
	}
	r.g.Eventually(2*time.Minute, fmt.Sprintf("%d scans in Pulsar and the buffer drained", total), func() error {
		scans := r.scans()
		if len(scans) >= total && r.g.Drained() {
			return nil
		}
		st, _ := r.g.Status()
		return fmt.Errorf("%d of %d scans in Pulsar (%s); gateway status %+v", len(scans), total,
			harness.Summarise(scans).ExactlyOnce(r.want, true), st)
	})
	if probs := harness.Summarise(r.scans()).ExactlyOnce(r.want, true); probs != "" {
		t.Fatalf("delivery: %s", probs)
	}
	t.Logf("delivered %v exactly once", r.want)
}

func applied(v uint64) func(fleet.ConfigStatus) bool {
	return func(c fleet.ConfigStatus) bool { return c.State == fleet.StateApplied && c.Version == v }
}

// 1. A pushed config is applied within seconds, reported as applied, and in
// effect: its new MQTT subscription starts flowing.
func TestPushAppliedAndInEffect(t *testing.T) {
	r := newRig(t, "push", harness.FleetOptions{})
	r.flowing(20)
	start := time.Now()
	v := r.f.Push("--target", r.g.ID, r.f.Document(r.g.ID, harness.DocOptions{Extra: true}))
	hb := r.f.WaitConfig(r.g, 30*time.Second, "pushed config applied", applied(v))
	t.Logf("version %d applied and reported %s after the push", v, time.Since(start).Round(time.Millisecond))
	if hb.Config.Target != "gw:"+r.g.ID || hb.Config.KeyID == "" || hb.Uplink != fleet.UplinkOnline {
		t.Fatalf("heartbeat %+v", hb)
	}
	if cs, ok := r.g.ConfigState(); !ok || cs.Version != fmt.Sprint(v) || cs.State != "applied" {
		t.Fatalf("/status.json config %+v", cs)
	}
	// The new subscription is live.
	extra := harness.NewPublisher(t, r.f.MQTT, r.g.ID+"-extra")
	for n := 1; n <= 20; n++ {
		extra.MustPublish(r.g.ExtraTopic("scn9"), harness.ScanPayload("extra", n))
	}
	r.want["extra"] = 20
	r.g.Eventually(time.Minute, "scans on the new subscription delivered", func() bool { return r.delivered("extra") == 20 })
	for _, m := range r.col.Messages() {
		if m.Event.Attrs["pub"] == "extra" && m.Event.Source != "extra-scn9" {
			t.Fatalf("source %q, want extra-scn9 (the pushed template)", m.Event.Source)
		}
	}
	r.flowing(20)
	r.checkDelivery(t)
}

// 2. Forged, unknown-key, replayed and invalid bundles are each refused with
// the reason in the status; the running config stays.
func TestRefusedBundlesLeaveConfigUnchanged(t *testing.T) {
	r := newRig(t, "refuse", harness.FleetOptions{})
	me := fleet.GatewayTarget(r.g.ID)
	doc := r.f.Document(r.g.ID, harness.DocOptions{Extra: true})
	v1 := r.f.Sign(me, 1, doc, nil)
	r.f.Publish(me.Key(), v1)
	r.f.WaitConfig(r.g, 30*time.Second, "v1 applied", applied(1))
	r.f.Publish(me.Key(), r.f.Sign(me, 2, r.f.Document(r.g.ID, harness.DocOptions{Extra: true, ScansMaxEvents: 100000}), nil))
	r.f.WaitConfig(r.g, 30*time.Second, "v2 applied", applied(2))

	stranger, err := fleet.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	forged := r.f.Sign(me, 3, doc, nil)
	b, _ := fleet.Unmarshal(forged)
	b.Document = []byte(r.f.Document(r.g.ID, harness.DocOptions{ServiceURL: "pulsar://attacker.example:6650"}))
	forged, _ = fleet.Marshal(b)
	for _, tc := range []struct {
		name    string
		payload []byte
		bundle  uint64
		reason  fleet.Reason
	}{
		{"forged signature", forged, 3, fleet.ReasonBadSignature},
		{"unknown key", r.f.Sign(me, 4, doc, stranger), 4, fleet.ReasonUnknownKey},
		{"replayed older version", v1, 1, fleet.ReasonStale},
		{"invalid document", r.f.Sign(me, 5, "streams: []\nuplink: {}\n", nil), 5, fleet.ReasonInvalid},
		{"local-only setting", r.f.Sign(me, 6, doc+"gateway:\n  id: somebody-else\n", nil), 6, fleet.ReasonLocalOnly},
		{"for another gateway", r.f.Sign(fleet.GatewayTarget("other"), 7, doc, nil), 7, fleet.ReasonWrongTarget},
	} {
		r.f.Publish(me.Key(), tc.payload)
		hb := r.f.WaitConfig(r.g, 30*time.Second, tc.name+" refused", func(c fleet.ConfigStatus) bool {
			return c.State == fleet.StateRejected && c.Bundle == tc.bundle
		})
		if !strings.HasPrefix(hb.Config.Reason, string(tc.reason)+":") || hb.Config.Version != 2 {
			t.Fatalf("%s: reported %+v, want reason %s and version 2 still running", tc.name, hb.Config, tc.reason)
		}
		t.Logf("%s: %s", tc.name, hb.Config.Reason)
		r.flowing(5)
	}
	if cs, _ := r.g.ConfigState(); cs.Version != "2" {
		t.Fatalf("/status.json config %+v", cs)
	}
	if strings.Contains(r.g.Log(), "attacker.example") && !strings.Contains(r.g.Log(), "bad-signature") {
		t.Fatal("the forged document reached the gateway's config")
	}
	// The gateway still applies the next good push.
	v := r.f.Push("--target", r.g.ID, doc)
	if v != 8 {
		t.Fatalf("next version %d, want 8 (above every version seen)", v)
	}
	r.f.WaitConfig(r.g, 30*time.Second, "the next good push applied", applied(v))
	r.checkDelivery(t)
}

// rollbackSlack bounds how long after the probation window a rollback may
// come (the last health check, the swap back); seenSlack how long after
// that an operator may learn of it (push, heartbeat, status topic read).
const (
	rollbackSlack = 2 * time.Second
	seenSlack     = 10 * time.Second
)

// 3. A config whose uplink points at a dead address, pushed while the
// uplink was healthy, is rolled back after the probation window and within
// a small slack of it, reported as such, and events keep flowing.
func TestDeadUplinkRolledBack(t *testing.T) {
	r := newRig(t, "rollback", harness.FleetOptions{Probation: "5s"})
	r.flowing(20)
	dead := r.f.Document(r.g.ID, harness.DocOptions{ServiceURL: "pulsar://127.0.0.1:1", UplinkExtra: "  connection_timeout: 1s\n"})
	dead = strings.Replace(dead, "operation_timeout: 10s", "operation_timeout: 2s", 1)
	pushed := time.Now()
	v := r.f.Push("--target", r.g.ID, dead)
	hb := r.f.WaitConfig(r.g, 90*time.Second, "dead uplink rolled back", func(c fleet.ConfigStatus) bool {
		return c.State == fleet.StateRolledBack && c.Bundle == v
	})
	seen := time.Since(pushed)
	if hb.Config.Version != 0 || !strings.Contains(hb.Config.Reason, "uplink not healthy within the 5s probation") {
		t.Fatalf("heartbeat %+v", hb.Config)
	}
	var probation time.Time
	for _, d := range r.f.Decisions(r.g.ID) {
		if d.State == fleet.StateProbation && d.Bundle == v {
			probation = d.At
		}
	}
	// The rollback comes within the probation window plus a small slack
	// (the swap back restarts only the uplink), by the gateway's clock; and
	// the operator sees it on the status topic within the window plus the
	// push, the heartbeat and the reading.
	took := hb.Config.At.Sub(probation)
	if probation.IsZero() || took < 5*time.Second || took > 5*time.Second+rollbackSlack {
		t.Fatalf("rolled back at %s, probation began at %s: want between 5s and 5s+%s between", hb.Config.At, probation, rollbackSlack)
	}
	if seen > 5*time.Second+seenSlack {
		t.Fatalf("the rollback was reported %s after the push; want at most 5s+%s", seen, seenSlack)
	}
	t.Logf("rolled back %s after the swap, reported %s after the push: %s", took.Round(time.Millisecond), seen.Round(time.Millisecond), hb.Config.Reason)
	r.f.WaitConfig(r.g, 30*time.Second, "uplink online again", func(fleet.ConfigStatus) bool {
		return r.f.Heartbeat(r.g.ID).Uplink == fleet.UplinkOnline
	})
	r.flowing(20)
	r.checkDelivery(t)
}

// 4. A gateway stopped while config is pushed applies the latest bundle
// when it starts, and starts from it (its last known good) afterwards.
func TestPushWhileStoppedAppliedOnStart(t *testing.T) {
	r := newRig(t, "stopped", harness.FleetOptions{})
	r.flowing(20)
	r.g.Stop()
	r.g.Eventually(30*time.Second, "a heartbeat that says the gateway stopped", func() bool {
		hb := r.f.Heartbeat(r.g.ID)
		return hb != nil && hb.Stopping && !hb.Online(time.Now())
	})
	v1 := r.f.Push("--target", r.g.ID, r.f.Document(r.g.ID, harness.DocOptions{ScansMaxEvents: 100000}))
	v2 := r.f.Push("--target", r.g.ID, r.f.Document(r.g.ID, harness.DocOptions{Extra: true}))
	r.g.Start()
	r.f.WaitConfig(r.g, 30*time.Second, "latest bundle applied after the start", applied(v2))
	log := r.g.Log()
	if !strings.Contains(log, fmt.Sprintf("key=gw:%s version=%d issued_at", r.g.ID, v2)) ||
		strings.Contains(log, fmt.Sprintf("key=gw:%s version=%d issued_at", r.g.ID, v1)) {
		t.Fatalf("want v%d applied and v%d never tried:\n%s", v2, v1, log)
	}
	r.flowing(20)

	// Restarted, it starts from the applied bundle at once.
	r.g.Stop()
	r.g.Start()
	if cs, ok := r.g.ConfigState(); !ok || cs.Version != fmt.Sprint(v2) || cs.State != "applied" {
		t.Fatalf("after a restart /status.json says %+v, want version %d applied", cs, v2)
	}
	extra := harness.NewPublisher(t, r.f.MQTT, r.g.ID+"-extra")
	for n := 1; n <= 10; n++ {
		extra.MustPublish(r.g.ExtraTopic("scn9"), harness.ScanPayload("extra", n))
	}
	r.want["extra"] = 10
	r.flowing(20)
	r.checkDelivery(t)
}

// 6. `gatewayctl status` lists the fleet: three gateways, configs pushed to
// a group and to one gateway, one gateway stopped.
func TestStatusListsFleet(t *testing.T) {
	f := harness.NewFleet(t, "status")
	a := f.NewGateway("a", harness.FleetOptions{Groups: []string{"east"}})
	b := f.NewGateway("b", harness.FleetOptions{Groups: []string{"east"}})
	c := f.NewGateway("c", harness.FleetOptions{Groups: []string{"west"}})
	for _, g := range []*harness.FleetGateway{a, b, c} {
		g.Start()
	}
	vg := f.Push("--group", "east", f.Document("", harness.DocOptions{Extra: true}))
	vc := f.Push("--target", c.ID, f.Document(c.ID, harness.DocOptions{}))
	f.WaitConfig(a, 30*time.Second, "a applied the group config", applied(vg))
	f.WaitConfig(b, 30*time.Second, "b applied the group config", applied(vg))
	f.WaitConfig(c, 30*time.Second, "c applied its own config", applied(vc))
	c.Stop()

	out, err := f.Ctl("status", "-o", "json")
	if err != nil {
		t.Fatalf("gatewayctl status: %v\n%s", err, out)
	}
	var rows []struct {
		Gateway string        `json:"gateway"`
		Online  bool          `json:"online"`
		Status  *fleet.Status `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(rows) != 3 {
		t.Fatalf("want 3 gateways:\n%s", out)
	}
	want := map[string]struct {
		online  bool
		version uint64
		target  string
	}{a.ID: {true, vg, "group:east"}, b.ID: {true, vg, "group:east"}, c.ID: {false, vc, "gw:" + c.ID}}
	for _, row := range rows {
		w, ok := want[row.Gateway]
		if !ok || row.Online != w.online || row.Status.Config.Version != w.version || row.Status.Config.State != fleet.StateApplied ||
			row.Status.Config.Target != w.target || row.Status.Build.Version == "" || len(row.Status.Streams) != 2 {
			t.Fatalf("row %s: online %v config %+v; want %+v\n%s", row.Gateway, row.Online, row.Status.Config, w, out)
		}
	}
	table, err := f.Ctl("status")
	if err != nil {
		t.Fatalf("gatewayctl status: %v\n%s", err, table)
	}
	for _, id := range []string{a.ID, b.ID} {
		if !strings.Contains(lineOf(table, id), " yes ") {
			t.Fatalf("%s not online in:\n%s", id, table)
		}
	}
	if l := lineOf(table, c.ID); !strings.Contains(l, " stopped ") || !strings.Contains(l, fmt.Sprintf(" v%d ", vc)) {
		t.Fatalf("%s not shown stopped with v%d in:\n%s", c.ID, vc, table)
	}
	t.Logf("gatewayctl status:\n%s", table)
}

func lineOf(table, id string) string {
	for _, l := range strings.Split(table, "\n") {
		if strings.HasPrefix(l, id+" ") {
			return l
		}
	}
	return ""
}
