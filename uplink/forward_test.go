package uplink

import (
	"testing"
	"time"

	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/testenv"
)

// Test 1: every entry reaches the topic exactly once, in order, with the
// right key, event time and properties, and the backlog is acked to the end.
func TestForwardExactlyOnceInOrder(t *testing.T) {
	ns := newNamespace(t, true)
	const n = 2000
	b := newMemBacklog(mkEntries(t, "gw-1", "scans", 1, n, 0)...)
	c := newClient(t, ns.options())
	runForward(t, c, "gw-1", "scans", 0, b)

	testenv.Eventually(t, 60*time.Second, "backlog acked to 2000", func() bool { return b.ackedSeq() == n })
	got := readTopic(t, ns, c.opts.Topic("scans"), n)
	assertSeqs(t, got.seqs, 1, n)

	if got.kinds[event.KindGap] != n/100 || got.kinds[event.KindScan] != n-n/100 {
		t.Errorf("kinds = %v, want %d gap and %d scan", got.kinds, n/100, n-n/100)
	}
	for i, m := range got.msgs {
		ev, _ := event.Unmarshal(m.Payload())
		p := m.Properties()
		if p[PropGateway] != "gw-1" || p[PropStream] != "scans" || p[PropKind] != ev.Kind {
			t.Fatalf("message %d properties %v, want gateway gw-1, stream scans, kind %s", i, p, ev.Kind)
		}
		if m.Key() != ev.Source || !m.EventTime().Equal(ev.Time) {
			t.Fatalf("message %d key %q time %v, want %q %v", i, m.Key(), m.EventTime(), ev.Source, ev.Time)
		}
		if m.ProducerName() != "gw-1/scans" {
			t.Fatalf("producer name %q", m.ProducerName())
		}
	}
	st, ok := c.Stream("scans")
	if !ok || st.Sent != n || st.Receipts != n || st.AckedSeq != n || st.Acked != n || st.Resent != 0 || st.Duplicates != 0 {
		t.Errorf("state = %+v", st)
	}
	if !st.Connected || st.LastReceiptLatency <= 0 {
		t.Errorf("state = %+v, want connected with a receipt latency", st)
	}
	if calls := b.calls(); calls >= n/2 {
		t.Errorf("%d Ack calls for %d entries: acks are not coalesced", calls, n)
	}
}

// Test 2: a new client (a restarted gateway) whose backlog lost the last 500
// acks re-sends them; broker dedup drops them, the receipts still come
// (message ID -1:-1) and the backlog ends fully acked.
func TestForwardRestartBeforeAck(t *testing.T) {
	ns := newNamespace(t, true)
	const n, lost = 2000, 500
	all := mkEntries(t, "gw-1", "scans", 1, n, 0)
	b1 := newMemBacklog(all...)
	c1 := newClient(t, ns.options())
	stop := runForward(t, c1, "gw-1", "scans", 0, b1)
	testenv.Eventually(t, 60*time.Second, "first run acked to 2000", func() bool { return b1.ackedSeq() == n })
	_ = stop()
	c1.Close()

	// The crash: the acks of the last 500 never reached the disk.
	b2 := newMemBacklog(all[n-lost:]...)
	b2.acked = n - lost
	c2 := newClient(t, ns.options())
	runForward(t, c2, "gw-1", "scans", 0, b2)
	testenv.Eventually(t, 60*time.Second, "second run acked to 2000", func() bool { return b2.ackedSeq() == n })

	got := readTopic(t, ns, c2.opts.Topic("scans"), n)
	assertSeqs(t, got.seqs, 1, n)
	st, _ := c2.Stream("scans")
	// The broker's last sequence ID (2000) says it has them all: nothing is
	// re-sent (the patched client; unbatched, they would be re-sent and
	// receipted as duplicates).
	if st.Sent != 0 || st.Skipped != lost || st.Acked != lost || st.AckedSeq != n {
		t.Errorf("second run state = %+v, want nothing sent, %d skipped", st, lost)
	}
}

// Test 2b: the same, then new events after the re-sent ones: the first new
// one must not be taken for a duplicate.
func TestForwardRestartThenNewEvents(t *testing.T) {
	ns := newNamespace(t, true)
	all := mkEntries(t, "gw-1", "scans", 1, 300, 0)
	b1 := newMemBacklog(all[:200]...)
	c1 := newClient(t, ns.options())
	stop := runForward(t, c1, "gw-1", "scans", 0, b1)
	testenv.Eventually(t, 30*time.Second, "first run acked to 200", func() bool { return b1.ackedSeq() == 200 })
	_ = stop()
	c1.Close()

	b2 := newMemBacklog(all[100:]...) // 101..300: 100 re-sent, 100 new
	b2.acked = 100
	c2 := newClient(t, ns.options())
	runForward(t, c2, "gw-1", "scans", 0, b2)
	testenv.Eventually(t, 30*time.Second, "second run acked to 300", func() bool { return b2.ackedSeq() == 300 })
	got := readTopic(t, ns, c2.opts.Topic("scans"), 300)
	assertSeqs(t, got.seqs, 1, 300)
	if st, _ := c2.Stream("scans"); st.Skipped != 100 || st.Sent != 100 || st.Duplicates != 0 {
		t.Errorf("state %+v, want 100 skipped (the broker had them), 100 sent, no duplicates", st)
	}
}

// Entries appended while the forwarder runs are picked up through Notify.
func TestForwardFollowsAppends(t *testing.T) {
	ns := newNamespace(t, true)
	all := mkEntries(t, "gw-1", "live", 1, 300, 0)
	b := newMemBacklog()
	c := newClient(t, ns.options())
	runForward(t, c, "gw-1", "live", 0, b)
	for i := 0; i < len(all); i += 50 {
		b.append(all[i : i+50]...)
		want := all[i+49].Seq
		testenv.Eventually(t, 30*time.Second, "appended batch acked", func() bool { return b.ackedSeq() == want })
	}
	got := readTopic(t, ns, c.opts.Topic("live"), 300)
	assertSeqs(t, got.seqs, 1, 300)
}
