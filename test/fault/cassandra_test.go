package fault

import (
	"fmt"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/harness"
	"github.com/edgegw/gateway/test/testenv"
)

// Cassandra is stopped for a while and restarted: the sink backs off,
// resumes, and nothing is lost (exactly the published rows).
func TestCassandraRestart(t *testing.T) {
	s := harness.NewSetup(t, "cass", harness.Options{})
	sk := harness.NewSink(t, s.Dir, s.Namespace)
	s.Gateway.Start()
	sk.Start()
	cs := harness.Cassandra(t)
	pub := harness.NewPublisher(t, s.MQTT, s.ID+"-pub")
	day := time.Now().UTC().Format("2006-01-02")
	rows := func() int {
		return harness.CountRows(cs, fmt.Sprintf("SELECT count(*) FROM %s.events WHERE gateway = ? AND day = ?", sk.Keyspace), s.ID, day)
	}
	for i := 1; i <= 200; i++ {
		pub.MustPublish(s.ScanTopic("dock1", "scn-1"), harness.ScanPayload("pub", i))
	}
	s.Gateway.Eventually(2*time.Minute, "first 200 rows in Cassandra", func() bool { return rows() >= 200 })

	harness.Service(t, "cassandra", "down")
	up := false
	defer func() {
		if !up {
			harness.Service(t, "cassandra", "up")
		}
	}()
	for i := 201; i <= 500; i++ {
		pub.MustPublish(s.ScanTopic("dock1", "scn-1"), harness.ScanPayload("pub", i))
	}
	// Everything reaches Pulsar; the sink cannot write it and must not ack it.
	s.Gateway.Eventually(time.Minute, "gateway drained into Pulsar", s.Gateway.Drained)
	outage := time.Now().Add(20 * time.Second)
	s.Gateway.Eventually(time.Minute, "Cassandra outage of 20s", func() bool { return time.Now().After(outage) })
	harness.Service(t, "cassandra", "up")
	up = true

	cs2 := harness.Cassandra(t) // the old session's pool may still be reconnecting
	rows = func() int {
		return harness.CountRows(cs2, fmt.Sprintf("SELECT count(*) FROM %s.events WHERE gateway = ? AND day = ?", sk.Keyspace), s.ID, day)
	}
	if err := testenv.Poll(3*time.Minute, "500 rows after Cassandra came back", func() error {
		if n := rows(); n < 500 {
			return fmt.Errorf("%d rows", n)
		}
		return nil
	}); err != nil {
		t.Fatalf("%v\nsink log:\n%s", err, sk.Log())
	}
	if got := rows(); got != 500 {
		t.Fatalf("%d rows, want exactly 500", got)
	}
}
