package uplink

import (
	"sync"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/testenv"
)

// Test 5: under a bandwidth limit the higher-priority stream drains first,
// even though the lower-priority one started earlier. Asserted on the order
// of the backlogs' acks, not on timings.
func TestBandwidthHigherPriorityDrainsFirst(t *testing.T) {
	ns := newNamespace(t, true)
	o := ns.options()
	o.BandwidthLimit = 200 << 10 // 200KiB/s
	c := newClient(t, o)

	const n, raw = 300, 1000 // ~300KiB per stream: 1.5s each at the limit
	var mu sync.Mutex
	var log []string // "low" or "high" per Ack, in order
	var highDoneAt int = -1
	var lowAckedAtHighDone uint64
	low := newMemBacklog(mkEntries(t, "gw-1", "low", 1, n, raw)...)
	high := newMemBacklog(mkEntries(t, "gw-1", "high", 1, n, raw)...)
	var lowAcked uint64
	low.onAck = func(upTo uint64) {
		mu.Lock()
		log = append(log, "low")
		lowAcked = upTo
		mu.Unlock()
	}
	high.onAck = func(upTo uint64) {
		mu.Lock()
		log = append(log, "high")
		if upTo == n {
			highDoneAt = len(log) - 1
			lowAckedAtHighDone = lowAcked
		}
		mu.Unlock()
	}

	runForward(t, c, "gw-1", "low", 0, low)
	testenv.Eventually(t, 30*time.Second, "the low-priority stream is under way", func() bool { return low.ackedSeq() > 0 })
	lowAtStart := low.ackedSeq()
	runForward(t, c, "gw-1", "high", 10, high)

	testenv.Eventually(t, 60*time.Second, "both drained", func() bool { return low.ackedSeq() == n && high.ackedSeq() == n })
	mu.Lock()
	defer mu.Unlock()
	lowDoneAt := -1
	for i, s := range log {
		if s == "low" {
			lowDoneAt = i // the last low ack is the one to n
		}
	}
	t.Logf("low acked %d when high started and %d when high finished; high done at ack %d, low at %d of %d",
		lowAtStart, lowAckedAtHighDone, highDoneAt, lowDoneAt, len(log))
	if highDoneAt < 0 || highDoneAt > lowDoneAt {
		t.Fatalf("high finished at ack %d, after low (%d)", highDoneAt, lowDoneAt)
	}
	// Fair sharing would have low at about half-way plus its head start;
	// strict priority keeps it close to where it was when high started.
	if lowAckedAtHighDone > lowAtStart+n/4 {
		t.Errorf("low went from %d to %d while high drained: priority not honoured", lowAtStart, lowAckedAtHighDone)
	}
	for _, name := range []string{"low", "high"} {
		got := readTopic(t, ns, c.opts.Topic(name), n)
		assertSeqs(t, got.seqs, 1, n)
	}
}
