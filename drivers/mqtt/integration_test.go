package mqtt

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/testenv"
	"github.com/edgegw/gateway/units"
)

// These tests run against the real Mosquitto that test/mosquitto.sh starts
// (address from testenv.MQTT; skipped under -short).

// itest names a test's topic prefix and client IDs, unique per run, and
// clears the persistent session the driver leaves behind.
type itest struct {
	t      testing.TB
	url    string
	prefix string
}

func newITest(t testing.TB) *itest {
	url := testenv.MQTT(t)
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return &itest{t: t, url: url, prefix: fmt.Sprintf("edgegw-test/%s-%d", name, time.Now().UnixNano())}
}

func (it *itest) clientID(suffix string) string {
	id := strings.ReplaceAll(it.prefix, "/", "-") + "-" + suffix
	it.t.Cleanup(func() { it.clearSession(id) })
	return id
}

// clearSession connects once with clean session on, which makes the broker
// drop the session and what it queued for it.
func (it *itest) clearSession(id string) {
	o := paho.NewClientOptions().AddBroker(it.url).SetClientID(id).SetCleanSession(true)
	c := paho.NewClient(o)
	if t := c.Connect(); t.WaitTimeout(5*time.Second) && t.Error() == nil {
		c.Disconnect(100)
	}
}

func (it *itest) config(clientID string) *Config {
	c := NewConfig()
	c.Brokers = []string{it.url}
	c.ClientID = clientID
	c.BrokerInflight = 1000 // test/conf/mosquitto.conf: max_inflight_messages 1000
	c.Subscriptions = []Subscription{{Topic: it.prefix + "/+dev/scan", Kind: "scan", Source: "{dev}-scanner"}}
	return c
}

// run starts a driver; stop cancels it and waits for Run.
func (it *itest) run(cfg *Config, sink drivers.Sink, wrap func(net.Conn) net.Conn) (*Driver, func()) {
	it.t.Helper()
	d, err := New(cfg, drivers.Env{Gateway: "gw-test", Logger: testLogger()})
	if err != nil {
		it.t.Fatal(err)
	}
	d.opts.wrapConn = wrap
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, sink) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			it.t.Errorf("Run = %v", err)
		}
	})
	it.t.Cleanup(stop)
	testenv.Eventually(it.t, 15*time.Second, "driver subscribed", func() bool { return d.Stats().Subscribes > 0 })
	return d, stop
}

func (it *itest) publisher() paho.Client {
	it.t.Helper()
	o := paho.NewClientOptions().AddBroker(it.url).SetClientID(it.clientID("pub")).SetCleanSession(true)
	c := paho.NewClient(o)
	if t := c.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		it.t.Fatalf("publisher connect: %v", t.Error())
	}
	it.t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// publish sends payloads in order at QoS 1 and waits for every PUBACK.
func (it *itest) publish(c paho.Client, topic string, payloads ...[]byte) {
	it.t.Helper()
	toks := make([]paho.Token, len(payloads))
	for i, p := range payloads {
		toks[i] = c.Publish(topic, 1, false, p)
	}
	for _, tk := range toks {
		if !tk.WaitTimeout(30*time.Second) || tk.Error() != nil {
			it.t.Fatalf("publish: %v", tk.Error())
		}
	}
}

func scans(from, to int) [][]byte {
	var out [][]byte
	for i := from; i <= to; i++ {
		out = append(out, scanPayload(i))
	}
	return out
}

// (a) N QoS 1 messages arrive, in publisher order, decoded.
func TestIntegrationOrder(t *testing.T) {
	it := newITest(t)
	sink := &memSink{}
	d, _ := it.run(it.config(it.clientID("drv")), sink, nil)
	const n = 500
	it.publish(it.publisher(), it.prefix+"/dock3/scan", scans(1, n)...)
	testenv.Eventually(t, 30*time.Second, "all events", func() bool { return sink.Count() >= n })
	evs, batches, _ := sink.Snapshot()
	if got := barcodes(evs); !reflect.DeepEqual(got, seqBarcodes(1, n)) {
		t.Fatalf("order/content wrong: first %v", got[:min(10, len(got))])
	}
	e := evs[0]
	if e.Source != "dock3-scanner" || e.Stream != "scans" || e.Kind != "scan" || e.Attrs["dev"] != "dock3" {
		t.Fatalf("event %+v", e)
	}
	testenv.Eventually(t, 5*time.Second, "all acked", func() bool { return d.Stats().Acked == n })
	t.Logf("%d events in %d batches", n, len(batches))
}

// (b) The session is persistent: what is published while the driver is
// stopped arrives when it starts again with the same client ID.
func TestIntegrationPersistentSession(t *testing.T) {
	it := newITest(t)
	id := it.clientID("drv")
	pub := it.publisher()
	topic := it.prefix + "/d1/scan"

	sink := &memSink{}
	_, stop := it.run(it.config(id), sink, nil)
	it.publish(pub, topic, scans(1, 10)...)
	testenv.Eventually(t, 10*time.Second, "first 10", func() bool { return sink.Count() == 10 })
	stop()

	it.publish(pub, topic, scans(11, 40)...) // nobody connected: the broker queues them

	sink2 := &memSink{}
	it.run(it.config(id), sink2, nil)
	testenv.Eventually(t, 15*time.Second, "30 queued events", func() bool { return sink2.Count() >= 30 })
	evs, _, _ := sink2.Snapshot()
	if got := barcodes(evs); !reflect.DeepEqual(got, seqBarcodes(11, 40)) {
		t.Fatalf("after restart got %v", got)
	}
}

// (c) A full stream: nothing is acked until Emit succeeds, nothing is lost.
func TestIntegrationErrFull(t *testing.T) {
	it := newITest(t)
	const k = 5
	var d *Driver
	var mu sync.Mutex
	var ackedWhileFull []uint64
	sink := &memSink{Hook: func(_ context.Context, call int, _ []*event.Event) error {
		if call <= k {
			mu.Lock()
			ackedWhileFull = append(ackedWhileFull, d.Stats().Acked)
			mu.Unlock()
			return drivers.ErrFull
		}
		return nil
	}}
	d, _ = it.run(it.config(it.clientID("drv")), sink, nil)
	it.publish(it.publisher(), it.prefix+"/d1/scan", scans(1, 50)...)
	testenv.Eventually(t, 30*time.Second, "50 events", func() bool { return sink.Count() >= 50 })
	evs, _, _ := sink.Snapshot()
	if got := barcodes(evs); !reflect.DeepEqual(got, seqBarcodes(1, 50)) {
		t.Fatalf("got %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(ackedWhileFull, make([]uint64, k)) {
		t.Fatalf("acked while full: %v", ackedWhileFull)
	}
	if st := d.Stats(); st.FullRetries != k || st.Paused {
		t.Fatalf("stats %+v", st)
	}
}

// (d) A malformed payload is quarantined; the rest flows.
func TestIntegrationQuarantine(t *testing.T) {
	it := newITest(t)
	sink := &memSink{}
	d, _ := it.run(it.config(it.clientID("drv")), sink, nil)
	it.publish(it.publisher(), it.prefix+"/d1/scan", scanPayload(1), []byte("{not json"), scanPayload(2))
	testenv.Eventually(t, 10*time.Second, "2 events", func() bool { return sink.Count() == 2 })
	_, _, q := sink.Snapshot()
	if len(q) != 1 || !strings.HasPrefix(q[0].Reason, "malformed: ") {
		t.Fatalf("quarantined %+v", q)
	}
	testenv.Eventually(t, 5*time.Second, "3 acked", func() bool { return d.Stats().Acked == 3 })
}

// An event is acked only after Emit returned: the connection is cut while
// Emit runs, so the ack cannot reach the broker, which redelivers.
func TestIntegrationAckAfterEmitRedelivery(t *testing.T) {
	it := newITest(t)
	var mu sync.Mutex
	var conns []net.Conn
	wrap := func(c net.Conn) net.Conn {
		mu.Lock()
		defer mu.Unlock()
		conns = append(conns, c)
		return c
	}
	sink := &memSink{Hook: func(_ context.Context, call int, _ []*event.Event) error {
		if call == 1 {
			mu.Lock()
			_ = conns[len(conns)-1].Close() // the network dies while we commit
			mu.Unlock()
		}
		return nil
	}}
	cfg := it.config(it.clientID("drv"))
	cfg.KeepAlive = units.Duration(2 * time.Second)
	d, _ := it.run(cfg, sink, wrap)
	it.publish(it.publisher(), it.prefix+"/d1/scan", scanPayload(1))
	testenv.Eventually(t, 20*time.Second, "redelivery", func() bool { return sink.Count() >= 2 })
	evs, _, _ := sink.Snapshot()
	if got := barcodes(evs); !reflect.DeepEqual(got, []string{"B00001", "B00001"}) {
		t.Fatalf("got %v", got)
	}
	st := d.Stats()
	if st.Redelivered < 1 || st.Lost < 1 || st.Connects < 2 {
		t.Fatalf("stats %+v", st)
	}
}

// (e) Throughput configurations: grouped acks, the default config, one-by-one
// acks, against a sink with a 2ms commit and one with none. Their speed is
// BenchmarkIntegrationThroughput (make bench); here, every event arrives
// under each of them, once, in order, and is acked.
func TestIntegrationThroughput(t *testing.T) {
	it := newITest(t)
	pub := it.publisher()
	for _, c := range throughputCases {
		c.n = min(c.n, 300)
		_, batches := it.deliverAll(pub, c)
		t.Logf("%-26s %4d events in %3d batches", c.name, c.n, batches)
	}
}

// BenchmarkIntegrationThroughput measures the configurations of
// TestIntegrationThroughput against the real Mosquitto, in the same run, and
// reports each one's rate and the ratios that say what grouped acks buy:
// grouped/one-by-one (the gain), grouped/no-latency (how much of a 2ms
// commit's cost batching hides), default/one-by-one.
func BenchmarkIntegrationThroughput(b *testing.B) {
	it := newITest(b)
	pub := it.publisher()
	elapsed := make([]time.Duration, len(throughputCases))
	for b.Loop() {
		for i, c := range throughputCases {
			el, _ := it.deliverAll(pub, c)
			elapsed[i] += el
		}
	}
	rate := map[string]float64{}
	for i, c := range throughputCases {
		rate[c.name] = float64(c.n*b.N) / elapsed[i].Seconds()
		b.ReportMetric(rate[c.name], c.name+"-msg/s")
	}
	b.ReportMetric(rate["2ms-batch256-inflight1000"]/rate["2ms-ack_batch1"], "grouped/one-by-one")
	b.ReportMetric(rate["2ms-batch256-inflight1000"]/rate["no-latency"], "grouped/no-latency")
	b.ReportMetric(rate["2ms-default-config"]/rate["2ms-ack_batch1"], "default/one-by-one")
}

// throughputCase is a driver configuration and a sink commit latency.
type throughputCase struct {
	name  string
	n     int           // events to publish
	delay time.Duration // of the sink's commit
	mod   func(*Config)
}

var throughputCases = []throughputCase{
	{"no-latency", 3000, 0, func(*Config) {}},
	{"2ms-batch256-inflight1000", 3000, 2 * time.Millisecond, func(*Config) {}},
	{"2ms-default-config", 3000, 2 * time.Millisecond, func(c *Config) { c.BrokerInflight = NewConfig().BrokerInflight }},
	{"2ms-ack_batch1", 300, 2 * time.Millisecond, func(c *Config) { c.AckBatch = 1; c.AckWindow = 0 }},
}

// deliverAll runs a driver configured as c, publishes c.n scans and waits
// for them; it checks each arrived once, in order, and was acked. It returns
// the time from the first publish to the commit of the last event, and the
// number of batches.
func (it *itest) deliverAll(pub paho.Client, c throughputCase) (time.Duration, int) {
	it.t.Helper()
	sink := &countSink{memSink: memSink{Delay: c.delay}, n: c.n, all: make(chan struct{})}
	cfg := it.config(it.clientID(c.name))
	cfg.Subscriptions[0].Topic = it.prefix + "/" + c.name + "/+dev/scan"
	c.mod(cfg)
	d, stop := it.run(cfg, sink, nil)
	defer stop()
	start := time.Now()
	it.publish(pub, it.prefix+"/"+c.name+"/d/scan", scans(1, c.n)...)
	select {
	case <-sink.all:
	case <-time.After(2 * time.Minute):
		it.t.Fatalf("%s: %d of %d events after 2m", c.name, sink.Count(), c.n)
	}
	el := sink.at.Sub(start)
	evs, batches, _ := sink.Snapshot()
	if got := barcodes(evs); !reflect.DeepEqual(got, seqBarcodes(1, c.n)) {
		it.t.Fatalf("%s: %d events, not 1..%d in order: first %v", c.name, len(got), c.n, got[:min(10, len(got))])
	}
	testenv.Eventually(it.t, 10*time.Second, c.name+": every event acked", func() error {
		if a := d.Stats().Acked; a != uint64(c.n) {
			return fmt.Errorf("acked %d of %d", a, c.n)
		}
		return nil
	})
	return el, len(batches)
}

// countSink is a memSink that closes all, and notes the time, once it
// holds n events.
type countSink struct {
	memSink
	n    int
	all  chan struct{}
	once sync.Once
	at   time.Time // set before all is closed
}

func (s *countSink) Emit(ctx context.Context, evs []*event.Event) error {
	if err := s.memSink.Emit(ctx, evs); err != nil {
		return err
	}
	if s.Count() >= s.n {
		s.once.Do(func() { s.at = time.Now(); close(s.all) })
	}
	return nil
}
