package sink

import (
	"context"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/testenv"
)

// faultDialer opens the sink's Cassandra connections and can cut them all
// and refuse new ones, as a stopped Cassandra would, without touching the
// Cassandra that other tests share.
type faultDialer struct {
	mu    sync.Mutex
	down  bool
	conns []net.Conn
	d     net.Dialer
}

func (f *faultDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	c, err := f.d.DialContext(ctx, network, addr)
	if err == nil {
		f.conns = append(f.conns, c)
	}
	return c, err
}

func (f *faultDialer) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
	if down {
		for _, c := range f.conns {
			_ = c.Close()
		}
		f.conns = nil
	}
}

// TestSinkRidesOutCassandraOutage cuts the sink off Cassandra mid-stream:
// it must keep running, retry, acknowledge nothing it did not write, and
// write everything once Cassandra is back. (Stopping the shared Cassandra
// itself is left to the end-to-end fault suite.)
func TestSinkRidesOutCassandraOutage(t *testing.T) {
	it := newITest(t)
	fd := &faultDialer{}
	s := it.runSink(it.config(), Options{dialer: fd})
	evs := gen("gw-o", 400, t0)
	before, during := evs[:200], evs[200:]
	it.publish(before)
	it.waitRows(90*time.Second, expectedCounts(before))
	testenv.Eventually(t, 30*time.Second, "first half acknowledged", func() bool { return s.Stats().Acked == uint64(len(before)) })

	fd.setDown(true)
	it.publish(during)
	testenv.Eventually(t, 60*time.Second, "writes failing and being retried", func() bool {
		st := s.Stats()
		return st.Retries >= 5 && st.Consumed > uint64(len(before))
	})
	if st := s.Stats(); st.Acked != uint64(len(before)) || st.DeadLettered != 0 {
		t.Fatalf("during the outage: %+v; nothing may be acknowledged or dead-lettered", st)
	}
	if got := it.count(TableEvents); got != len(before) {
		t.Fatalf("%d events rows during the outage, want %d", got, len(before))
	}

	fd.setDown(false)
	it.waitRows(90*time.Second, expectedCounts(evs))
	testenv.Eventually(t, 30*time.Second, "everything acknowledged", func() bool { return s.Stats().Acked == uint64(len(evs)) })
	sameEvents(t, it.storedEvents(), evs)
	if err := s.Health(); err != nil {
		t.Errorf("health after recovery: %v", err)
	}
}
