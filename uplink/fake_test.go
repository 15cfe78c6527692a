package uplink

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/edgegw/gateway/test/testenv"
	"github.com/edgegw/gateway/units"
)

// fakeProducer stands in for a pulsar.Producer in the tests that need no
// broker. receipt decides the outcome of each send: a nil error with a real
// or -1:-1 ID, an error, or (hold=true) no callback at all.
type fakeProducer struct {
	mu      sync.Mutex
	name    string
	sent    []int64
	held    []func()
	closed  bool
	receipt func(seq int64) (id pulsar.MessageID, err error, hold bool)
}

var _ pulsar.Producer = (*fakeProducer)(nil)

func (p *fakeProducer) Topic() string { return "fake" }
func (p *fakeProducer) Name() string  { return p.name }
func (p *fakeProducer) Send(context.Context, *pulsar.ProducerMessage) (pulsar.MessageID, error) {
	return nil, errors.New("not used")
}
func (p *fakeProducer) SendAsync(_ context.Context, m *pulsar.ProducerMessage, cb func(pulsar.MessageID, *pulsar.ProducerMessage, error)) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		cb(nil, m, pulsar.ErrProducerClosed)
		return
	}
	seq := *m.SequenceID
	p.sent = append(p.sent, seq)
	id, err, hold := p.receipt(seq)
	if hold {
		p.held = append(p.held, func() { cb(nil, m, pulsar.ErrProducerClosed) })
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	cb(id, m, err) // in order, like the library's receipt handler
}
func (p *fakeProducer) LastSequenceID() int64                  { return -1 }
func (p *fakeProducer) BrokerLastSequenceID() int64            { return -1 }
func (p *fakeProducer) SentBytes() uint64                      { return 0 }
func (p *fakeProducer) Flush() error                           { return nil }
func (p *fakeProducer) FlushWithCtx(ctx context.Context) error { return nil }
func (p *fakeProducer) Close() {
	p.mu.Lock()
	held := p.held
	p.held, p.closed = nil, true
	p.mu.Unlock()
	for _, f := range held {
		f()
	}
}

func (p *fakeProducer) seqs() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int64(nil), p.sent...)
}

// fakeClient returns a client whose producers come from mk (one call per
// session), with dedup not required and fast backoff.
func fakeClient(t *testing.T, mk func(session int) *fakeProducer) *Client {
	t.Helper()
	o := DefaultOptions()
	o.ServiceURL, o.RequireDedup = "pulsar://127.0.0.1:1", false
	// The fakes model the unbatched protocol (batch_max_messages 0): each
	// message its own receipt, re-sends dropped as duplicates.
	o.BatchMaxMessages = 0
	c := newClient(t, o)
	c.backoffMin, c.backoffMax = time.Millisecond, 5*time.Millisecond
	var mu sync.Mutex
	n := 0
	c.newProducer = func(_ pulsar.Client, po pulsar.ProducerOptions) (pulsar.Producer, error) {
		mu.Lock()
		n++
		s := n
		mu.Unlock()
		if !po.DisableBatching || po.SendTimeout >= 0 || po.Name == "" {
			t.Errorf("producer options %+v: want batching off, library send timeout off, a name", po)
		}
		p := mk(s)
		p.name = po.Name
		return p, nil
	}
	return c
}

func okID(int64) (pulsar.MessageID, error, bool) {
	return pulsar.NewMessageID(1, 1, 0, 0), nil, false
}

// No receipt within send_timeout: the session ends with ErrSendTimeout and
// the next session re-sends the unreceipted entries.
func TestSendTimeoutReconnects(t *testing.T) {
	var mu sync.Mutex
	var prods []*fakeProducer
	c := fakeClient(t, func(s int) *fakeProducer {
		p := &fakeProducer{receipt: okID}
		if s == 1 { // receipts up to 5, then silence
			p.receipt = func(seq int64) (pulsar.MessageID, error, bool) {
				id, err, _ := okID(seq)
				return id, err, seq > 5
			}
		}
		mu.Lock()
		prods = append(prods, p)
		mu.Unlock()
		return p
	})
	c.opts.SendTimeout = units.Duration(200 * time.Millisecond)
	b := newMemBacklog(mkEntries(t, "gw", "s", 1, 10, 0)...)
	runForward(t, c, "gw", "s", 0, b)
	testenv.Eventually(t, 10*time.Second, "all acked", func() bool { return b.ackedSeq() == 10 })
	st, _ := c.Stream("s")
	if st.Errors < 1 || st.Resent != 5 {
		t.Errorf("state %+v: want an error and 5 re-sent", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := prods[1].seqs(); len(got) != 5 || got[0] != 6 {
		t.Errorf("second session sent %v, want 6..10", got)
	}
	if !strings.Contains(st.LastError, ErrSendTimeout.Error()) {
		t.Errorf("last error %q, want a send timeout", st.LastError)
	}
}

// A failed send in the middle of the window: everything after the receipted
// prefix is re-sent, nothing before it; -1:-1 receipts count as delivered.
func TestSendErrorResendsFromAckedPrefix(t *testing.T) {
	var mu sync.Mutex
	var prods []*fakeProducer
	c := fakeClient(t, func(s int) *fakeProducer {
		p := &fakeProducer{receipt: okID}
		switch s {
		case 1:
			p.receipt = func(seq int64) (pulsar.MessageID, error, bool) {
				if seq == 50 {
					return nil, errors.New("boom"), false
				}
				return pulsar.NewMessageID(1, seq, 0, 0), nil, seq > 50
			}
		case 2: // the broker had 50..60: duplicates
			p.receipt = func(seq int64) (pulsar.MessageID, error, bool) {
				if seq <= 60 {
					return pulsar.NewMessageID(-1, -1, 0, 0), nil, false
				}
				return pulsar.NewMessageID(2, seq, 0, 0), nil, false
			}
		}
		mu.Lock()
		prods = append(prods, p)
		mu.Unlock()
		return p
	})
	b := newMemBacklog(mkEntries(t, "gw", "s", 1, 100, 0)...)
	runForward(t, c, "gw", "s", 0, b)
	testenv.Eventually(t, 10*time.Second, "all acked", func() bool { return b.ackedSeq() == 100 })
	mu.Lock()
	second := prods[1].seqs()
	mu.Unlock()
	if second[0] != 50 || len(second) != 51 {
		t.Errorf("second session sent %d..(%d), want 50..100", second[0], len(second))
	}
	st, _ := c.Stream("s")
	if st.Duplicates != 11 || st.AckedSeq != 100 || st.Acked != 100 || st.Sessions != 2 {
		t.Errorf("state %+v", st)
	}
}

func TestForwardArguments(t *testing.T) {
	c := fakeClient(t, func(int) *fakeProducer { return &fakeProducer{receipt: okID} })
	ctx := context.Background()
	if err := c.Forward(ctx, "", "s", 0, newMemBacklog()); err == nil {
		t.Error("empty gateway accepted")
	}
	if err := c.Forward(ctx, "gw", "bad/stream", 0, newMemBacklog()); err == nil {
		t.Error("bad stream name accepted")
	}
	if err := c.Forward(ctx, "gw", "s", 0, nil); err == nil {
		t.Error("nil backlog accepted")
	}
	runForward(t, c, "gw", "s", 0, newMemBacklog())
	testenv.Eventually(t, 5*time.Second, "first forwarder registered", func() bool {
		_, ok := c.Stream("s")
		return ok
	})
	if err := c.Forward(ctx, "gw", "s", 0, newMemBacklog()); err == nil {
		t.Error("second Forward of the same stream accepted")
	}
}

// Close ends the forwarders (Forward returns ErrClosed), is idempotent, and
// later calls fail with ErrClosed.
func TestCloseStopsForwarders(t *testing.T) {
	c := fakeClient(t, func(int) *fakeProducer { return &fakeProducer{receipt: okID} })
	b := newMemBacklog(mkEntries(t, "gw", "s", 1, 10, 0)...)
	errc := make(chan error, 1)
	go func() { errc <- c.Forward(context.Background(), "gw", "s", 0, b) }()
	testenv.Eventually(t, 5*time.Second, "acked", func() bool { return b.ackedSeq() == 10 })
	c.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("Forward after Close = %v, want ErrClosed", err)
	}
	c.Close()
	if err := c.Forward(context.Background(), "gw", "t", 0, b); !errors.Is(err, ErrClosed) {
		t.Errorf("Forward on a closed client = %v", err)
	}
	if err := c.Connect(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Connect on a closed client = %v", err)
	}
	if st, _ := c.Stream("s"); st.Connected {
		t.Error("still connected after Close")
	}
}

// A backlog whose Ack fails ends the session; the entries are re-sent and
// the ack retried.
type flakyAck struct {
	*memBacklog
	mu    sync.Mutex
	fails int
}

func (f *flakyAck) Ack(upTo uint64) error {
	f.mu.Lock()
	if f.fails > 0 {
		f.fails--
		f.mu.Unlock()
		return errors.New("disk on fire")
	}
	f.mu.Unlock()
	return f.memBacklog.Ack(upTo)
}

func TestAckErrorRetries(t *testing.T) {
	c := fakeClient(t, func(int) *fakeProducer { return &fakeProducer{receipt: okID} })
	b := &flakyAck{memBacklog: newMemBacklog(mkEntries(t, "gw", "s", 1, 20, 0)...), fails: 2}
	runForward(t, c, "gw", "s", 0, b)
	testenv.Eventually(t, 10*time.Second, "acked despite failures", func() bool { return b.ackedSeq() == 20 })
	if st, _ := c.Stream("s"); st.Errors < 1 || !strings.Contains(st.LastError, "disk on fire") {
		t.Errorf("state %+v", st)
	}
}

// An entry that does not decode is sent anyway, flagged, and acked.
func TestUndecodableEntryIsSent(t *testing.T) {
	var p *fakeProducer
	c := fakeClient(t, func(int) *fakeProducer { p = &fakeProducer{receipt: okID}; return p })
	es := mkEntries(t, "gw", "s", 1, 3, 0)
	es[1].Data = []byte{0xff, 0x00}
	b := newMemBacklog(es...)
	runForward(t, c, "gw", "s", 0, b)
	testenv.Eventually(t, 5*time.Second, "acked", func() bool { return b.ackedSeq() == 3 })
	if st, _ := c.Stream("s"); st.Undecodable != 1 {
		t.Errorf("undecodable = %d", st.Undecodable)
	}
}

// The latency hook sees every receipt.
func TestReceiptLatencyHook(t *testing.T) {
	c := fakeClient(t, func(int) *fakeProducer { return &fakeProducer{receipt: okID} })
	var mu sync.Mutex
	n := 0
	c.OnReceiptLatency(func(stream string, s float64) {
		mu.Lock()
		defer mu.Unlock()
		if stream == "s" && s >= 0 {
			n++
		}
	})
	b := newMemBacklog(mkEntries(t, "gw", "s", 1, 50, 0)...)
	runForward(t, c, "gw", "s", 0, b)
	testenv.Eventually(t, 5*time.Second, "hook called 50 times", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return n == 50
	})
}
