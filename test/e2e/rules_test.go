package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/harness"
	"github.com/edgegw/gateway/test/testenv"
)

// Edge rules with the real processes: mis-sort scans published to Mosquitto
// turn the dock's stack light on (a simulated gpio output, seen in the
// gateway's log) and put an alert naming the scan's stream and seq into
// Pulsar and Cassandra; with the uplink down the light still comes on and
// the alert waits in the buffer until the uplink is back.
func TestRulesMissortEndToEnd(t *testing.T) {
	mqttURL := testenv.MQTT(t)
	pulsarURL, adminURL := testenv.Pulsar(t)
	testenv.Cassandra(t)
	stamp := time.Now().UnixNano()
	id := fmt.Sprintf("rules-%d", stamp%1e9)
	ns := harness.Namespace(t, "rules")
	dir := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	root := fmt.Sprintf("e2e/rules-%d", stamp)
	sources := fmt.Sprintf(`  - name: routed
    driver: mqtt
    mqtt:
      brokers: [%s]
      client_id: %s-routed
      subscriptions:
        - topic: %s/routed/+dock/scanner/+device
          kind: scan
          stream: scans
          source: "{dock}-{device}"
          fields: {time: ts, attrs: [n, pub, route]}
  - name: dock3-io
    driver: gpio
    gpio:
      simulate: true
      outputs:
        - {pin: GPIO27, name: red-light, when: {signal: rules}}
`, mqttURL, id, root)
	rules := `tables:
  routes:
    inline: {R3: dock3, R5: dock5}
rules:
  - name: missort
    match: {streams: [scans], kinds: [scan]}
    when: tables.routes[attrs.route] != nil && tables.routes[attrs.route] != attrs.dock
    actions:
      - alert: {stream: alerts, attrs: [barcode, route]}
  - name: missort-dock3-light
    match: {streams: [scans], vars: {dock: dock3}}
    when: tables.routes[attrs.route] != nil && tables.routes[attrs.route] != attrs.dock
    actions:
      - gpio: {source: dock3-io, output: red-light, mode: pulse, for: 1s}
`
	config := func(serviceURL, admin string) string {
		return harness.GatewayYAML(harness.GatewayConfig{
			ID: id, BufferPath: filepath.Join(dir, "buffer.db"), MQTT: mqttURL, Root: root,
			ServiceURL: serviceURL, AdminURL: admin, Namespace: ns, HTTP: httpAddr,
			ExtraSources: sources, ExtraStreams: alertsStream, Extra: rules,
		})
	}
	gw := harness.NewGateway(t, dir, config(pulsarURL, adminURL), httpAddr)
	scans, alerts := harness.Collect(t, harness.Topic(ns, "scans")), harness.Collect(t, harness.Topic(ns, "alerts"))
	sk := harness.NewSink(t, dir, ns)
	gw.Start()
	sk.Start()
	cs := harness.Cassandra(t)

	pub := harness.NewPublisher(t, mqttURL, id+"-pub")
	scan := func(n int, route string) {
		pub.MustPublish(root+"/routed/dock3/scanner/scn-1", []byte(fmt.Sprintf(`{"barcode":"00%018d","ts":%q,"pub":"p","n":%d,"route":%q}`,
			n, time.Now().UTC().Format(time.RFC3339Nano), n, route)))
	}
	// The light's switches, from the whole log (Log is its tail).
	switched := func(on bool) int {
		b, _ := os.ReadFile(gw.LogPath)
		return strings.Count(string(b), fmt.Sprintf("output=red-light pin=GPIO27 on=%t", on))
	}
	lightOn := func() int { return switched(true) }

	// Uplink up: 20 scans, the 11th a mis-sort (route R5 leaves by dock 5).
	for n := 1; n <= 20; n++ {
		route := "R3"
		if n == 11 {
			route = "R5"
		}
		scan(n, route)
	}
	gw.Eventually(time.Minute, "one alert in Pulsar", func() bool { return alerts.Len() >= 1 })
	gw.Eventually(time.Minute, "20 scans in Pulsar", func() bool { return scans.Len() >= 20 })
	gw.Eventually(10*time.Second, "the light turned on", func() bool { return lightOn() == 1 })
	gw.Eventually(10*time.Second, "the light's 1s pulse ended", func() bool { return switched(false) == 1 })
	checkAlert(t, alerts.Messages()[0], scans.Messages(), id, 11)

	// Uplink down (nothing listens there; only the uplink restarts): the
	// light still comes on, the alert waits in the buffer.
	dead := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	reload := func(cfg string, n int) {
		t.Helper()
		if err := os.WriteFile(gw.Config, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := gw.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		gw.Eventually(30*time.Second, fmt.Sprintf("reload %d applied", n), func() bool { return strings.Count(gw.Log(), "config reloaded") >= n })
	}
	reload(config("pulsar://"+dead, "http://"+dead), 1)
	scan(21, "R3")
	scan(22, "R5")
	gw.Eventually(30*time.Second, "the light turned on again", func() error {
		if lightOn() == 2 {
			return nil
		}
		st, _ := gw.Status()
		sc, _ := st.Stream("scans")
		return fmt.Errorf("light on %d times; scans stream %+v; light rule fired %v", lightOn(), sc, gw.Metric("edge_gateway_rule_firings_total", `rule="missort-dock3-light"`))
	})
	gw.Eventually(30*time.Second, "the second alert buffered", func() error {
		st, _ := gw.Status()
		a, _ := st.Stream("alerts")
		if a.Depth != 1 || a.Sent != 0 {
			return fmt.Errorf("alerts stream %+v", a)
		}
		return nil
	})
	if n := alerts.Len(); n != 1 {
		t.Fatalf("%d alerts in Pulsar with the uplink down", n)
	}

	// Uplink back: the buffered alert and scans arrive, in Pulsar and in
	// Cassandra.
	reload(config(pulsarURL, adminURL), 2)
	gw.Eventually(time.Minute, "two alerts in Pulsar", func() bool { return alerts.Len() >= 2 })
	gw.Eventually(time.Minute, "22 scans in Pulsar", func() bool { return scans.Len() >= 22 })
	msgs := alerts.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d alerts, want 2", len(msgs))
	}
	checkAlert(t, msgs[1], scans.Messages(), id, 22)
	day := time.Now().UTC().Format("2006-01-02")
	if err := testenv.Poll(2*time.Minute, "2 alert rows in Cassandra", func() error {
		iter := cs.Query(fmt.Sprintf("SELECT stream, kind FROM %s.events WHERE gateway = ? AND day = ?", sk.Keyspace), id, day).Iter()
		var stream, kind string
		n := 0
		for iter.Scan(&stream, &kind) {
			if stream == "alerts" && kind == "alert" {
				n++
			}
		}
		if err := iter.Close(); err != nil {
			return err
		}
		if n != 2 {
			return fmt.Errorf("%d alert rows", n)
		}
		return nil
	}); err != nil {
		t.Fatalf("%v\nsink log:\n%s", err, sk.Log())
	}
}

// alertsStream is the high-priority stream the rules' alerts go to.
const alertsStream = "  - name: alerts\n    priority: 20\n    overflow: reject-new\n"

// checkAlert checks that m is the missort rule's alert for the scan with
// counter n, naming that scan's stream and seq as Pulsar has them.
func checkAlert(t *testing.T, m harness.Received, scans []harness.Received, gateway string, n int) {
	t.Helper()
	a := m.Event
	if m.Err != nil || a.Gateway != gateway || a.Kind != "alert" || a.Stream != "alerts" || a.Attrs["rule"] != "missort" || a.Attrs["stream"] != "scans" || a.Attrs["route"] != "R5" {
		t.Fatalf("alert %+v (%v)", a, m.Err)
	}
	var cause *event.Event
	for _, s := range scans {
		if v, _ := s.Event.Attrs["n"].(int64); v == int64(n) {
			cause = s.Event
		}
	}
	if cause == nil {
		t.Fatalf("scan %d not in Pulsar", n)
	}
	if fmt.Sprint(a.Attrs["seq"]) != fmt.Sprint(cause.Seq) || a.Attrs["barcode"] != cause.Attrs["barcode"] {
		t.Fatalf("alert names seq %v barcode %v; scan %d has seq %d barcode %v", a.Attrs["seq"], a.Attrs["barcode"], n, cause.Seq, cause.Attrs["barcode"])
	}
}

// A downsample window open when the gateway is killed (kill -9) is not
// lost silently: the next start records it as a gap of reason
// rule-window-lost in the readings' stream; a window open at a clean stop
// is flushed as a summary of what it held.
func TestRulesWindowLostOnKill(t *testing.T) {
	rules := `rules:
  - name: temp-1h
    match: {streams: [telemetry], kinds: [reading]}
    actions:
      - downsample: {interval: 1h}
`
	s := harness.NewSetup(t, "rulekill", harness.Options{Extra: rules})
	col := harness.Collect(t, s.Topic("telemetry"))
	s.Gateway.Start()
	pub := harness.NewPublisher(t, s.MQTT, s.ID+"-pub")
	reading := func(n int) {
		pub.MustPublish(s.Root+"/sensor/temp-1", []byte(fmt.Sprintf(`{"value":%d.5,"unit":"Cel","ts":%q,"pub":"temp","n":%d}`,
			n, time.Now().UTC().Format(time.RFC3339Nano), n)))
	}
	evaluated := func() float64 {
		return s.Gateway.Metric("edge_gateway_rule_evaluations_total", `rule="temp-1h"`)
	}
	for n := 1; n <= 10; n++ {
		reading(n)
	}
	s.Gateway.Eventually(30*time.Second, "10 readings in the window", func() bool { return evaluated() == 10 })
	if st, _ := s.Gateway.Status(); func() int64 { x, _ := st.Stream("telemetry"); return x.Depth }() != 0 {
		t.Fatal("readings stored: the window did not take them")
	}
	s.Gateway.Kill()
	s.Gateway.Start()
	s.Gateway.Eventually(time.Minute, "the lost window's gap in Pulsar", func() bool { return col.Len() >= 1 })
	gap := col.Messages()[0].Event
	g, err := event.GapOf(gap)
	if err != nil || g.Reason != "rule-window-lost" || gap.Attrs["rule"] != "temp-1h" || gap.Attrs["metric"] != "value" || gap.Source != "temp-1" || g.Count < 1 || g.To-g.From != 3599 && g.To-g.From != 3600 {
		t.Fatalf("gap %+v (%v), attrs %v", g, err, gap.Attrs)
	}
	// After the restart: 5 readings, a clean stop flushes them as one
	// summary, and no other gap is recorded.
	for n := 11; n <= 15; n++ {
		reading(n)
	}
	s.Gateway.Eventually(30*time.Second, "5 readings in the new window", func() bool { return evaluated() == 5 })
	s.Gateway.Stop()
	s.Gateway.Start()
	s.Gateway.Eventually(time.Minute, "the summary in Pulsar", func() bool { return col.Len() >= 2 })
	s.Gateway.Eventually(time.Minute, "buffer drained", s.Gateway.Drained)
	msgs := col.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d telemetry events, want the gap and one summary", len(msgs))
	}
	sum := msgs[1].Event
	if sum.Kind != "summary" || fmt.Sprint(sum.Attrs["count"]) != "5" || sum.Attrs["min"] != 11.5 || sum.Attrs["max"] != 15.5 || sum.Attrs["last"] != 15.5 || sum.Attrs["unit"] != "Cel" {
		t.Fatalf("summary %+v", sum.Attrs)
	}
}

// A cold-chain rule with silence: on readings published to Mosquitto by
// two probes. Both stay above 8 °C: both excursions start (alerts; the
// buzzer for temp-1 on). Then temp-1 falls silent while temp-2 keeps
// reporting hot: once temp-1 has sent nothing for the rule's silence, the
// gateway ends its excursion by itself (an end alert with reason silent,
// its end the last reading temp-1 sent) and turns the buzzer off; temp-2
// stays in its excursion until it cools down, which ends it as usual.
func TestRulesColdChainSilenceEndToEnd(t *testing.T) {
	const silence = 2 * time.Second
	rules := fmt.Sprintf(`rules:
  - name: excursion
    match: {streams: [telemetry], kinds: [reading]}
    when: attrs.value > 8
    for: 1s
    silence: %[1]s
    actions:
      - alert: {stream: alerts, peak: value}
  - name: excursion-buzzer
    match: {streams: [telemetry], kinds: [reading], vars: {device: temp-1}}
    when: attrs.value > 8
    for: 1s
    silence: %[1]s
    actions:
      - gpio: {source: cab-io, output: buzzer, mode: "on"}
`, silence)
	sources := `  - name: cab-io
    driver: gpio
    gpio:
      simulate: true
      outputs:
        - {pin: GPIO18, name: buzzer, when: {signal: rules}}
`
	s := harness.NewSetup(t, "silence", harness.Options{Extra: rules, ExtraSources: sources, ExtraStreams: alertsStream})
	col, alertsCol := harness.Collect(t, s.Topic("telemetry")), harness.Collect(t, s.Topic("alerts"))
	s.Gateway.Start()
	pub := harness.NewPublisher(t, s.MQTT, s.ID+"-pub")
	n := map[string]int{}
	reading := func(dev string, value float64) {
		n[dev]++
		pub.MustPublish(s.Root+"/sensor/"+dev, []byte(fmt.Sprintf(`{"value":%g,"unit":"Cel","ts":%q,"pub":"temp","n":%d}`,
			value, time.Now().UTC().Format(time.RFC3339Nano), n[dev])))
	}
	buzzer := func(on bool) int {
		b, _ := os.ReadFile(s.Gateway.LogPath)
		return strings.Count(string(b), fmt.Sprintf("output=buzzer pin=GPIO18 on=%t", on))
	}
	// alerts returns the excursion alerts in Pulsar, and the last reading
	// of each source.
	alerts := func() (as []*event.Event, last map[string]*event.Event) {
		last = map[string]*event.Event{}
		for _, m := range append(col.Messages(), alertsCol.Messages()...) {
			switch e := m.Event; {
			case e == nil:
				t.Fatalf("undecodable message: %v", m.Err)
			case e.Kind == "alert":
				as = append(as, e)
			case e.Kind == "reading":
				last[e.Source] = e
			}
		}
		return as, last
	}
	phase := func(as []*event.Event, source, phase string) *event.Event {
		for _, a := range as {
			if a.Source == source && a.Attrs["phase"] == phase {
				return a
			}
		}
		return nil
	}
	// pace publishes, every 200 ms, a reading of each probe in hot until
	// done says the gateway has done what is expected.
	pace := func(what string, hot []string, done func() error) {
		t.Helper()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		deadline := time.Now().Add(time.Minute)
		for {
			err := done()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v\ngateway log:\n%s", what, err, s.Gateway.Log())
			}
			for _, dev := range hot {
				reading(dev, 9.5)
			}
			<-tick.C
		}
	}

	pace("both excursions start", []string{"temp-1", "temp-2"}, func() error {
		as, _ := alerts()
		if phase(as, "temp-1", "start") == nil || phase(as, "temp-2", "start") == nil || buzzer(true) != 1 {
			return fmt.Errorf("%d alerts, buzzer on %d times", len(as), buzzer(true))
		}
		return nil
	})
	// temp-1 falls silent.
	pace("temp-1's excursion ends by silence", []string{"temp-2"}, func() error {
		as, _ := alerts()
		if phase(as, "temp-1", "end") == nil || buzzer(false) != 1 {
			return fmt.Errorf("%d alerts, buzzer off %d times", len(as), buzzer(false))
		}
		return nil
	})
	as, last := alerts()
	end := phase(as, "temp-1", "end")
	endAt, _ := end.Attrs["end"].(time.Time)
	if end.Attrs["reason"] != "silent" || end.Attrs["rule"] != "excursion" || end.Attrs["peak"] != 9.5 || !endAt.Equal(last["temp-1"].Received) {
		t.Fatalf("temp-1's end alert %v, want reason silent, its end %v (temp-1's last reading)", end.Attrs, last["temp-1"].Received)
	}
	if waited := end.Received.Sub(endAt); waited < silence-time.Millisecond { // times travel in µs
		t.Fatalf("ended %v after temp-1's last reading, before the %v of silence", waited, silence)
	}
	if phase(as, "temp-2", "end") != nil {
		t.Fatal("temp-2's excursion ended while it was still reporting above 8")
	}
	// temp-2 cools down: its excursion ends on that reading, not by silence.
	reading("temp-2", 5)
	s.Gateway.Eventually(time.Minute, "temp-2's excursion ends", func() bool {
		as, _ := alerts()
		return phase(as, "temp-2", "end") != nil
	})
	as, last = alerts()
	end2 := phase(as, "temp-2", "end")
	if _, silent := end2.Attrs["reason"]; silent || !end2.Attrs["end"].(time.Time).Equal(last["temp-2"].Received) {
		t.Fatalf("temp-2's end alert %v, want no reason, its end the cool reading at %v", end2.Attrs, last["temp-2"].Received)
	}
	if len(as) != 4 || buzzer(true) != 1 || buzzer(false) != 1 {
		t.Fatalf("%d alerts (want 2 starts, 2 ends), buzzer on %d and off %d times (want 1 each)", len(as), buzzer(true), buzzer(false))
	}
}
