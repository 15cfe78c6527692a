package uplink

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"

	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/testenv"
)

// memBacklog is an in-memory Backlog: acked entries are deleted, like the
// buffer does. onAck, if set, runs under the lock on every successful Ack.
type memBacklog struct {
	mu       sync.Mutex
	entries  []Entry
	acked    uint64
	ackCalls int
	notify   chan struct{}
	onAck    func(upTo uint64)
}

var _ Backlog = (*memBacklog)(nil)

func newMemBacklog(es ...Entry) *memBacklog {
	return &memBacklog{entries: es, notify: make(chan struct{}, 1)}
}

func (m *memBacklog) Read(after uint64, max int) ([]Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := sort.Search(len(m.entries), func(i int) bool { return m.entries[i].Seq > after })
	j := min(i+max, len(m.entries))
	return append([]Entry(nil), m.entries[i:j]...), nil
}

func (m *memBacklog) Ack(upTo uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if upTo < m.acked {
		return fmt.Errorf("ack went backwards: %d after %d", upTo, m.acked)
	}
	i := sort.Search(len(m.entries), func(i int) bool { return m.entries[i].Seq > upTo })
	m.entries = m.entries[i:]
	m.acked = upTo
	m.ackCalls++
	if m.onAck != nil {
		m.onAck(upTo)
	}
	return nil
}

func (m *memBacklog) Notify() <-chan struct{} { return m.notify }

func (m *memBacklog) Next() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.entries) == 0 {
		return m.acked + 1
	}
	return max(m.entries[len(m.entries)-1].Seq, m.acked) + 1
}

func (m *memBacklog) append(es ...Entry) {
	m.mu.Lock()
	m.entries = append(m.entries, es...)
	m.mu.Unlock()
	select {
	case m.notify <- struct{}{}:
	default:
	}
}

func (m *memBacklog) calls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ackCalls
}

func (m *memBacklog) ackedSeq() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.acked
}

// mkEntries encodes events with seqs from..to of stream; every 100th is a
// gap event. rawSize adds that many bytes of raw payload to each.
func mkEntries(t testing.TB, gateway, stream string, from, to uint64, rawSize int) []Entry {
	t.Helper()
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var out []Entry
	for s := from; s <= to; s++ {
		e := &event.Event{
			Gateway: gateway, Stream: stream, Seq: s,
			Source: fmt.Sprintf("scanner-%d", s%3), Kind: event.KindScan,
			Time:     base.Add(time.Duration(s) * time.Millisecond),
			Received: base.Add(time.Duration(s)*time.Millisecond + time.Second),
			Attrs:    map[string]any{"barcode": fmt.Sprintf("PKG%08d", s)},
		}
		if rawSize > 0 {
			e.Raw = []byte(strings.Repeat("x", rawSize))
		}
		if s%100 == 0 {
			g, err := event.NewGap(stream, "buffer", event.Gap{From: s + 1000, To: s + 1009, Count: 10, Reason: event.GapOverflow}, e.Time)
			if err != nil {
				t.Fatal(err)
			}
			g.Gateway, g.Seq = gateway, s
			e = g
		}
		b, err := event.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Entry{Seq: s, Data: b})
	}
	return out
}

// pulsarNS is a namespace of its own on the test Pulsar, deleted at cleanup.
type pulsarNS struct {
	serviceURL, adminURL string
	admin                pulsaradmin.Client
	tenant, name         string
}

var nonName = regexp.MustCompile(`[^a-zA-Z0-9-]+`)

func newNamespace(t testing.TB, dedup bool) *pulsarNS {
	t.Helper()
	return newNS(t, &dedup)
}

// newNS creates a namespace with the given deduplication policy (nil: none,
// so the broker default applies).
func newNS(t testing.TB, dedup *bool) *pulsarNS {
	t.Helper()
	svc, adm := testenv.Pulsar(t)
	a, err := pulsaradmin.NewClient(&pulsaradmin.Config{WebServiceURL: adm})
	if err != nil {
		t.Fatal(err)
	}
	name := strings.ToLower(nonName.ReplaceAllString(t.Name(), "-"))
	if len(name) > 40 {
		name = name[:40]
	}
	name = fmt.Sprintf("uplink-%s-%x", name, time.Now().UnixNano()&0xffffffffff)
	ns := &pulsarNS{serviceURL: svc, adminURL: adm, admin: a, tenant: "public", name: name}
	path := ns.tenant + "/" + name
	if err := a.Namespaces().CreateNamespace(path); err != nil {
		t.Fatalf("create namespace %s: %v", path, err)
	}
	// Keep the data: without a subscription or retention, Pulsar deletes
	// closed ledgers (e.g. after an unload) and the reader would miss them.
	if err := a.Namespaces().SetRetention(path, utils.RetentionPolicies{RetentionTimeInMinutes: 60, RetentionSizeInMB: 512}); err != nil {
		t.Fatalf("set retention on %s: %v", path, err)
	}
	if dedup != nil {
		if err := a.Namespaces().SetDeduplicationStatus(path, *dedup); err != nil {
			t.Fatalf("set deduplication on %s: %v", path, err)
		}
	}
	t.Cleanup(func() {
		plain, parts, _ := a.Topics().List(*mustNS(t, path))
		for _, tp := range append(plain, parts...) {
			if tn, err := utils.GetTopicName(tp); err == nil {
				_ = a.Topics().Delete(*tn, true, true)
			}
		}
		_ = a.Namespaces().DeleteNamespace(path)
	})
	return ns
}

func mustNS(t testing.TB, path string) *utils.NameSpaceName {
	n, err := utils.GetNamespaceName(path)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (ns *pulsarNS) options() Options {
	o := DefaultOptions()
	o.ServiceURL, o.AdminURL = ns.serviceURL, ns.adminURL
	o.Tenant, o.Namespace = ns.tenant, ns.name
	return o
}

// testLogger logs to the test output at warn level (debug with -v and
// UPLINK_DEBUG=1).
func testLogger(t testing.TB) *slog.Logger {
	lvl := slog.LevelWarn
	if os.Getenv("UPLINK_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: lvl}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newClient returns a client with fast backoff, closed at cleanup.
func newClient(t testing.TB, o Options) *Client {
	t.Helper()
	c, err := New(o, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	c.backoffMin, c.backoffMax = 20*time.Millisecond, 200*time.Millisecond
	t.Cleanup(c.Close)
	return c
}

// received is what a reader saw on a topic.
type received struct {
	seqs  []uint64
	msgs  []pulsar.Message
	kinds map[string]int
}

// readTopic reads the topic from the start until want messages arrived,
// then checks that nothing more is there.
func readTopic(t testing.TB, ns *pulsarNS, topic string, want int) received {
	t.Helper()
	pc, err := pulsar.NewClient(pulsar.ClientOptions{URL: ns.serviceURL, Logger: plog.NewLoggerWithSlog(testLogger(t))})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	r, err := pc.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got := received{kinds: map[string]int{}}
	for len(got.seqs) < want {
		m, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("reading %s after %d of %d messages: %v", topic, len(got.seqs), want, err)
		}
		ev, err := event.Unmarshal(m.Payload())
		if err != nil {
			t.Fatalf("message %v does not decode: %v", m.ID(), err)
		}
		got.seqs = append(got.seqs, ev.Seq)
		got.msgs = append(got.msgs, m)
		got.kinds[m.Properties()[PropKind]]++
	}
	if r.HasNext() {
		m, err := r.Next(ctx)
		if err == nil {
			ev, _ := event.Unmarshal(m.Payload())
			t.Fatalf("topic %s has more than %d messages: next is seq %d", topic, want, ev.Seq)
		}
	}
	return got
}

// assertSeqs fails unless got is exactly from..to in order.
func assertSeqs(t testing.TB, got []uint64, from, to uint64) {
	t.Helper()
	if uint64(len(got)) != to-from+1 {
		t.Errorf("got %d messages, want %d (%d..%d)", len(got), to-from+1, from, to)
	}
	for i, s := range got {
		if s != from+uint64(i) {
			t.Fatalf("message %d has seq %d, want %d (duplicate or loss or reorder); around: %v",
				i, s, from+uint64(i), got[max(0, i-3):min(len(got), i+4)])
		}
	}
}

// runForward runs c.Forward in the background until the test ends or the
// returned stop is called; stop returns Forward's error.
func runForward(t testing.TB, c *Client, gateway, stream string, prio int, b Backlog) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Forward(ctx, gateway, stream, prio, b) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-errc
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}
