package mqttbroker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/drivers/mqtt/ingest"
	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/testenv"
)

type sliceSink struct {
	delay time.Duration
	mu    sync.Mutex
	evs   []*event.Event
}

func (s *sliceSink) Emit(_ context.Context, evs []*event.Event) error {
	time.Sleep(s.delay) // a commit's latency, simulated: not synchronisation
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evs = append(s.evs, evs...)
	return nil
}

func (s *sliceSink) Quarantine(context.Context, string, []byte, string) error { return nil }

func (s *sliceSink) snapshot() []*event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*event.Event(nil), s.evs...)
}

// TestGatewayDriverOverEmbeddedBroker wires a source to the broker the way
// the gateway does (driver: mqtt-embedded, the broker's inbox) and checks a
// device's scans arrive in order. It logs the rate against a 2ms sink.
func TestGatewayDriverOverEmbeddedBroker(t *testing.T) {
	b := startBroker(t, Config{Users: []User{{
		Username: "dock3", PasswordFile: writeFile(t, "p", "pw"),
		ACL: ACL{Publish: []string{"site/dock3/scanner/+"}},
	}}})
	cfg := NewSourceConfig()
	cfg.Subscriptions = []ingest.Subscription{{Topic: "site/+dock/scanner/+device", Kind: "scan", Source: "{dock}-scanner"}}
	d, err := NewSource(cfg, drivers.Env{Gateway: "gw", Logger: testLogger(), Inbox: b})
	if err != nil {
		t.Fatal(err)
	}
	sink := &sliceSink{delay: 2 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, sink) }()
	defer func() {
		cancel()
		<-done
	}()
	testenv.Eventually(t, 10*time.Second, "driver subscribed", func() bool { return d.Stats().Subscribes > 0 })

	dev, err := connect(t, "tcp://"+b.Addr(), "sc-41", "dock3", "pw")
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	start := time.Now()
	toks := make([]paho.Token, n)
	for i := range n {
		toks[i] = dev.Publish("site/dock3/scanner/sc-41", 1, false, fmt.Sprintf(`{"barcode":"B%05d"}`, i))
	}
	for _, tk := range toks {
		tk.WaitTimeout(30 * time.Second)
	}
	testenv.Eventually(t, 60*time.Second, "all scans", func() bool { return len(sink.snapshot()) >= n })
	el := time.Since(start)
	evs := sink.snapshot()
	for i, e := range evs {
		if want := fmt.Sprintf("B%05d", i); e.Attrs["barcode"] != want || e.Source != "dock3-scanner" || e.Attrs["device"] != "sc-41" {
			t.Fatalf("event %d: %+v, want barcode %s", i, e, want)
		}
	}
	st := d.Stats()
	t.Logf("embedded broker, 2ms sink: %d scans in %.3fs = %.0f msg/s, %d batches", n, el.Seconds(), float64(n)/el.Seconds(), st.Batches)
}
