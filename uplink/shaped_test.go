package uplink

import (
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/testenv"
	"github.com/edgegw/gateway/units"
)

// A slow, lossy link (issue 15, item 4): a van's cellular uplink, modelled
// as 150 ms one-way latency, 1 Mbit/s each way and a connection reset
// every 20 s, between the uplink and the test Pulsar.
//
// Why a proxy of our own rather than toxiproxy (github.com/Shopify/toxiproxy/v2
// as a library): the link must still go through wireProxy, which rewrites
// the broker's port in lookup replies (else the client leaves the proxy
// after its lookup) and counts the bytes on the wire; toxiproxy does
// neither, so it would be a second hop anyway, plus a dependency in go.mod
// (and its transitive modules) for three effects that take a hundred lines
// here. The shaper below is that second hop: the client talks to a
// wireProxy whose target is the shaper, which delays and paces the bytes
// to and from the broker.
const (
	shapeLatency = 150 * time.Millisecond // one way, each direction
	shapeRate    = 1_000_000 / 8          // bytes per second, each direction
	shapeReset   = 20 * time.Second       // every connection is cut this often
)

// shaper is a TCP relay that adds a one-way latency and a bandwidth cap to
// each direction. Each direction of each connection has a reader, which
// paces what it reads through the direction's token bucket (shared by all
// connections: the link is one) and queues it with the time it is due at
// the far end, and a writer, which delivers the queue in order when each
// chunk is due. A cut drops what is queued, like a link reset.
type shaper struct {
	l        net.Listener
	target   string
	latency  time.Duration
	up, down *tokenBucket
	mu       sync.Mutex
	conns    []net.Conn
	wg       sync.WaitGroup
}

func newShaper(t testing.TB, target string, latency time.Duration, rate float64) *shaper {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &shaper{l: l, target: target, latency: latency,
		up: newTokenBucket(rate), down: newTokenBucket(rate)}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() {
		_ = l.Close()
		s.cut()
		s.wg.Wait()
	})
	return s
}

func (s *shaper) addr() string { return s.l.Addr().String() }

func (s *shaper) accept() {
	defer s.wg.Done()
	for {
		in, err := s.l.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", s.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		s.mu.Lock()
		s.conns = append(s.conns, in, out)
		s.mu.Unlock()
		s.wg.Add(2)
		go s.pipe(out, in, s.up)
		go s.pipe(in, out, s.down)
	}
}

type shapedChunk struct {
	due time.Time
	b   []byte
}

// pipe relays src -> dst through bucket, each chunk delivered latency after
// it has passed the bucket, in order. When src ends, what is queued is
// still delivered, then dst is closed (the far side sees the end after the
// data, as with TCP); when dst fails, both are closed.
func (s *shaper) pipe(dst, src net.Conn, bucket *tokenBucket) {
	defer s.wg.Done()
	q := make(chan shapedChunk, 1024)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer dst.Close()
		failed := false
		for c := range q {
			if failed {
				continue // drain, so the reader never blocks on a dead link
			}
			time.Sleep(time.Until(c.due)) // the latency: shaping, not synchronisation
			if _, err := dst.Write(c.b); err != nil {
				failed = true
				_ = src.Close()
			}
		}
	}()
	defer close(q)
	buf := make([]byte, 4096) // 33 ms at 1 Mbit/s: the pacing's grain
	for {
		n, err := src.Read(buf)
		if n > 0 {
			left := bucket.wait(n)
			q <- shapedChunk{due: left.Add(s.latency), b: append([]byte(nil), buf[:n]...)}
		}
		if err != nil {
			return
		}
	}
}

// cut closes every connection through the shaper; queued bytes are lost.
func (s *shaper) cut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.conns = nil
}

// tokenBucket paces bytes at rate per second with a burst of one read
// buffer; it is shared by every connection through one direction.
type tokenBucket struct {
	mu    sync.Mutex
	rate  float64
	burst time.Duration
	next  time.Time // when the bytes granted so far have all left
}

func newTokenBucket(rate float64) *tokenBucket {
	return &tokenBucket{rate: rate, burst: time.Duration(4096 / rate * float64(time.Second))}
}

// wait blocks until n bytes may leave (sleeping is the shaping) and
// returns when they have left.
func (b *tokenBucket) wait(n int) time.Time {
	b.mu.Lock()
	now := time.Now()
	if floor := now.Add(-b.burst); b.next.Before(floor) {
		b.next = floor
	}
	b.next = b.next.Add(time.Duration(float64(n) / b.rate * float64(time.Second)))
	left := b.next
	b.mu.Unlock()
	if left.Before(now) {
		return now
	}
	time.Sleep(left.Sub(now))
	return left
}

// shapedLink is the client's way to the broker: a wireProxy (port rewrite,
// byte counts, cuts) whose target is a shaper in front of the broker.
type shapedLink struct {
	px *wireProxy
	sh *shaper
}

func newShapedLink(t testing.TB, brokerServiceURL string) *shapedLink {
	t.Helper()
	broker := strings.TrimPrefix(brokerServiceURL, "pulsar://")
	sh := newShaper(t, broker, shapeLatency, shapeRate)
	// As newWireProxy, but dialling the shaper rather than the broker; the
	// port it rewrites in lookup replies is still the broker's.
	_, bport, err := net.SplitHostPort(broker)
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener
	var pport string
	for range 20 {
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if _, pport, _ = net.SplitHostPort(l.Addr().String()); len(pport) == len(bport) {
			break
		}
		_ = l.Close()
		l = nil
	}
	if l == nil {
		t.Skipf("no free port with as many digits as the broker's %s", bport)
	}
	px := &wireProxy{l: l, target: sh.addr(), from: []byte(":" + bport), to: []byte(":" + pport),
		serviceURL: "pulsar://" + l.Addr().String()}
	px.wg.Add(1)
	go px.accept()
	t.Cleanup(func() {
		_ = l.Close()
		px.cut()
		px.wg.Wait()
	})
	return &shapedLink{px: px, sh: sh}
}

// reset cuts every connection on both hops, dropping what is in flight.
func (k *shapedLink) reset() {
	k.sh.cut()
	k.px.cut()
}

// shapedDrainResult is what one drain through the shaped link measured.
type shapedDrainResult struct {
	n          uint64
	drain      time.Duration
	resets     int64
	up, down   int64 // bytes on the client's TCP connections
	state      StreamState
	rewritten  int64
	perEventUp float64
}

// shapedDrain drains an n-event backlog of scan events through the shaped
// link with the van's batching (batch_linger 1s, the other batching
// defaults), resetting the link every 20 s while it drains, and checks
// that Pulsar has every seq exactly once, in order. The drain time runs
// from the forwarder's start (lookup and producer creation over the link
// included) to the backlog's ack of the last seq.
func shapedDrain(t testing.TB, n uint64) shapedDrainResult {
	t.Helper()
	entries := scanEntries(t, "van-17", 1, n)
	ns := newNamespace(t, true)
	link := newShapedLink(t, ns.serviceURL)
	o := ns.options()
	o.ServiceURL = link.px.serviceURL
	o.BatchLinger = units.Duration(time.Second) // the van profile (options.go)
	bl := newMemBacklog(entries...)
	c := newClient(t, o)

	var resets atomic.Int64
	stopResets := make(chan struct{})
	resetsDone := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(resetsDone)
		tick := time.NewTicker(shapeReset) // the fault schedule
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				link.reset()
				resets.Add(1)
			case <-stopResets:
				return
			}
		}
	}()
	runForward(t, c, "van-17", "scans", 0, bl)
	err := testenv.Poll(15*time.Minute, "the shaped drain acked to the end", func() bool { return bl.ackedSeq() == n })
	el := time.Since(start)
	close(stopResets)
	<-resetsDone
	if err != nil {
		t.Fatalf("%v: acked %d of %d; state %+v", err, bl.ackedSeq(), n, mustStream(c, "scans"))
	}
	r := shapedDrainResult{n: n, drain: el, resets: resets.Load(), up: link.px.upBytes(), down: link.px.down.Load(),
		state: mustStream(c, "scans"), rewritten: link.px.rewritten.Load()}
	r.perEventUp = float64(r.up) / float64(n)

	got := readTopic(t, ns, c.opts.Topic("scans"), int(n))
	assertSeqs(t, got.seqs, 1, n)
	if r.rewritten == 0 {
		t.Error("no lookup went through the proxy: the client bypassed the shaped link")
	}
	if r.resets == 0 {
		t.Logf("the drain ended before the first reset (%s): no reset was survived", shapeReset)
	}
	st := r.state
	t.Logf("shaped link (%s one way, %d kbit/s, reset every %s): %d scan events drained in %s (%.0f events/s), %d resets survived; "+
		"%.1f B/event up, %.1f B/event down on the TCP connection; sessions %d, errors %d, resent %d, duplicates %d, skipped %d; last error %q",
		shapeLatency, shapeRate*8/1000, shapeReset, n, el.Round(time.Millisecond), float64(n)/el.Seconds(), r.resets,
		r.perEventUp, float64(r.down)/float64(n), st.Sessions, st.Errors, st.Resent, st.Duplicates, st.Skipped, st.LastError)
	return r
}

// TestShapedLinkDrain drains a backlog through a slow, lossy link (150 ms
// each way, 1 Mbit/s, a reset every 20 s): exactly once, in order.
// UPLINK_SHAPED_N sets the backlog (default 50,000, so that the test stays
// under a minute; BenchmarkShapedLinkDrain drains the full 200,000).
func TestShapedLinkDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("drains a backlog through a 1 Mbit/s link")
	}
	n := uint64(50000)
	if v, err := strconv.Atoi(os.Getenv("UPLINK_SHAPED_N")); err == nil && v > 0 {
		n = uint64(v)
	}
	shapedDrain(t, n)
}

// BenchmarkShapedLinkDrain drains a 200,000-event backlog of scan events
// through the shaped link (see TestShapedLinkDrain), once per iteration (one
// takes minutes, so the default benchtime gives one), and reports the
// drain time and the bytes the client sent per event.
//
//	go test -run '^$' -bench ShapedLinkDrain -benchtime 1x ./uplink/
func BenchmarkShapedLinkDrain(b *testing.B) {
	const n = 200000
	var drain time.Duration
	var up, resets int64
	for range b.N {
		r := shapedDrain(b, n)
		drain += r.drain
		up += r.up
		resets += r.resets
	}
	iters := float64(b.N)
	b.ReportMetric(drain.Seconds()/iters, "drain_s")
	b.ReportMetric(float64(up)/iters/n, "wire_B/event")
	b.ReportMetric(float64(resets)/iters, "resets")
	b.ReportMetric(n*iters/drain.Seconds(), "events/s")
}
