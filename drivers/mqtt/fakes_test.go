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
	"github.com/edgegw/gateway/drivers/mqtt/ingest"
	"github.com/edgegw/gateway/event"
)

// memSink is an in-memory drivers.Sink. hook, when set, runs at the start
// of every Emit (call counts from 1) and may fail it; delay models the
// commit latency.
type memSink struct {
	hook  func(ctx context.Context, call int, evs []*event.Event) error
	delay time.Duration

	mu          sync.Mutex
	calls       int
	events      []*event.Event
	batches     []int
	quarantined []quarantined
}

type quarantined struct{ source, reason string }

var _ drivers.Sink = (*memSink)(nil)

func (s *memSink) Emit(ctx context.Context, evs []*event.Event) error {
	s.mu.Lock()
	s.calls++
	call := s.calls
	s.mu.Unlock()
	if s.hook != nil {
		if err := s.hook(ctx, call, evs); err != nil {
			return err
		}
	}
	if s.delay > 0 {
		t := time.NewTimer(s.delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, evs...)
	s.batches = append(s.batches, len(evs))
	return nil
}

func (s *memSink) Quarantine(_ context.Context, source string, _ []byte, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quarantined = append(s.quarantined, quarantined{source, reason})
	return nil
}

func (s *memSink) snapshot() (evs []*event.Event, batches []int, q []quarantined) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*event.Event(nil), s.events...), append([]int(nil), s.batches...), append([]quarantined(nil), s.quarantined...)
}

func (s *memSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

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
