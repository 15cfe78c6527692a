package uplink

import (
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/testenv"
)

// Two gateways configured with the same gateway.id: the second one's store
// never assigned the seqs the broker already holds under the shared
// producer name, so the broker would drop its events as duplicates (and a
// skip would ack them unsent). Its forwarder sends and skips nothing, says
// why, and the events stay in its backlog; the first gateway's events are
// the only ones on the topic.
func TestIdentityConflictHoldsBack(t *testing.T) {
	ns := newNamespace(t, true)
	first := newMemBacklog(mkEntries(t, "gw-twin", "scans", 100, 110, 0)...)
	c1 := newClient(t, ns.options())
	stop := runForward(t, c1, "gw-twin", "scans", 0, first)
	testenv.Eventually(t, 30*time.Second, "the first gateway's events delivered", func() bool { return first.ackedSeq() == 110 })
	_ = stop()
	c1.Close()

	twin := newMemBacklog(mkEntries(t, "gw-twin", "scans", 1, 5, 0)...)
	c2 := newClient(t, ns.options())
	runForward(t, c2, "gw-twin", "scans", 0, twin)
	testenv.Eventually(t, 30*time.Second, "the twin reports the conflict", func() bool {
		st, _ := c2.Stream("scans")
		return strings.Contains(st.LastError, "never went past 5") && strings.Contains(st.LastError, `gateway.id "gw-twin"`)
	})
	st, _ := c2.Stream("scans")
	if st.Sent != 0 || st.Skipped != 0 || twin.ackedSeq() != 0 {
		t.Fatalf("the twin sent or skipped: %+v, acked %d", st, twin.ackedSeq())
	}
	if es, _ := twin.Read(0, 100); len(es) != 5 {
		t.Fatalf("the twin's backlog holds %d events, want 5", len(es))
	}
	o := ns.options()
	got := readTopic(t, ns, o.Topic("scans"), 11)
	if got.seqs[0] != 100 || got.seqs[10] != 110 {
		t.Fatalf("topic seqs %v", got.seqs)
	}
}
