package fault

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/harness"
)

// 3. The gateway is SIGKILLed at least 10 times during publishing and
// restarted: every event the broker acknowledged to the publishers arrives in
// Pulsar exactly once (in each publisher's order).
func TestGatewayKilled(t *testing.T) {
	s := harness.NewSetup(t, "kill", harness.Options{})
	s.Gateway.Start()
	l := startLoad(t, s, 3, 2*time.Millisecond)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	const kills = 12
	dups := 0.0
	for i := 0; i < kills; i++ {
		// Let some traffic flow, then kill at a random moment.
		l.waitTotal(s.Gateway, l.total.Load()+int64(50+rng.IntN(400)))
		dups += s.Gateway.Metric("edge_gateway_ingest_events_total", `result="duplicate"`)
		s.Gateway.Kill()
		// The broker keeps queueing for the persistent session meanwhile.
		l.waitTotal(s.Gateway, l.total.Load()+int64(rng.IntN(200)))
		s.Gateway.Start()
	}
	want := l.finish()
	col := harness.Collect(t, s.Topic("scans"))
	s.Gateway.Eventually(3*time.Minute, "backlog drained", s.Gateway.Drained)
	s.Gateway.WaitDelivered(col, "scans", want, true, 4*time.Minute)
	st, _ := s.Gateway.Status()
	dups += s.Gateway.Metric("edge_gateway_ingest_events_total", `result="duplicate"`)
	t.Logf("%d scans from %d publishers arrived exactly once across %d SIGKILLs (boot %d); %.0f re-delivered inputs recognised and not stored again",
		sum(want), len(want), kills, st.Boot, dups)
}
