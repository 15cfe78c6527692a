package sink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/testenv"
	"github.com/edgegw/gateway/units"
)

// itest is one integration test's share of the real services: its own
// Pulsar namespace (tenant public) and Cassandra keyspace, removed at the end.
type itest struct {
	t         testing.TB
	id        string
	pulsarURL string
	admin     pulsaradmin.Client
	client    pulsar.Client
	cassAddr  string
	session   *gocql.Session
	tenant    string
	namespace string
	keyspace  string
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("SINK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newITest(t testing.TB) *itest {
	t.Helper()
	pulsarURL, adminURL := testenv.Pulsar(t)
	cassAddr := testenv.Cassandra(t)
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	it := &itest{t: t, id: id, pulsarURL: pulsarURL, cassAddr: cassAddr,
		tenant: "public", namespace: "sinkt-" + id, keyspace: "sinkt_" + id}

	admin, err := pulsaradmin.NewClient(&pulsaradmin.Config{WebServiceURL: adminURL})
	if err != nil {
		t.Fatal(err)
	}
	it.admin = admin
	ns := it.tenant + "/" + it.namespace
	if err := admin.Namespaces().CreateNamespace(ns); err != nil {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
	t.Cleanup(func() { it.dropNamespace() })

	it.client, err = pulsar.NewClient(pulsar.ClientOptions{URL: pulsarURL,
		Logger: plog.NewLoggerWithSlog(testLogger(t)), MetricsRegisterer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(it.client.Close)

	c := it.config().Cassandra
	it.session, err = Connect(c, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := it.session.Query("DROP KEYSPACE IF EXISTS " + it.keyspace).Exec(); err != nil {
			t.Logf("drop keyspace %s: %v", it.keyspace, err)
		}
		it.session.Close()
	})
	return it
}

func (it *itest) dropNamespace() {
	ns := it.tenant + "/" + it.namespace
	topics, err := it.admin.Namespaces().GetTopics(ns)
	if err != nil {
		it.t.Logf("list topics of %s: %v", ns, err)
	}
	for _, tp := range topics {
		tn, err := utils.GetTopicName(tp)
		if err == nil {
			err = it.admin.Topics().Delete(*tn, true, true)
		}
		if err != nil {
			it.t.Logf("delete topic %s: %v", tp, err)
		}
	}
	if err := it.admin.Namespaces().DeleteNamespace(ns); err != nil {
		it.t.Logf("delete namespace %s: %v", ns, err)
	}
}

// config is a sink configuration for this test's namespace and keyspace,
// tuned to react fast.
func (it *itest) config() Config {
	c := DefaultConfig()
	c.Pulsar.ServiceURL = it.pulsarURL
	c.Pulsar.Tenant, c.Pulsar.Namespace = it.tenant, it.namespace
	c.Pulsar.Topics.DiscoveryInterval = units.Duration(time.Second)
	c.Cassandra.Hosts = []string{it.cassAddr}
	c.Cassandra.Keyspace = it.keyspace
	c.Cassandra.ReconnectInterval = units.Duration(200 * time.Millisecond)
	c.Retry = RetryConfig{Initial: units.Duration(50 * time.Millisecond), Max: units.Duration(time.Second), Multiplier: 2}
	c.Write.DrainTimeout = units.Duration(10 * time.Second)
	c.HTTP.Listen = ""
	return c
}

func (it *itest) topic(stream string) string {
	return fmt.Sprintf("persistent://%s/%s/events-%s", it.tenant, it.namespace, stream)
}

// runSink starts a sink in this process; it is stopped at cleanup, and must
// stop cleanly.
func (it *itest) runSink(cfg Config, o Options) *Sink {
	it.t.Helper()
	if o.Logger == nil {
		o.Logger = testLogger(it.t)
	}
	s, err := New(cfg, o)
	if err != nil {
		it.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	it.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				it.t.Errorf("sink Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			it.t.Errorf("sink did not stop within 30s")
		}
	})
	return s
}

// publish sends events as the uplink does: to events-<stream>, key =
// source, SequenceID = seq, properties {gateway, kind, stream}, batched by key.
func (it *itest) publish(evs []*event.Event) {
	it.t.Helper()
	producers := map[string]pulsar.Producer{}
	defer func() {
		for _, p := range producers {
			p.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
	)
	done := make(chan struct{}, len(evs))
	for _, e := range evs {
		p, ok := producers[e.Stream]
		if !ok {
			var err error
			p, err = it.client.CreateProducer(pulsar.ProducerOptions{
				Topic: it.topic(e.Stream), BatcherBuilderType: pulsar.KeyBasedBatchBuilder,
			})
			if err != nil {
				it.t.Fatalf("producer for %s: %v", e.Stream, err)
			}
			producers[e.Stream] = p
		}
		b, err := event.Marshal(e)
		if err != nil {
			it.t.Fatalf("marshal: %v", err)
		}
		seq := int64(e.Seq)
		p.SendAsync(ctx, &pulsar.ProducerMessage{
			Payload: b, Key: e.Source, SequenceID: &seq, EventTime: e.Time,
			Properties: map[string]string{"gateway": e.Gateway, "kind": e.Kind, "stream": e.Stream},
		}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			mu.Lock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
			done <- struct{}{}
		})
	}
	for range evs {
		<-done
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		it.t.Fatalf("publish: %v", firstErr)
	}
}

// publishRaw sends an arbitrary payload to an events topic.
func (it *itest) publishRaw(stream string, payload []byte, key string) pulsar.MessageID {
	it.t.Helper()
	p, err := it.client.CreateProducer(pulsar.ProducerOptions{Topic: it.topic(stream)})
	if err != nil {
		it.t.Fatal(err)
	}
	defer p.Close()
	id, err := p.Send(context.Background(), &pulsar.ProducerMessage{Payload: payload, Key: key,
		Properties: map[string]string{"gateway": "gw-x", "stream": stream}})
	if err != nil {
		it.t.Fatal(err)
	}
	return id
}

// count returns the number of rows of a table (-1 while the table does not
// exist yet or the query fails).
func (it *itest) count(table string) int {
	var n int
	if err := it.session.Query("SELECT COUNT(*) FROM " + it.keyspace + "." + table).Scan(&n); err != nil {
		return -1
	}
	return n
}

// waitRows waits until every table holds the number of rows given.
func (it *itest) waitRows(timeout time.Duration, want map[string]int) {
	it.t.Helper()
	testenv.Eventually(it.t, timeout, fmt.Sprintf("row counts %v", want), func() bool {
		for tb, n := range want {
			if it.count(tb) != n {
				return false
			}
		}
		return true
	})
}

// expectedCounts is how many rows of each table evs must produce.
func expectedCounts(evs []*event.Event) map[string]int {
	m := map[string]int{TableEvents: 0, TableScansByBarcode: 0, TableReadings: 0, TableGaps: 0}
	for _, e := range evs {
		rows, err := deriveRows(e, nil, TTLConfig{})
		if err != nil {
			panic(err)
		}
		for _, r := range rows {
			m[r.table]++
		}
	}
	return m
}

// gen makes n events of one gateway spread over the streams scans,
// telemetry and io, with increasing seq per stream, starting at t0 and one
// second apart.
func gen(gateway string, n int, t0 time.Time) []*event.Event {
	seqs := map[string]uint64{}
	evs := make([]*event.Event, 0, n)
	for i := range n {
		e := &event.Event{Gateway: gateway, Time: t0.Add(time.Duration(i) * time.Second),
			Received: t0.Add(time.Duration(i)*time.Second + 1234*time.Microsecond), Boot: 2, Mono: uint64(1e9 + i)}
		switch i % 3 {
		case 0:
			dock := fmt.Sprintf("dock%d", i%4)
			e.Stream, e.Kind, e.Source = "scans", event.KindScan, dock+"-scanner"
			e.Attrs = map[string]any{"barcode": fmt.Sprintf("PKG-%05d", i), "symbology": "code128",
				"dock": dock, "scanner": fmt.Sprintf("zebra-%d", i%4)}
		case 1:
			e.Stream, e.Kind, e.Source = "telemetry", event.KindReading, fmt.Sprintf("bme280-%d", i%2)
			e.Attrs = map[string]any{"value": 20 + float64(i%50)/4, "unit": "C"}
		default:
			e.Stream, e.Kind, e.Source = "io", event.KindGPIO, fmt.Sprintf("door-%d", i%5)
			e.Attrs = map[string]any{"pin": "GPIO17", "level": i%2 == 0}
			if i%100 == 2 {
				e.Raw = []byte{0xde, 0xad, byte(i)}
			}
		}
		seqs[e.Stream]++
		e.Seq = seqs[e.Stream]
		evs = append(evs, e)
	}
	return evs
}

// eventKey is the identity of an event.
func eventKey(gateway, stream string, seq int64) string {
	return gateway + "/" + stream + "/" + fmt.Sprint(seq)
}

func keysOf(evs []*event.Event) map[string]*event.Event {
	m := make(map[string]*event.Event, len(evs))
	for _, e := range evs {
		m[eventKey(e.Gateway, e.Stream, int64(e.Seq))] = e
	}
	return m
}

// storedEvents reads the whole events table, keyed by event identity; each
// value is the decoded payload.
func (it *itest) storedEvents() map[string]*event.Event {
	it.t.Helper()
	iter := it.session.Query("SELECT gateway, stream, seq, time, day, source, kind, received, boot, mono, attrs, payload FROM " +
		it.keyspace + ".events").Iter()
	out := map[string]*event.Event{}
	var (
		gw, stream, source, kind string
		seq, boot, mono          int64
		tm, dy, received         time.Time
		attrs                    map[string]string
		payload                  []byte
	)
	for iter.Scan(&gw, &stream, &seq, &tm, &dy, &source, &kind, &received, &boot, &mono, &attrs, &payload) {
		e, err := event.Unmarshal(payload)
		if err != nil {
			it.t.Fatalf("stored payload of %s/%s/%d does not decode: %v", gw, stream, seq, err)
		}
		// The columns must agree with the payload.
		if e.Gateway != gw || e.Stream != stream || int64(e.Seq) != seq || e.Source != source || e.Kind != kind ||
			!tm.Equal(e.Time.Truncate(time.Millisecond)) || !dy.Equal(day(e.Time)) ||
			!received.Equal(e.Received.Truncate(time.Millisecond)) || int64(e.Boot) != boot || int64(e.Mono) != mono {
			it.t.Errorf("row %s/%s/%d: columns disagree with payload %+v", gw, stream, seq, e)
		}
		if len(attrs) != len(e.Attrs) {
			it.t.Errorf("row %s/%s/%d: attrs %v vs %v", gw, stream, seq, attrs, e.Attrs)
		}
		for k, v := range e.Attrs {
			if attrs[k] != AttrString(v) {
				it.t.Errorf("row %s/%s/%d: attr %s = %q, want %q", gw, stream, seq, k, attrs[k], AttrString(v))
			}
		}
		out[eventKey(gw, stream, seq)] = e
		attrs, payload = nil, nil
	}
	if err := iter.Close(); err != nil {
		it.t.Fatal(err)
	}
	return out
}

// sameEvents fails the test unless got holds exactly the events of want.
func sameEvents(t testing.TB, got map[string]*event.Event, want []*event.Event) {
	t.Helper()
	wm := keysOf(want)
	var missing, extra, differ []string
	for k, w := range wm {
		g, ok := got[k]
		if !ok {
			missing = append(missing, k)
			continue
		}
		n, err := event.Normalize(w)
		if err != nil {
			t.Fatal(err)
		}
		if !equalEvent(g, n) {
			differ = append(differ, fmt.Sprintf("%s: got %+v want %+v", k, g, n))
		}
	}
	for k := range got {
		if _, ok := wm[k]; !ok {
			extra = append(extra, k)
		}
	}
	if len(missing)+len(extra)+len(differ) > 0 {
		t.Fatalf("stored events differ from published: %d missing %v, %d extra %v, %d differ %v",
			len(missing), head(missing), len(extra), head(extra), len(differ), head(differ))
	}
}

func head(s []string) string {
	if len(s) > 5 {
		return strings.Join(s[:5], ", ") + ", …"
	}
	return strings.Join(s, ", ")
}

func equalEvent(a, b *event.Event) bool {
	if a.Gateway != b.Gateway || a.Stream != b.Stream || a.Seq != b.Seq || a.Source != b.Source ||
		a.Kind != b.Kind || !a.Time.Equal(b.Time) || !a.Received.Equal(b.Received) || a.Boot != b.Boot ||
		a.Mono != b.Mono || string(a.Raw) != string(b.Raw) || len(a.Attrs) != len(b.Attrs) {
		return false
	}
	for k, v := range a.Attrs {
		if AttrString(v) != AttrString(b.Attrs[k]) {
			return false
		}
	}
	return true
}
