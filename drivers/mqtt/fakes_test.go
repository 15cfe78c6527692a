package mqtt

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/drivers/internal/sinktest"
	"github.com/edgegw/gateway/drivers/mqtt/ingest"
	"github.com/edgegw/gateway/event"
)

// memSink is the drivers' shared in-memory sink.
type memSink = sinktest.Mem

// fakeClient stands in for paho: the test delivers messages and sees acks.
type fakeClient struct {
	o clientOptions

	mu           sync.Mutex
	acks         []int // message numbers, in ack order
	next         int
	disconnected bool
	subscribed   map[string]byte
}

func (f *fakeClient) Connect(context.Context) error { go f.o.onConnect(); return nil }

func (f *fakeClient) Subscribe(_ context.Context, filters map[string]byte) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subscribed = filters
	return nil, nil
}

func (f *fakeClient) Disconnect(time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.disconnected = true
}

// deliver hands one message to the driver as paho's router would (in
// order, blocking while the driver's queue is full) and returns its number.
func (f *fakeClient) deliver(topic string, payload []byte, qos byte) int {
	f.mu.Lock()
	f.next++
	n := f.next
	f.mu.Unlock()
	f.o.onMessage(ingest.Message{Topic: topic, Payload: payload, QoS: qos, Ack: func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.acks = append(f.acks, n)
	}})
	return n
}

func (f *fakeClient) acked() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.acks...)
}

func testLogger() *slog.Logger {
	level := slog.LevelError
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("component", "mqtt")
}

// startFake runs a driver over a fakeClient until the test ends. stop
// cancels it and returns what Run returned; it is idempotent.
func startFake(t *testing.T, cfg *Config, sink drivers.Sink) (d *Driver, fc *fakeClient, stop func() error) {
	t.Helper()
	d, err := New(cfg, drivers.Env{Gateway: "gw1", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	fc = &fakeClient{}
	ready := make(chan struct{})
	d.watchClient = nil // no $SYS watch over the fake
	d.newClient = func(o clientOptions) client {
		fc.o = o
		close(ready)
		return fc
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, sink) }()
	stop = sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() { _ = stop() })
	<-ready
	return d, fc, stop
}

func fakeConfig() *Config {
	c := NewConfig()
	c.Brokers = []string{"tcp://fake:1883"}
	c.Subscriptions = []Subscription{{Topic: "s/+dev", Kind: "scan", Source: "{dev}"}}
	return c
}

func scanPayload(i int) []byte { return fmt.Appendf(nil, `{"barcode":"B%05d"}`, i) }

func barcodes(evs []*event.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i], _ = e.Attrs["barcode"].(string)
	}
	return out
}

func seqBarcodes(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("B%05d", i))
	}
	return out
}
