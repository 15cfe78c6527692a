package e2e

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	pulsarconfig "github.com/apache/pulsar-client-go/pulsaradmin/pkg/admin/config"
	pulsarutils "github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/harness"
	"github.com/edgegw/gateway/test/testenv"
)

// A device that numbers its messages (fields.counter) and skips 11..19:
// the real gateway reports exactly one gap (reason device-counter, the
// device's source, 11..19, count 9), in the events stream just before the
// event that showed it, and the sink writes it as one row of the gaps
// table.
func TestDeviceCounterGapEndToEnd(t *testing.T) {
	mqttURL := testenv.MQTT(t)
	stamp := time.Now().UnixNano()
	root := fmt.Sprintf("e2e/upgaps-%d", stamp)
	s := harness.NewSetup(t, "upgaps", harness.Options{ExtraSources: fmt.Sprintf(`
  - name: counted
    driver: mqtt
    mqtt:
      brokers: [%s]
      client_id: upgaps-counted-%d
      broker_inflight: 1000
      broker_drops: {topic: "off"}
      subscriptions:
        - topic: %s/+device/scan
          kind: scan
          stream: scans
          source: "{device}"
          fields: {counter: seq}
`, mqttURL, stamp, root)})
	col := harness.Collect(t, s.Topic("scans"))
	sk := harness.NewSink(t, s.Dir, s.Namespace)
	s.Gateway.Start()
	sk.Start()
	cs := harness.Cassandra(t)

	const device = "scn-counted"
	var sent []int
	for n := 1; n <= 10; n++ {
		sent = append(sent, n)
	}
	for n := 20; n <= 25; n++ {
		sent = append(sent, n)
	}
	pub := harness.NewPublisher(t, s.MQTT, s.ID+"-pub")
	for _, n := range sent {
		pub.MustPublish(root+"/"+device+"/scan", fmt.Appendf(nil, `{"barcode":"PKG%04d","seq":%d}`, n, n))
	}

	// Pulsar: the 16 scans and one gap, in order.
	var evs []*event.Event
	s.Gateway.Eventually(2*time.Minute, "16 scans and a gap in Pulsar", func() bool {
		evs = evs[:0]
		for _, m := range col.Messages() {
			if m.Err != nil {
				t.Fatalf("undecodable message in Pulsar: %v", m.Err)
			}
			if m.Event.Source == device {
				evs = append(evs, m.Event)
			}
		}
		return len(evs) >= len(sent)+1
	})
	s.Gateway.Eventually(time.Minute, "buffer drained", s.Gateway.Drained)
	var order []string
	gaps := 0
	for _, m := range col.Messages() {
		e := m.Event
		if e.Source != device {
			if e.Kind == event.KindGap {
				t.Logf("other gap event (not this test's device): source %s attrs %v", e.Source, e.Attrs)
			}
			continue
		}
		if e.Kind == event.KindGap {
			gaps++
			g, err := event.GapOf(e)
			if err != nil {
				t.Fatal(err)
			}
			order = append(order, fmt.Sprintf("gap %d-%d/%d %s", g.From, g.To, g.Count, g.Reason))
			continue
		}
		order = append(order, fmt.Sprint(e.Attrs["counter"]))
	}
	want := []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "gap 11-19/9 device-counter", "20", "21", "22", "23", "24", "25"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("Pulsar, source %s: %q\nwant %q", device, order, want)
	}

	// Cassandra: all 17 events, and one gap row.
	day := time.Now().UTC().Format("2006-01-02")
	s.Gateway.Eventually(2*time.Minute, "17 event rows in Cassandra", func() bool {
		return harness.CountRows(cs, fmt.Sprintf("SELECT count(*) FROM %s.events WHERE gateway = ? AND day = ?", sk.Keyspace), s.ID, day) >= len(sent)+1
	})
	type gapRow struct {
		seq, from, to, count int64
		reason, source       string
	}
	var rows []gapRow
	iter := cs.Query(fmt.Sprintf("SELECT seq, from_seq, to_seq, count, reason, source FROM %s.gaps WHERE gateway = ? AND stream = ?", sk.Keyspace), s.ID, "scans").Iter()
	var r gapRow
	for iter.Scan(&r.seq, &r.from, &r.to, &r.count, &r.reason, &r.source) {
		if r.source == device {
			rows = append(rows, r)
		} else {
			t.Logf("other gap row: %+v", r)
		}
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].from != 11 || rows[0].to != 19 || rows[0].count != 9 || rows[0].reason != "device-counter" {
		t.Fatalf("gap rows of %s: %+v, want one 11-19/9 device-counter\nsink log:\n%s", device, rows, sk.Log())
	}
	if m := s.Gateway.Metric("edge_gateway_mqtt_device_lost_total", `source="counted"`); m != 9 {
		t.Errorf("edge_gateway_mqtt_device_lost_total{source=counted} = %v, want 9", m)
	}
}

// A site Mosquitto whose queue for the gateway's session overflows: the
// real gateway reports the broker's drops as exactly one gap event (reason
// broker-dropped, source mqtt-broker, in the first subscription's stream),
// whose count is the rise of Mosquitto's $SYS dropped counter and is what
// never reached the gateway, in Pulsar and as one row of Cassandra's gaps
// table.
//
// The overflow is made while the gateway is online but slow: its scans
// stream (reject-new, max_events 1) is full and its uplink for that stream
// is down (the Pulsar topic does not exist and the namespace may not create
// it), so ingest pauses, the message in flight stays unacked, and
// Mosquitto (max_inflight_messages 1, max_queued_messages 10) drops the
// rest of a burst. Creating the topic brings the uplink back.
//
// It then checks drops made while the gateway is offline (stopped, its
// persistent session kept by Mosquitto): the drop watch's baseline is kept
// in the gateway's store, so the restarted gateway reports them as one gap
// at its first reading.
func TestBrokerDropGapEndToEnd(t *testing.T) {
	pulsarURL, adminURL := testenv.Pulsar(t)
	testenv.Cassandra(t)
	const published = 100
	site := startSiteMosquitto(t, "max_queued_messages 10", "max_inflight_messages 1", "sys_interval 1")
	mon := watchSiteDrops(t, site.url)

	stamp := time.Now().UnixNano()
	id := fmt.Sprintf("brokerdrop-%d", stamp%1e9)
	ns := harness.Namespace(t, "brokerdrop")
	scansTopic := harness.Topic(ns, "scans")
	adm, err := pulsaradmin.NewClient(&pulsarconfig.Config{WebServiceURL: adminURL})
	if err != nil {
		t.Fatal(err)
	}
	nsName, err := pulsarutils.GetNamespaceName(ns)
	if err != nil {
		t.Fatal(err)
	}
	// Uplink down for scans: only the other topics the gateway uses exist.
	if err := adm.Namespaces().SetTopicAutoCreation(*nsName, pulsarutils.TopicAutoCreationConfig{Allow: false, Type: pulsarutils.NonPartitioned}); err != nil {
		t.Fatalf("turn off topic auto-creation in %s: %v", ns, err)
	}
	createTopic := func(topic string) {
		t.Helper()
		tn, err := pulsarutils.GetTopicName(topic)
		if err != nil {
			t.Fatal(err)
		}
		if err := adm.Topics().Create(*tn, 0); err != nil {
			t.Fatalf("create %s: %v", topic, err)
		}
	}
	for _, name := range []string{"config", "status"} {
		createTopic("persistent://" + ns + "/" + name)
	}
	createTopic(harness.Topic(ns, "telemetry"))

	dir := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	root := fmt.Sprintf("e2e/brokerdrop-%d", stamp)
	gw := harness.NewGateway(t, dir, harness.GatewayYAML(harness.GatewayConfig{
		ID: id, BufferPath: filepath.Join(dir, "buffer.db"), ScansMaxEvents: 1,
		MQTT: site.url, Root: root, ServiceURL: pulsarURL, AdminURL: adminURL, Namespace: ns, HTTP: httpAddr,
	}), httpAddr)
	metric := func(name string) uint64 {
		return uint64(gw.Metric("edge_gateway_mqtt_"+name, `source="mosquitto"`))
	}
	gw.Start()
	gw.Eventually(30*time.Second, "the drop watch's baseline", func() bool { return metric("broker_readings_total") >= 1 })

	pub := newSitePublisher(t, site.url, id+"-pub")
	topic := root + "/dock9/scanner/scn1"
	pub.publish(t, topic, harness.ScanPayload("filler", 1))
	gw.Eventually(30*time.Second, "scans stream full (1 of max_events 1, uplink down)", func() bool {
		st, _ := gw.Status()
		s, _ := st.Stream("scans")
		return s.Depth == 1
	})

	// The burst, right after a $SYS tick so that the counter's rise is one
	// reading.
	mon.nextTick(t)
	before, seen := mon.latest()
	burst := make([][]byte, published)
	for i := range burst {
		burst[i] = harness.ScanPayload("burst", i+1)
	}
	start := time.Now()
	pub.publish(t, topic, burst...)
	took := time.Since(start)
	mon.nextTick(t)
	mon.nextTick(t)
	after, _ := mon.latest()
	rises := mon.since(seen)
	rise := after - before
	t.Logf("online burst: published %d QoS 1 in %s; $SYS dropped %d -> %d (rise %d, readings %v); gateway: received %d, full retries %d, watch readings %d",
		published, took.Round(time.Millisecond), before, after, rise, rises, metric("received_total"), metric("full_retries_total"), metric("broker_readings_total"))
	if rise == 0 || rise >= published {
		t.Fatalf("Mosquitto dropped %d of %d: the test needs some but not all dropped\nmosquitto log:\n%s", rise, published, site.log())
	}
	if len(rises) != 1 {
		t.Fatalf("the counter rose in %d readings %v, not one (the burst straddled a $SYS interval): the gateway rightly reports one gap per rise", len(rises), rises)
	}
	gw.Eventually(30*time.Second, "the drop watch read the rise", func() bool { return metric("broker_readings_total") >= 2 })

	// Uplink back: the scans topic exists.
	createTopic(scansTopic)
	if err := adm.Namespaces().RemoveTopicAutoCreation(*nsName); err != nil {
		t.Fatalf("restore topic auto-creation in %s: %v", ns, err)
	}
	col := harness.Collect(t, scansTopic)
	sk := harness.NewSink(t, dir, ns)
	sk.Start()
	cs := harness.Cassandra(t)

	kept := published - int(rise)
	gw.Eventually(3*time.Minute, fmt.Sprintf("the %d kept scans and a gap in Pulsar", kept), func() bool {
		r := readBrokerDrop(col.Messages())
		return len(r.scans["burst"]) >= kept && len(r.gaps) >= 1
	})
	// A sentinel published now (the broker's queue has room) comes after
	// everything the broker kept.
	pub.publish(t, topic, harness.ScanPayload("sentinel", 1))
	gw.Eventually(time.Minute, "the sentinel in Pulsar", func() bool {
		return len(readBrokerDrop(col.Messages()).scans["sentinel"]) == 1
	})
	mon.nextTick(t)
	mon.nextTick(t)
	if v, _ := mon.latest(); v != after {
		t.Fatalf("$SYS dropped went on rising after the burst: %d -> %d", after, v)
	}
	gw.Eventually(time.Minute, "buffer drained", gw.Drained)

	r := readBrokerDrop(col.Messages())
	for _, p := range r.problems {
		t.Error(p)
	}
	received := len(r.scans["burst"])
	t.Logf("Pulsar: %d of %d burst scans, %d broker-dropped gap(s) %+v, other gaps %v", received, published, len(r.gaps), r.gaps, r.otherGaps)
	if len(r.gaps) != 1 {
		t.Fatalf("%d broker-dropped gap events in Pulsar %+v, want exactly 1", len(r.gaps), r.gaps)
	}
	g := r.gaps[0]
	if g.gap.Count != rise || g.gap.From != before+1 || g.gap.To != after || g.gap.Reason != "broker-dropped" {
		t.Errorf("gap %d-%d/%d %s; want %d-%d/%d broker-dropped (the counter's rise)", g.gap.From, g.gap.To, g.gap.Count, g.gap.Reason, before+1, after, rise)
	}
	if uint64(published-received) != g.gap.Count {
		t.Errorf("published %d - received %d = %d, gap count %d", published, received, published-received, g.gap.Count)
	}
	if g.source != "mqtt-broker" || g.stream != "scans" || g.topic != "$SYS/broker/publish/messages/dropped" {
		t.Errorf("gap event source %q stream %q topic %q; want mqtt-broker, scans, the $SYS counter", g.source, g.stream, g.topic)
	}
	if d, n := metric("broker_dropped_total"), metric("broker_gaps_total"); d != rise || n != 1 {
		t.Errorf("edge_gateway_mqtt_broker_dropped_total %d, broker_gaps_total %d; want %d, 1", d, n, rise)
	}

	// Cassandra: one gaps row, the same gap.
	var rows []brokerDropRow
	gw.Eventually(2*time.Minute, "the gap row in Cassandra", func() bool {
		rows = brokerDropRows(t, cs, sk.Keyspace, id)
		return len(rows) >= 1
	})
	// Every scans event is written by now (in order, after the gap's).
	gw.Eventually(time.Minute, "all scans rows in Cassandra", func() bool {
		day := time.Now().UTC().Format("2006-01-02")
		return harness.CountRows(cs, fmt.Sprintf("SELECT count(*) FROM %s.events WHERE gateway = ? AND day = ?", sk.Keyspace), id, day) >= col.Len()
	})
	rows = brokerDropRows(t, cs, sk.Keyspace, id)
	t.Logf("Cassandra gaps rows: %+v", rows)
	if len(rows) != 1 {
		t.Fatalf("%d broker-dropped gap rows %+v, want 1\nsink log:\n%s", len(rows), rows, sk.Log())
	}
	if w := (brokerDropRow{seq: int64(g.seq), from: int64(g.gap.From), to: int64(g.gap.To), count: int64(g.gap.Count), source: "mqtt-broker"}); rows[0] != w {
		t.Errorf("gap row %+v, want %+v", rows[0], w)
	}

	// Offline probe: drops while the gateway is stopped.
	gw.Stop()
	mon.nextTick(t)
	before2, seen2 := mon.latest()
	for i := range burst {
		burst[i] = harness.ScanPayload("offline", i+1)
	}
	pub.publish(t, topic, burst...)
	mon.nextTick(t)
	mon.nextTick(t)
	after2, _ := mon.latest() // retained: what the restarted gateway reads first
	rise2 := after2 - before2
	gw.Start()
	gw.Eventually(30*time.Second, "the restarted drop watch's baseline", func() bool { return metric("broker_readings_total") >= 1 })
	kept2 := published - int(rise2)
	gw.Eventually(2*time.Minute, fmt.Sprintf("the %d scans kept for the offline session in Pulsar", kept2), func() bool {
		return len(readBrokerDrop(col.Messages()).scans["offline"]) >= kept2
	})
	pub.publish(t, topic, harness.ScanPayload("sentinel", 2))
	gw.Eventually(time.Minute, "the second sentinel in Pulsar", func() bool {
		return len(readBrokerDrop(col.Messages()).scans["sentinel"]) == 2
	})
	mon.nextTick(t)
	mon.nextTick(t)
	gw.Eventually(time.Minute, "the offline drops' gap in Pulsar", func() bool { return len(readBrokerDrop(col.Messages()).gaps) >= 2 })
	gw.Eventually(time.Minute, "buffer drained", gw.Drained)
	r = readBrokerDrop(col.Messages())
	for _, p := range r.problems {
		t.Error(p)
	}
	offline := r.gaps[1:]
	t.Logf("offline: published %d while stopped; $SYS dropped %d -> %d (rise %d, readings %v); gateway got %d; after restart: watch readings %d, broker_gaps_total %d, new broker-dropped gaps in Pulsar %+v",
		published, before2, after2, rise2, mon.since(seen2), len(r.scans["offline"]), metric("broker_readings_total"), metric("broker_gaps_total"), offline)
	switch {
	case len(offline) == 0:
		t.Errorf("%d messages Mosquitto dropped while the gateway was offline are not reported", rise2)
	case len(offline) == 1 && offline[0].gap.Count == rise2 && offline[0].gap.From == before2+1 && offline[0].gap.To == after2:
		t.Logf("offline drops reported as one gap %+v", offline[0].gap)
	default:
		t.Errorf("offline drops (%d..%d, %d) reported as %+v", before2+1, after2, rise2, offline)
	}
	if got := len(r.scans["offline"]); got != kept2 {
		t.Errorf("offline: gateway got %d scans, want published %d - dropped %d = %d", got, published, rise2, kept2)
	}
}

// siteMosquitto is a private Mosquitto standing for a site's broker.
type siteMosquitto struct {
	url string
	m   *testenv.Mosquitto
}

func (s *siteMosquitto) log() string { return s.m.Log() }

// startSiteMosquitto runs Debian's mosquitto on a free loopback port with
// the given config lines (anonymous, no persistence, logging everything).
func startSiteMosquitto(t *testing.T, lines ...string) *siteMosquitto {
	t.Helper()
	m := testenv.StartMosquitto(t, func(string) []string {
		return append([]string{"allow_anonymous true", "persistence false", "log_dest stdout", "log_type all"}, lines...)
	})
	t.Cleanup(func() {
		if !t.Failed() {
			t.Logf("site mosquitto logged %q %d times", "Outgoing messages are being dropped", strings.Count(m.Log(), "Outgoing messages are being dropped"))
		}
	})
	return &siteMosquitto{url: "tcp://" + m.Addr, m: m}
}

// siteDrops follows a Mosquitto's $SYS drop counter and its $SYS ticks
// (broker/uptime, published every sys_interval).
type siteDrops struct {
	mu     sync.Mutex
	values []uint64 // every publication of the counter, in order
	ticks  chan struct{}
}

func watchSiteDrops(t *testing.T, url string) *siteDrops {
	t.Helper()
	m := &siteDrops{ticks: make(chan struct{}, 1)}
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("drops-mon-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(false).SetOrderMatters(true))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("monitor connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.SubscribeMultiple(map[string]byte{"$SYS/broker/publish/messages/dropped": 0, "$SYS/broker/uptime": 0}, func(_ paho.Client, msg paho.Message) {
		if msg.Topic() == "$SYS/broker/uptime" {
			select {
			case m.ticks <- struct{}{}:
			default:
			}
			return
		}
		v, err := strconv.ParseUint(strings.TrimSpace(string(msg.Payload())), 10, 64)
		if err != nil {
			return
		}
		m.mu.Lock()
		m.values = append(m.values, v)
		m.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("monitor subscribe: %v", tok.Error())
	}
	testenv.Eventually(t, 10*time.Second, "the retained $SYS drop counter", func() bool {
		_, n := m.latest()
		return n > 0
	})
	return m
}

// latest is the newest value and how many were seen.
func (m *siteDrops) latest() (uint64, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.values) == 0 {
		return 0, 0
	}
	return m.values[len(m.values)-1], len(m.values)
}

// since is the values published after the first n.
func (m *siteDrops) since(n int) []uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]uint64(nil), m.values[n:]...)
}

// nextTick waits for a $SYS publication that starts after the call.
func (m *siteDrops) nextTick(t *testing.T) {
	t.Helper()
	select {
	case <-m.ticks: // an earlier one
	default:
	}
	select {
	case <-m.ticks:
	case <-time.After(10 * time.Second):
		t.Fatal("no $SYS tick from the site mosquitto within 10s")
	}
}

// sitePublisher publishes QoS 1 bursts: all sent, then every PUBACK awaited.
type sitePublisher struct{ c paho.Client }

func newSitePublisher(t *testing.T, url, clientID string) *sitePublisher {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(clientID).SetCleanSession(true).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return &sitePublisher{c: c}
}

func (p *sitePublisher) publish(t *testing.T, topic string, payloads ...[]byte) {
	t.Helper()
	toks := make([]paho.Token, len(payloads))
	for i, b := range payloads {
		toks[i] = p.c.Publish(topic, 1, false, b)
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("publish to %s: no PUBACK (%v)", topic, tok.Error())
		}
	}
}

// brokerDropRead is what a scans topic holds: the scans by publisher
// ("pub" attribute) and their counters, and the broker-dropped gaps.
type brokerDropRead struct {
	scans     map[string][]int64
	gaps      []brokerDropGap
	otherGaps []string
	problems  []string
}

type brokerDropGap struct {
	gap                   event.Gap
	seq                   uint64
	source, stream, topic string
}

func readBrokerDrop(msgs []harness.Received) brokerDropRead {
	r := brokerDropRead{scans: map[string][]int64{}}
	seen := map[string]bool{}
	for _, m := range msgs {
		if m.Err != nil {
			r.problems = append(r.problems, fmt.Sprintf("undecodable message in Pulsar: %v", m.Err))
			continue
		}
		e := m.Event
		if e.Kind == event.KindGap {
			g, err := event.GapOf(e)
			switch {
			case err != nil:
				r.problems = append(r.problems, fmt.Sprintf("gap event seq %d: %v", e.Seq, err))
			case g.Reason == "broker-dropped":
				topic, _ := e.Attrs["topic"].(string)
				r.gaps = append(r.gaps, brokerDropGap{gap: g, seq: e.Seq, source: e.Source, stream: e.Stream, topic: topic})
			default:
				r.otherGaps = append(r.otherGaps, fmt.Sprintf("%s %d-%d/%d %s", e.Source, g.From, g.To, g.Count, g.Reason))
			}
			continue
		}
		pub, _ := e.Attrs["pub"].(string)
		n, ok := e.Attrs["n"].(int64)
		if !ok {
			if u, isU := e.Attrs["n"].(uint64); isU {
				n, ok = int64(u), true
			}
		}
		if pub == "" || !ok {
			r.problems = append(r.problems, fmt.Sprintf("event seq %d without pub/n: kind %s attrs %v", e.Seq, e.Kind, e.Attrs))
			continue
		}
		k := fmt.Sprintf("%s/%d", pub, n)
		if seen[k] {
			r.problems = append(r.problems, fmt.Sprintf("scan %s twice in Pulsar", k))
			continue
		}
		seen[k] = true
		r.scans[pub] = append(r.scans[pub], n)
	}
	return r
}

type brokerDropRow struct {
	seq, from, to, count int64
	source               string
}

// brokerDropRows reads the broker-dropped rows of the gateway's scans
// stream from the sink's gaps table (none while it does not exist yet).
func brokerDropRows(t *testing.T, cs *gocql.Session, ks, gateway string) []brokerDropRow {
	t.Helper()
	var rows []brokerDropRow
	iter := cs.Query(fmt.Sprintf("SELECT seq, from_seq, to_seq, count, reason, source FROM %s.gaps WHERE gateway = ? AND stream = ?", ks), gateway, "scans").Iter()
	var r brokerDropRow
	var reason string
	for iter.Scan(&r.seq, &r.from, &r.to, &r.count, &reason, &r.source) {
		if reason == "broker-dropped" {
			rows = append(rows, r)
		}
	}
	if err := iter.Close(); err != nil {
		return nil
	}
	return rows
}
