package fault

import (
	"os"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/harness"
)

// outage is how long Pulsar stays down; "minutes" in the issue. Override
// with EDGE_FAULT_OUTAGE (e.g. 30s for a quick local run).
func outage() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("EDGE_FAULT_OUTAGE")); err == nil {
		return d
	}
	return 2 * time.Minute
}

// 2. Pulsar is stopped during publishing and restarted minutes later:
// nothing lost, no duplicates, order kept.
func TestPulsarOutage(t *testing.T) {
	s := harness.NewSetup(t, "pulsar-outage", harness.Options{})
	s.Gateway.Start()
	l := startLoad(t, s, 3, 20*time.Millisecond)
	l.waitTotal(s.Gateway, 500)

	harness.Service(t, "pulsar", "down")
	restarted := false
	defer func() {
		if !restarted {
			harness.Service(t, "pulsar", "up")
		}
	}()
	before := l.total.Load()
	// Keep publishing through the outage; the gateway buffers.
	deadline := time.Now().Add(outage())
	s.Gateway.Eventually(outage()+time.Minute, "outage elapsed", func() bool { return time.Now().After(deadline) })
	during := l.total.Load() - before
	st, _ := s.Gateway.Status()
	scans, _ := st.Stream("scans")
	t.Logf("published %d during the %s outage; scans backlog %d", during, outage(), scans.Depth)
	if during < 100 || scans.Depth == 0 {
		t.Fatalf("the outage did not exercise buffering: %d published, backlog %d", during, scans.Depth)
	}
	harness.Service(t, "pulsar", "up")
	restarted = true
	l.waitTotal(s.Gateway, l.total.Load()+200)
	want := l.finish()

	col := harness.Collect(t, s.Topic("scans"))
	s.Gateway.Eventually(5*time.Minute, "backlog drained after the outage", s.Gateway.Drained)
	s.Gateway.WaitDelivered(col, "scans", want, true, 4*time.Minute)
	t.Logf("%d scans from %d publishers arrived exactly once, in order", sum(want), len(want))
}
