package security

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"

	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/harness"
	"github.com/edgegw/gateway/uplink"
)

func TestMain(m *testing.M) {
	rc := m.Run()
	harness.Cleanup()
	os.Exit(rc)
}

// logBuffer is a slog handler's sink that tests can search.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// captureLogger logs at debug level into a buffer (and to stderr with -v).
func captureLogger() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	var w io.Writer = lb
	if testing.Verbose() {
		w = io.MultiWriter(lb, os.Stderr)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

func quietPulsarLogger() plog.Logger {
	return plog.NewLoggerWithSlog(slog.New(slog.DiscardHandler))
}

// memBacklog is an uplink.Backlog over a slice of events.
type memBacklog struct {
	mu      sync.Mutex
	entries []uplink.Entry
	acked   uint64
	notify  chan struct{}
}

func newBacklog(t *testing.T, gateway, stream string, n int) *memBacklog {
	b := &memBacklog{notify: make(chan struct{})}
	t0 := time.Now().UTC()
	for i := 1; i <= n; i++ {
		e := &event.Event{Gateway: gateway, Stream: stream, Seq: uint64(i), Source: "dock1-scanner", Kind: event.KindScan,
			Time: t0, Received: t0, Boot: 1, Attrs: map[string]any{"barcode": "B" + strconv.Itoa(i)}}
		data, err := event.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		b.entries = append(b.entries, uplink.Entry{Seq: uint64(i), Data: data})
	}
	return b
}

func (b *memBacklog) Read(after uint64, max int) ([]uplink.Entry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []uplink.Entry
	for _, e := range b.entries {
		if e.Seq > after && len(out) < max {
			out = append(out, e)
		}
	}
	return out, nil
}

func (b *memBacklog) Ack(upTo uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.acked = max(b.acked, upTo)
	return nil
}

func (b *memBacklog) Acked() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.acked
}

func (b *memBacklog) Notify() <-chan struct{} { return b.notify }

func (b *memBacklog) Next() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.entries) == 0 {
		return 1
	}
	return b.entries[len(b.entries)-1].Seq + 1
}

// readAll reads n messages of topic from the earliest, as the client opts
// allow, and returns their decoded events.
func readAll(t *testing.T, opts pulsar.ClientOptions, topic string, n int) []*event.Event {
	t.Helper()
	opts.Logger = quietPulsarLogger()
	c, err := pulsar.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		t.Fatalf("reader on %s: %v", topic, err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []*event.Event
	for len(out) < n {
		m, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("read %s after %d of %d: %v", topic, len(out), n, err)
		}
		e, err := event.Unmarshal(m.Payload())
		if err != nil {
			t.Fatalf("undecodable message: %v", err)
		}
		out = append(out, e)
	}
	return out
}

func writeSecret(t *testing.T, dir, name, content string) string {
	p := filepath.Join(dir, name)
	WriteFile(t, p, []byte(content+"\n"))
	return p
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
