package uplink

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"

	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/testenv"
	"github.com/edgegw/gateway/units"
)

// Batched, zstd, through a proxy that cuts every connection again and again
// while a backlog drains, with send timeouts (a short send_timeout) and a
// "kill -9" (a client abandoned without Close, its producer left to the
// broker): every seq exactly once, in order, one message per event with its
// key, event time and properties.
func TestBatchedFaults(t *testing.T) {
	ns := newNamespace(t, true)
	px := newWireProxy(t, ns.serviceURL)
	o := ns.options()
	o.ServiceURL = px.serviceURL
	o.BatchMaxMessages, o.BatchLinger = 200, units.Duration(20*time.Millisecond)
	o.SendTimeout = units.Duration(3 * time.Second)
	const n = 30000
	all := mkEntries(t, "gw-1", "scans", 1, n, 0)

	// Run 1: drains under connection cuts, then is abandoned (no Close, no
	// final ack) part way: the "kill -9".
	b1 := newMemBacklog(all...)
	// The killed client's library goes on logging its failed reconnects
	// after the test: not into t.
	c1, err := New(o, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	c1.backoffMin, c1.backoffMax = 20*time.Millisecond, 200*time.Millisecond
	ctx1, kill := context.WithCancel(context.Background())
	go func() { _ = c1.Forward(ctx1, "gw-1", "scans", 0, b1) }()
	// The sleeps are the fault schedule (a cut every 300 ms while it
	// drains), not synchronisation: the assertions wait on conditions.
	for i := 0; b1.ackedSeq() < n/2 && i < 300; i++ {
		time.Sleep(100 * time.Millisecond)
		if i%3 == 2 {
			px.cut()
		}
	}
	// The process dies: its connections go and it never comes back (its
	// proxy stops, so the abandoned client cannot reconnect: a kill -9
	// leaves no producer behind to re-send, unlike a cancelled context).
	px.kill()
	kill()
	acked := b1.ackedSeq() // what the backlog (the disk) had acked
	t.Logf("run 1 killed at acked seq %d; state %+v", acked, mustStream(c1, "scans"))
	c1.Close()

	// Run 2: a new client on the backlog as the disk had it, through a
	// new proxy (the cuts go on).
	px = newWireProxy(t, ns.serviceURL)
	o.ServiceURL = px.serviceURL
	b2 := newMemBacklog(all[acked:]...)
	b2.acked = acked
	c2 := newClient(t, o)
	runForward(t, c2, "gw-1", "scans", 0, b2)
	for i := 0; b2.ackedSeq() < n && i < 600; i++ {
		time.Sleep(100 * time.Millisecond)
		if i%5 == 4 && i < 40 {
			px.cut()
		}
	}
	testenv.Eventually(t, 60*time.Second, "run 2 acked to the end", func() bool { return b2.ackedSeq() == n })
	st := mustStream(c2, "scans")
	t.Logf("run 2 state %+v; proxy rewrote %d lookups", st, px.rewritten.Load())

	got := readTopic(t, ns, c2.opts.Topic("scans"), n)
	assertSeqs(t, got.seqs, 1, n)
	for i, m := range got.msgs {
		ev, _ := event.Unmarshal(m.Payload())
		if m.Key() != ev.Source || !m.EventTime().Equal(ev.Time) || m.Properties()[PropKind] != ev.Kind ||
			m.Properties()[PropGateway] != "gw-1" || m.OrderingKey() != "gw-1/scans" {
			t.Fatalf("message %d: key %q ordering key %q time %v properties %v", i, m.Key(), m.OrderingKey(), m.EventTime(), m.Properties())
		}
	}
	if px.rewritten.Load() == 0 {
		t.Error("no lookup went through the proxy: the client bypassed it")
	}
}

func mustStream(c *Client, stream string) StreamState {
	st, _ := c.Stream(stream)
	return st
}

// Key_Shared: with batching, a batch is dispatched as a whole by its
// ordering key (the producer name), so each gateway's stream, and so each
// of its sources, stays in order at one consumer; different gateways spread
// over the consumers.
func TestBatchedKeySharedDispatch(t *testing.T) {
	ns := newNamespace(t, true)
	o := ns.options()
	o.BatchLinger = units.Duration(50 * time.Millisecond)
	const gateways, per = 12, 300
	pc, err := pulsar.NewClient(pulsar.ClientOptions{URL: ns.serviceURL, Logger: plog.NewLoggerWithSlog(testLogger(t))})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	topic := o.Topic("scans")
	msgs := make(chan pulsar.ConsumerMessage, gateways*per)
	for i := range 2 {
		cons, err := pc.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "sink", Type: pulsar.KeyShared,
			Name: strconv.Itoa(i), MessageChannel: msgs, SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
	}
	for g := range gateways {
		gw := fmt.Sprintf("gw-%02d", g)
		c := newClient(t, o) // one client per gateway
		runForward(t, c, gw, "scans", 0, newMemBacklog(mkEntries(t, gw, "scans", 1, per, 0)...))
	}
	consumerOf := map[string]string{} // gateway -> consumer
	lastSeq := map[string]uint64{}    // gateway/source -> seq
	perConsumer := map[string]int{}   // consumer -> messages
	deadline := time.After(60 * time.Second)
	for got := 0; got < gateways*per; got++ {
		var cm pulsar.ConsumerMessage
		select {
		case cm = <-msgs:
		case <-deadline:
			t.Fatalf("%d of %d messages", got, gateways*per)
		}
		_ = cm.Consumer.Ack(cm.Message)
		ev, _ := event.Unmarshal(cm.Payload())
		name := cm.Consumer.Name()
		if prev, ok := consumerOf[ev.Gateway]; ok && prev != name {
			t.Fatalf("gateway %s went to consumers %s and %s", ev.Gateway, prev, name)
		}
		consumerOf[ev.Gateway] = name
		k := ev.Gateway + "/" + ev.Source
		if ev.Kind != event.KindGap && ev.Seq <= lastSeq[k] {
			t.Fatalf("%s: seq %d after %d", k, ev.Seq, lastSeq[k])
		}
		lastSeq[k] = ev.Seq
		perConsumer[name]++
	}
	t.Logf("messages per consumer: %v", perConsumer)
	if len(perConsumer) < 2 {
		t.Errorf("all %d gateways went to one consumer: %v", gateways, perConsumer)
	}
}

// scanEntries are realistic scan events (a van's scanner): about 215 bytes
// of CBOR each.
func scanEntries(t testing.TB, gateway string, from, to uint64) []Entry {
	t.Helper()
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var out []Entry
	for s := from; s <= to; s++ {
		e := &event.Event{
			Gateway: gateway, Stream: "scans", Seq: s,
			Source: fmt.Sprintf("van-17-scn-%d", s%2), Kind: event.KindScan,
			Time:     base.Add(time.Duration(s) * 37 * time.Millisecond),
			Received: base.Add(time.Duration(s)*37*time.Millisecond + 4*time.Millisecond),
			Attrs: map[string]any{"barcode": fmt.Sprintf("JJD%014d", 40000000000000+s*7919%1000003),
				"symbology": "code128", "operator": "op-0042", "stop": int64(s / 40)},
		}
		b, err := event.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Entry{Seq: s, Data: b})
	}
	return out
}

// BenchmarkWireBytes counts what the uplink writes on its TCP connection to
// Pulsar (through wireProxy) per scan event, for live scans at 100 and 1,000
// ev/s and for a backlog drain, unbatched (today) and batched with zstd,
// next to the same events as compact JSON. UPLINK_WIRE_DRAIN_N sets the
// backlog (default 100,000), UPLINK_WIRE_SECONDS the live runs (default 10).
func BenchmarkWireBytes(b *testing.B) {
	drainN := uint64(100000)
	if v, err := strconv.Atoi(os.Getenv("UPLINK_WIRE_DRAIN_N")); err == nil && v > 0 {
		drainN = uint64(v)
	}
	secs := 10
	if v, err := strconv.Atoi(os.Getenv("UPLINK_WIRE_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	sample := scanEntries(b, "van-17", 1, 1000)
	var cborSize, jsonSize int
	for _, e := range sample {
		ev, err := event.Unmarshal(e.Data)
		if err != nil {
			b.Fatal(err)
		}
		j, _ := json.Marshal(ev)
		cborSize += len(e.Data)
		jsonSize += len(j)
	}
	b.ReportMetric(float64(cborSize)/1000, "cbor-B/event")
	b.ReportMetric(float64(jsonSize)/1000, "json-B/event")

	type profile struct {
		name  string
		edit  func(*Options)
		rates []int // live ev/s; 0 = backlog drain
	}
	profiles := []profile{
		{"unbatched-lz4", func(o *Options) { o.BatchMaxMessages, o.Compression = 0, "lz4" }, []int{100, 1000, 0}},
		{"lan-zstd-10ms", func(o *Options) {}, []int{1000, 0}},
		{"van-zstd-1s", func(o *Options) { o.BatchLinger = units.Duration(time.Second) }, []int{100, 1000, 0}},
	}
	for range b.N {
		for _, pr := range profiles {
			for _, rate := range pr.rates {
				name := fmt.Sprintf("%s/%d-ev-s", pr.name, rate)
				if rate == 0 {
					name = fmt.Sprintf("%s/drain-%d", pr.name, drainN)
				}
				ns := newNamespace(b, true)
				px := newWireProxy(b, ns.serviceURL)
				o := ns.options()
				o.ServiceURL = px.serviceURL
				pr.edit(&o)
				c := newClient(b, o)
				bl := newMemBacklog()
				var n uint64
				if rate == 0 {
					n = drainN
					bl.append(scanEntries(b, "van-17", 1, n)...)
				}
				// Connect first: the lookup, connect and producer frames
				// are not the events' cost.
				if err := c.Connect(context.Background()); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				runForward(b, c, "van-17", "scans", 0, bl)
				if rate > 0 {
					n = uint64(rate * secs)
					tick := time.NewTicker(10 * time.Millisecond)
					per := uint64(rate / 100)
					for s := uint64(1); s <= n; s += per {
						<-tick.C
						bl.append(scanEntries(b, "van-17", s, min(s+per-1, n))...)
					}
					tick.Stop()
				}
				testenv.Eventually(b, 10*time.Minute, name+" acked", func() bool { return bl.ackedSeq() == n })
				el := time.Since(start)
				st := mustStream(c, "scans")
				c.Close()
				wire := float64(px.upBytes()) / float64(n)
				frames := float64(st.WireBytes) / float64(n)
				b.Logf("%s: %d events in %s, %.1f B/event on the TCP connection (%.1f in message frames; JSON %.1f, CBOR %.1f), %.3f× JSON",
					name, n, el.Round(time.Millisecond), wire, frames, float64(jsonSize)/1000, float64(cborSize)/1000, wire/(float64(jsonSize)/1000))
				b.ReportMetric(wire, name+"-B/event")
				if rate == 0 {
					b.ReportMetric(float64(n)/el.Seconds(), name+"-events/s")
				}
			}
		}
	}
}
