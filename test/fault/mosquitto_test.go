package fault

import (
	"fmt"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/harness"
)

// 4. Mosquitto is restarted: the gateway resumes its persistent session and
// nothing is lost — neither what the broker had queued for the gateway
// across the restart nor what is published after it.
func TestMosquittoRestart(t *testing.T) {
	s := harness.NewSetup(t, "mosq", harness.Options{})
	s.Gateway.Start()
	col := harness.Collect(t, s.Topic("scans"))
	want := map[string]int{}
	publish := func(name string, from, to int) {
		p := harness.NewPublisher(t, s.MQTT, fmt.Sprintf("%s-%s-%d", s.ID, name, from))
		for n := from; n <= to; n++ {
			p.MustPublish(s.ScanTopic("dock1", "scn-"+name), harness.ScanPayload(name, n))
		}
		p.Close()
		want[name] = to
	}
	publish("a", 1, 300)
	s.Gateway.Eventually(time.Minute, "first batch delivered", func() bool { return col.Len() >= 300 })

	// Gateway away: the broker queues for its persistent session ...
	s.Gateway.Stop()
	publish("a", 301, 800)
	// ... and keeps the queue across its own restart (persistence on).
	harness.Service(t, "mosquitto", "down")
	harness.Service(t, "mosquitto", "up")
	s.Gateway.Start()
	publish("a", 801, 1000)

	// Restart the broker again while the gateway is connected.
	harness.Service(t, "mosquitto", "down")
	harness.Service(t, "mosquitto", "up")
	publish("b", 1, 300)

	s.Gateway.Eventually(2*time.Minute, "everything delivered", func() bool { return col.Len() >= sum(want) })
	s.Gateway.Eventually(time.Minute, "backlog drained", s.Gateway.Drained)
	if probs := harness.Summarise(col.Messages()).ExactlyOnce(want, true); probs != "" {
		t.Fatalf("delivery across Mosquitto restarts: %s", probs)
	}
}
