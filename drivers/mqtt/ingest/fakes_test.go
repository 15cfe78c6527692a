package ingest

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/drivers/internal/sinktest"
)

// memSink is the drivers' shared in-memory sink.
type memSink = sinktest.Mem

// fakeClient stands in for a transport: the test delivers messages and
// sees acks.
type fakeClient struct {
	inlet *Inlet

	mu           sync.Mutex
	acks         []int // message numbers, in ack order
	next         int
	disconnected bool // the Run it belongs to has returned
}

// deliver hands one message to the ingest as a transport would (in order,
// blocking while the queue is full) and returns its number.
func (f *fakeClient) deliver(topic string, payload []byte, qos byte) int {
	f.mu.Lock()
	f.next++
	n := f.next
	f.mu.Unlock()
	f.inlet.Deliver(Message{Topic: topic, Payload: payload, QoS: qos, Ack: func() {
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

// testDriver runs an Ingest the way a transport does: each Run makes an
// Inlet, hands the test a fakeClient that delivers to it (on clients), and
// works until ctx ends.
type testDriver struct {
	*Ingest
	clients chan *fakeClient
}

// newTestDriver validates cfg and makes a testDriver of it; o.Logger
// defaults to testLogger().
func newTestDriver(t *testing.T, cfg *Config, o Options) *testDriver {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.Logger == nil {
		o.Logger = testLogger()
	}
	in, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	return &testDriver{Ingest: in, clients: make(chan *fakeClient, 4)}
}

func (d *testDriver) Run(ctx context.Context, sink drivers.Sink) error {
	q := d.NewInlet()
	fc := &fakeClient{inlet: q}
	d.clients <- fc
	d.Work(ctx, q, sink)
	q.Close()
	fc.mu.Lock()
	fc.disconnected = true
	fc.mu.Unlock()
	return nil
}

// startFake runs a testDriver until the test ends. stop cancels it and
// returns what Run returned; it is idempotent.
func startFake(t *testing.T, cfg *Config, sink drivers.Sink) (d *testDriver, fc *fakeClient, stop func() error) {
	t.Helper()
	return startFakeOpts(t, cfg, sink, Options{})
}

func startFakeOpts(t *testing.T, cfg *Config, sink drivers.Sink, o Options) (d *testDriver, fc *fakeClient, stop func() error) {
	t.Helper()
	d = newTestDriver(t, cfg, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, sink) }()
	stop = sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() { _ = stop() })
	return d, <-d.clients, stop
}
