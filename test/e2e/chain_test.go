package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/harness"
	"github.com/edgegw/gateway/test/testenv"
)

// The whole chain with real processes: MQTT publishers → gateway → Pulsar →
// sink → Cassandra. Exactly the published set of rows lands, and
// `gatewayctl trace` tells a package's history newest first.
func TestChainIntoCassandra(t *testing.T) {
	s := harness.NewSetup(t, "chain", harness.Options{})
	sk := harness.NewSink(t, s.Dir, s.Namespace)
	s.Gateway.Start()
	sk.Start()
	cs := harness.Cassandra(t)

	pub := harness.NewPublisher(t, s.MQTT, s.ID+"-pub")
	const n = 300
	for i := 1; i <= n; i++ {
		pub.MustPublish(s.ScanTopic(fmt.Sprintf("dock%d", i%4+1), "scn-1"), harness.ScanPayload("pub", i))
	}
	const parcel = "00306141410000000019"
	// One parcel scanned at three docks, a minute apart (device timestamps).
	t0 := time.Now().UTC().Add(-3 * time.Minute)
	for i, dock := range []string{"dock1", "dock2", "dock3"} {
		pub.MustPublish(s.ScanTopic(dock, "scn-9"), []byte(fmt.Sprintf(`{"barcode":%q,"symbology":"GS1-128","ts":%q}`,
			parcel, t0.Add(time.Duration(i)*time.Minute).Format(time.RFC3339Nano))))
	}
	for i := 1; i <= 50; i++ {
		pub.MustPublish(s.Root+"/sensor/temp-1", []byte(fmt.Sprintf(`{"value":%d.5,"unit":"Cel","ts":%q,"pub":"temp","n":%d}`,
			i, time.Now().UTC().Format(time.RFC3339Nano), i)))
	}
	day := time.Now().UTC().Format("2006-01-02")
	events := func() int {
		return harness.CountRows(cs, fmt.Sprintf("SELECT count(*) FROM %s.events WHERE gateway = ? AND day = ?", sk.Keyspace), s.ID, day)
	}
	readingRows := func() int {
		return harness.CountRows(cs, fmt.Sprintf("SELECT count(*) FROM %s.readings WHERE gateway = ? AND source = ? AND day = ?", sk.Keyspace), s.ID, "temp-1", day)
	}
	// The sink writes each table's rows in requests of their own, so the
	// event rows can all be there before the last reading rows: wait for both.
	if err := testenv.Poll(3*time.Minute, fmt.Sprintf("%d event rows and 50 reading rows in Cassandra", n+53), func() error {
		if got, r := events(), readingRows(); got < n+53 || r < 50 {
			return fmt.Errorf("%d event rows, %d reading rows", got, r)
		}
		return nil
	}); err != nil {
		t.Fatalf("%v\nsink log:\n%s\ngateway log:\n%s", err, sk.Log(), s.Gateway.Log())
	}
	if got := events(); got != n+53 {
		t.Fatalf("%d event rows, want exactly %d", got, n+53)
	}
	if readings := readingRows(); readings != 50 {
		t.Fatalf("%d reading rows, want 50", readings)
	}
	// Each row is a distinct event identity.
	iter := cs.Query(fmt.Sprintf("SELECT stream, seq FROM %s.events WHERE gateway = ? AND day = ?", sk.Keyspace), s.ID, day).Iter()
	seen := map[string]bool{}
	var stream string
	var seq int64
	for iter.Scan(&stream, &seq) {
		seen[fmt.Sprint(stream, "/", seq)] = true
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
	if len(seen) != n+53 {
		t.Fatalf("%d distinct (stream, seq) identities, want %d", len(seen), n+53)
	}

	// gatewayctl, as an operator runs it.
	ctl, err := harness.Binary("gatewayctl")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ctl, "--cassandra", testenv.Cassandra(t), "--keyspace", sk.Keyspace, "trace", parcel, "-o", "json").Output()
	if err != nil {
		t.Fatalf("gatewayctl trace: %v", err)
	}
	var hist []struct {
		Gateway, Dock, Source string
		Time                  time.Time
	}
	if err := json.Unmarshal(out, &hist); err != nil {
		t.Fatalf("trace output %q: %v", out, err)
	}
	if len(hist) != 3 || hist[0].Dock != "dock3" || hist[1].Dock != "dock2" || hist[2].Dock != "dock1" || hist[0].Gateway != s.ID {
		t.Fatalf("trace of %s: %+v, want docks 3,2,1 newest first", parcel, hist)
	}
}
