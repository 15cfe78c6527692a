package fleet

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/edge/fleet"
	"github.com/edgegw/gateway/test/harness"
)

// groupDoc is one document for every gateway of a group: each runs its
// embedded broker on its own address (${local:broker_listen}) and takes
// scans on topics under its own ID (${gateway.id}).
func groupDoc(f *harness.Fleet) string {
	tenant, ns, _ := strings.Cut(f.Namespace, "/")
	return fmt.Sprintf(`broker:
  listen: ${local:broker_listen}
  allow_anonymous: true
streams:
  - name: scans
    priority: 10
  - name: telemetry
sources:
  - name: docks
    driver: mqtt
    mqtt:
      brokers: [embedded]
      subscriptions:
        - topic: %s/${gateway.id}/+dock/scanner/+device
          kind: scan
          stream: scans
          source: "{dock}-{device}"
          fields: {time: ts, attrs: [n, pub]}
uplink:
  service_url: %s
  admin_url: %s
  tenant: %s
  namespace: %s
  send_timeout: 10s
  operation_timeout: 10s
`, f.Root, f.PulsarURL, f.AdminURL, tenant, ns)
}

// setLocalValues adds fleet.local_values to a fleet gateway's local file.
func setLocalValues(t *testing.T, g *harness.FleetGateway, values map[string]string) {
	t.Helper()
	b, err := os.ReadFile(g.Config)
	if err != nil {
		t.Fatal(err)
	}
	add := "  local_values:\n"
	for k, v := range values {
		add += fmt.Sprintf("    %s: %q\n", k, v)
	}
	s := strings.Replace(string(b), "fleet:\n", "fleet:\n"+add, 1)
	if err := os.WriteFile(g.Config, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// One document pushed to a group runs on each gateway with that gateway's
// own values; a gateway of the group that lacks a value refuses the
// bundle, naming the setting and its line, and keeps its config.
func TestGroupDocumentWithLocalValues(t *testing.T) {
	f := harness.NewFleet(t, "group")
	col := harness.Collect(t, f.Topic("scans"))
	o := harness.FleetOptions{Groups: []string{"docks"}, Probation: "2s"}
	var gws []*harness.FleetGateway
	ports := map[string]int{}
	for _, name := range []string{"a", "b", "c"} {
		g := f.NewGateway(name, o)
		if name != "c" { // c does not define broker_listen
			ports[g.ID] = harness.FreePort(t)
			setLocalValues(t, g, map[string]string{"broker_listen": fmt.Sprintf("127.0.0.1:%d", ports[g.ID])})
		}
		g.Start()
		gws = append(gws, g)
	}
	v := f.Push("--group", "docks", groupDoc(f))
	for _, g := range gws[:2] {
		f.WaitConfig(g, 60*time.Second, g.ID+" applies the group document", func(c fleet.ConfigStatus) bool {
			return c.State == fleet.StateApplied && c.Version == v && c.Target == "group:docks"
		})
	}
	hb := f.WaitConfig(gws[2], 60*time.Second, "c refuses it", func(c fleet.ConfigStatus) bool {
		return c.State == fleet.StateRejected && c.Bundle == v
	})
	if want := "line 2: broker.listen: ${local:broker_listen} is not defined by this gateway"; !strings.Contains(hb.Config.Reason, want) {
		t.Fatalf("c's refusal %q does not say %q", hb.Config.Reason, want)
	}

	// Each gateway's broker listens on its own address and takes its own
	// topics: scans published to each arrive under that gateway's ID.
	want := map[string]int{}
	for _, g := range gws[:2] {
		pub := harness.NewPublisher(t, fmt.Sprintf("tcp://127.0.0.1:%d", ports[g.ID]), g.ID+"-scanner")
		for n := 1; n <= 20; n++ {
			pub.MustPublish(g.ScanTopic("dock1", "scn1"), harness.ScanPayload(g.ID, n))
		}
		want[g.ID] = 20
	}
	gws[0].WaitDelivered(col, "scans", want, true, 2*time.Minute)
	for _, m := range col.Messages() {
		if m.Event != nil && m.Event.Attrs["pub"] != m.Event.Gateway {
			t.Fatalf("scan of %v arrived from gateway %s", m.Event.Attrs["pub"], m.Event.Gateway)
		}
	}
}
