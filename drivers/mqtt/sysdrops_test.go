package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/testenv"
	"github.com/edgegw/gateway/units"
)

func TestDropCounter(t *testing.T) {
	var c dropCounter
	steps := []struct {
		v          uint64
		gap        string
		rose, back bool
	}{
		{5, "", false, false}, // baseline
		{5, "", false, false},
		{9, "6-9/4", true, false},
		{10, "10-10/1", true, false},
		{2, "", false, true}, // broker restarted
		{2, "", false, false},
		{7, "3-7/5", true, false},
	}
	for i, s := range steps {
		g, rose, back := c.reading(s.v)
		got := ""
		if rose {
			if err := g.Validate(); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			got = fmt.Sprintf("%d-%d/%d", g.From, g.To, g.Count)
		}
		if got != s.gap || rose != s.rose || back != s.back {
			t.Fatalf("step %d: reading(%d) = %q, %v, %v; want %q, %v, %v", i, s.v, got, rose, back, s.gap, s.rose, s.back)
		}
	}
}

func TestBrokerDropsDefaults(t *testing.T) {
	c := fakeConfig()
	if c.BrokerDrops.Topic != MosquittoDropped || c.BrokerDrops.off() {
		t.Fatalf("default %+v", c.BrokerDrops)
	}
	for _, off := range []string{"", "off"} {
		c.BrokerDrops.Topic = off
		if !c.BrokerDrops.off() || c.Validate() != nil {
			t.Fatalf("topic %q: off %v, Validate %v", off, c.BrokerDrops.off(), c.Validate())
		}
	}
	c.BrokerDrops.Topic = "$SYS/#"
	var es units.Errors
	if err := c.Validate(); !errors.As(err, &es) || len(es) != 1 || es[0].Path != "broker_drops.topic" {
		t.Fatalf("wildcard topic: Validate = %v", err)
	}
}

// startMosquitto runs a private Mosquitto on a free loopback port with the
// given extra config lines and returns its URL; it stops with the test.
func startMosquitto(t *testing.T, conf string) string {
	t.Helper()
	m := testenv.StartMosquitto(t, func(string) []string {
		return append([]string{"allow_anonymous true", "persistence false", "log_dest stdout",
			"log_type error", "log_type warning", "log_type notice", "log_type information"}, strings.Split(conf, "\n")...)
	})
	t.Cleanup(func() {
		if !t.Failed() && !strings.Contains(m.Log(), "Outgoing messages are being dropped") {
			t.Log("mosquitto did not log \"Outgoing messages are being dropped\"")
		}
	})
	return "tcp://" + m.Addr
}

func TestIntegrationBrokerDrops(t *testing.T) {
	const published = 100
	url := startMosquitto(t, "max_queued_messages 10\nmax_inflight_messages 1\nsys_interval 2")

	var mu sync.Mutex
	var hold chan struct{} // non-nil: batches of scans wait for it
	sink := &memSink{Hook: func(ctx context.Context, _ int, evs []*event.Event) error {
		mu.Lock()
		h := hold
		mu.Unlock()
		if h == nil || evs[0].Kind == event.KindGap {
			return nil
		}
		select {
		case <-h:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
	cfg := NewConfig()
	cfg.Brokers = []string{url}
	cfg.ClientID = "edgegw-drops-test"
	cfg.BrokerInflight = 1
	cfg.AckWindow = 0
	cfg.Subscriptions = []Subscription{{Topic: "site/+dev/scan", Kind: "scan", Source: "{dev}"}}
	d, err := New(cfg, drivers.Env{Gateway: "gw-test", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	testenv.Eventually(t, 10*time.Second, "driver subscribed", func() bool { return d.Stats().Subscribes > 0 })

	pub := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("drops-pub").SetCleanSession(true))
	if tok := pub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	defer pub.Disconnect(100)
	publish := func(payloads ...string) {
		t.Helper()
		toks := make([]paho.Token, len(payloads))
		for i, p := range payloads {
			toks[i] = pub.Publish("site/d1/scan", 1, false, p)
		}
		for _, tok := range toks {
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Fatalf("publish: %v", tok.Error())
			}
		}
	}
	// A first message starts the watch; its first reading is the baseline.
	publish(`{"barcode":"warmup"}`)
	testenv.Eventually(t, 10*time.Second, "warm-up accepted and drop counter baseline read", func() bool {
		st := d.Stats()
		return st.Accepted == 1 && st.BrokerReadings >= 1
	})

	// Publish the burst right after a $SYS tick, so that the broker's
	// counter rises within one sys_interval (one reading).
	ticks := make(chan struct{}, 1)
	mon := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("drops-mon").SetCleanSession(true))
	if tok := mon.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("monitor connect: %v", tok.Error())
	}
	defer mon.Disconnect(100)
	var seen int
	if tok := mon.Subscribe("$SYS/broker/uptime", 0, func(paho.Client, paho.Message) {
		seen++
		if seen > 1 { // the first is the retained value
			select {
			case ticks <- struct{}{}:
			default:
			}
		}
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("monitor subscribe: %v", tok.Error())
	}
	mu.Lock()
	release := make(chan struct{})
	hold = release
	mu.Unlock()
	select {
	case <-ticks:
	case <-time.After(10 * time.Second):
		t.Fatal("no $SYS tick")
	}
	burst := make([]string, published)
	for i := range burst {
		burst[i] = fmt.Sprintf(`{"barcode":"B%03d"}`, i)
	}
	start := time.Now()
	publish(burst...)
	t.Logf("published %d QoS 1 messages in %s", published, time.Since(start))
	testenv.Eventually(t, 15*time.Second, "the broker's drops reported", func() bool { return d.Stats().BrokerGaps >= 1 })

	// Let the driver go on: it gets what the broker kept (published minus
	// dropped), then a sentinel published after that (in order, so nothing
	// kept is still due; published only once the broker's queue has room).
	mu.Lock()
	close(release)
	hold = nil
	mu.Unlock()
	kept := published - int(d.Stats().BrokerDropped)
	testenv.Eventually(t, 15*time.Second, fmt.Sprintf("the %d messages the broker kept", kept), func() bool {
		return d.Stats().Accepted >= uint64(1+kept)
	})
	publish(`{"barcode":"sentinel"}`)
	var evs []*event.Event
	testenv.Eventually(t, 15*time.Second, "sentinel", func() bool {
		evs, _, _ = sink.Snapshot()
		for _, e := range evs {
			if e.Attrs["barcode"] == "sentinel" {
				return true
			}
		}
		return false
	})
	// One more $SYS tick: no further rise.
	for range 2 {
		select {
		case <-ticks:
		case <-time.After(10 * time.Second):
			t.Fatal("no $SYS tick")
		}
	}
	evs, _, _ = sink.Snapshot()
	received := 0
	var gaps []event.Gap
	for _, e := range evs {
		switch {
		case e.Kind == event.KindGap:
			g, err := event.GapOf(e)
			if err != nil {
				t.Fatal(err)
			}
			if e.Source != defaultBrokerSource || e.Stream != "scans" || e.Attrs["topic"] != MosquittoDropped {
				t.Errorf("gap event %s/%s attrs %v", e.Stream, e.Source, e.Attrs)
			}
			gaps = append(gaps, g)
		case e.Attrs["barcode"] != "warmup" && e.Attrs["barcode"] != "sentinel":
			received++
		}
	}
	st := d.Stats()
	t.Logf("published %d, received %d, broker counter rose by %d, gaps %+v", published, received, st.BrokerDropped, gaps)
	if len(gaps) != 1 {
		t.Fatalf("%d gap events %+v, want 1", len(gaps), gaps)
	}
	g := gaps[0]
	if g.Reason != GapBrokerDropped || g.Count != st.BrokerDropped || g.Count != uint64(published-received) || g.To-g.From+1 != g.Count {
		t.Fatalf("gap %+v; BrokerDropped %d; published %d - received %d = %d", g, st.BrokerDropped, published, received, published-received)
	}
	if received == 0 || received == published {
		t.Fatalf("received %d of %d: the broker dropped nothing or everything", received, published)
	}
}

// memStore is a drivers.Store in memory (the gateway's lives in the buffer).
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memStore) Get(key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key], nil
}

func (s *memStore) Put(key string, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[key] = append([]byte(nil), val...)
	return nil
}

// TestIntegrationBrokerDropsWhileAway: the broker drops messages for the
// gateway's session while the gateway is stopped; the next driver (a
// gateway restart: new driver, same store) reports them at its first
// reading, as one gap of exactly the counter's rise.
func TestIntegrationBrokerDropsWhileAway(t *testing.T) {
	const published = 60
	url := startMosquitto(t, "max_queued_messages 10\nmax_inflight_messages 1\nsys_interval 1")
	store := &memStore{}
	cfg := NewConfig()
	cfg.Brokers = []string{url}
	cfg.ClientID = "edgegw-away-test"
	cfg.Subscriptions = []Subscription{{Topic: "site/+dev/scan", Kind: "scan", Source: "{dev}"}}
	run := func(sink *memSink) (*Driver, func()) {
		d, err := New(cfg, drivers.Env{Gateway: "gw-test", Logger: testLogger(), Store: store})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx, sink) }()
		return d, func() { cancel(); <-done }
	}
	// First run: the session and the baseline exist, then the gateway stops.
	d1, stop1 := run(&memSink{})
	testenv.Eventually(t, 20*time.Second, "baseline stored", func() bool {
		raw, _ := store.Get(dropBaselineKey)
		return d1.Stats().Subscribes > 0 && raw != nil
	})
	stop1()
	var before dropBaseline
	raw, _ := store.Get(dropBaselineKey)
	if err := json.Unmarshal(raw, &before); err != nil || before.Start == 0 {
		t.Fatalf("stored baseline %s: %v (want a broker start from its uptime)", raw, err)
	}

	// While it is away, the broker keeps 10 for its session and drops the rest.
	mon := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("away-mon").SetCleanSession(true))
	if tok := mon.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer mon.Disconnect(100)
	var counter atomic.Uint64
	if tok := mon.Subscribe(MosquittoDropped, 0, func(_ paho.Client, m paho.Message) {
		v, _ := strconv.ParseUint(string(m.Payload()), 10, 64)
		counter.Store(v)
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("away-pub").SetCleanSession(true))
	if tok := pub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer pub.Disconnect(100)
	for i := range published {
		if tok := pub.Publish("site/d1/scan", 1, false, fmt.Sprintf(`{"barcode":"A%03d"}`, i)); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	testenv.Eventually(t, 15*time.Second, "the broker counted its drops", func() bool {
		return counter.Load() >= before.Value+published-10
	})
	rise := counter.Load() - before.Value

	// The gateway comes back.
	sink := &memSink{}
	d2, stop2 := run(sink)
	defer stop2()
	testenv.Eventually(t, 20*time.Second, "the drops while away reported", func() bool { return d2.Stats().BrokerGaps >= 1 })
	testenv.Eventually(t, 20*time.Second, "the kept messages delivered", func() bool { return d2.Stats().Accepted >= published-rise })
	evs, _, _ := sink.Snapshot()
	var gaps []event.Gap
	scans := 0
	for _, e := range evs {
		if e.Kind == event.KindGap {
			g, err := event.GapOf(e)
			if err != nil {
				t.Fatal(err)
			}
			gaps = append(gaps, g)
		} else {
			scans++
		}
	}
	if len(gaps) != 1 || gaps[0].Count != rise || gaps[0].From != before.Value+1 || uint64(scans)+rise != published {
		t.Fatalf("gaps %+v, scans %d; want one gap of the counter's rise %d (from %d), scans + rise = %d", gaps, scans, rise, before.Value+1, published)
	}
	t.Logf("away: %d published, %d kept by the broker and delivered, %d dropped and reported as one gap %d-%d", published, scans, rise, gaps[0].From, gaps[0].To)
}
