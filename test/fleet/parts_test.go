package fleet

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/edge/fleet"
	"github.com/edgegw/gateway/test/harness"
)

// embeddedDoc is a document with the embedded broker and two sources on it:
// "docks" (the scanners) and "extra".
type embeddedDoc struct {
	port        int
	maxEvents   int
	sendTimeout string
	ackWindow   string // of source extra
}

func (d embeddedDoc) render(f *harness.Fleet, g *harness.FleetGateway) string {
	return fmt.Sprintf(`broker:
  listen: 127.0.0.1:%d
  allow_anonymous: true
streams:
  - name: scans
    priority: 10
    overflow: reject-new
    max_events: %d
  - name: telemetry
    priority: 1
    overflow: drop-oldest
sources:
  - name: docks
    driver: mqtt
    mqtt:
      brokers: [embedded]
      subscriptions:
        - topic: %s/%s/+dock/scanner/+device
          kind: scan
          stream: scans
          source: "{dock}-{device}"
          fields: {time: ts, attrs: [n, pub]}
  - name: extra
    driver: mqtt
    mqtt:
      brokers: [embedded]
      ack_window: %s
      subscriptions:
        - topic: %s/%s/extra/+device
          kind: scan
          stream: scans
          source: "extra-{device}"
          fields: {time: ts, attrs: [n, pub]}
uplink:
  service_url: %s
  admin_url: %s
  tenant: %s
  namespace: %s
  send_timeout: %s
  operation_timeout: 10s
`, d.port, d.maxEvents, f.Root, g.ID, d.ackWindow, f.Root, g.ID, f.PulsarURL, f.AdminURL,
		strings.SplitN(f.Namespace, "/", 2)[0], strings.SplitN(f.Namespace, "/", 2)[1], d.sendTimeout)
}

// Events flow through the embedded broker across applies that change a
// stream limit, an uplink option and one source: none is lost, none
// arrives twice, and no device is disconnected (the traffic's clients do
// not reconnect: a disconnect fails their next publish). Each apply
// restarts only its part, as the gateway's log says.
func TestAppliesRestartOnlyTheirPart(t *testing.T) {
	f := harness.NewFleet(t, "parts")
	g := f.NewGateway("gw", harness.FleetOptions{Probation: "3s"})
	col := harness.Collect(t, f.Topic("scans"))
	g.Start()
	f.WaitConfig(g, 30*time.Second, "first heartbeat", func(c fleet.ConfigStatus) bool { return c.State == fleet.StateLocal })

	d := embeddedDoc{port: harness.FreePort(t), maxEvents: 0, sendTimeout: "10s", ackWindow: "5ms"}
	v := f.Push("--target", g.ID, d.render(f, g))
	f.WaitConfig(g, 60*time.Second, "the embedded broker's config applied", applied(v))

	broker := fmt.Sprintf("tcp://127.0.0.1:%d", d.port)
	docks := harness.StartTraffic(t, broker, g.ID+"-docks", g.ScanTopic("dock1", "scn1"), "docks", 20*time.Millisecond)
	extra := harness.StartTraffic(t, broker, g.ID+"-extra", g.ExtraTopic("scn2"), "extra", 20*time.Millisecond)
	flowing := func(n int) {
		t.Helper()
		d0, e0 := docks.Sent(), extra.Sent()
		g.Eventually(60*time.Second, fmt.Sprintf("%d more scans of each device acked", n), func() bool {
			return docks.Sent() >= d0+n && extra.Sent() >= e0+n
		})
	}
	flowing(50)

	steps := []struct {
		name      string
		change    func(*embeddedDoc)
		restarted string // the "restarted" value the gateway logs
	}{
		{"stream limit", func(d *embeddedDoc) { d.maxEvents = 1_000_000 }, `restarted=nothing`},
		{"uplink option", func(d *embeddedDoc) { d.sendTimeout = "12s" }, `restarted=uplink`},
		{"one source", func(d *embeddedDoc) { d.ackWindow = "10ms" }, `restarted="source extra"`},
	}
	for _, s := range steps {
		s.change(&d)
		before := strings.Count(g.Log(), "config reloaded")
		v := f.Push("--target", g.ID, d.render(f, g))
		f.WaitConfig(g, 60*time.Second, s.name+" applied", applied(v))
		log := g.Log()
		if strings.Count(log, "config reloaded") != before+1 {
			t.Fatalf("%s: want one more reload logged", s.name)
		}
		last := log[strings.LastIndex(log, "config reloaded"):]
		if line, _, _ := strings.Cut(last, "\n"); !strings.Contains(line, s.restarted) {
			t.Fatalf("%s: the gateway logged %q, want %s", s.name, line, s.restarted)
		}
		t.Logf("%s: %s", s.name, strings.SplitN(last, "\n", 2)[0])
		flowing(50)
	}

	want := map[string]int{"docks": docks.Stop(), "extra": extra.Stop()} // fails if a device was disconnected
	g.WaitDelivered(col, "scans", want, true, 2*time.Minute)
	t.Logf("delivered %v exactly once, in order, across three applies", want)
}
