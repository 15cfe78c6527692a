package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/harness"
	"github.com/edgegw/gateway/test/testenv"
)

// A drop-oldest stream fed far beyond its limit while the uplink is down
// keeps every drop accounted for: once the uplink returns, the gap rows in
// Cassandra add up to the gateway's drop counter, and reading rows plus
// dropped readings are exactly what was published. (The gap events used to
// be evicted as "oldest" by the very overflow they recorded.)
func TestGapsSurviveSustainedOverflow(t *testing.T) {
	mqttURL := testenv.MQTT(t)
	pulsarURL, adminURL := testenv.Pulsar(t)
	testenv.Cassandra(t)
	const published, maxEvents = 5000, 1000

	stamp := time.Now().UnixNano()
	id := fmt.Sprintf("gaps-%d", stamp%1e9)
	ns := harness.Namespace(t, "gaps")
	dir := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	root := fmt.Sprintf("e2e/gaps-%d", stamp)
	config := func(serviceURL, admin string) string {
		c := harness.GatewayYAML(harness.GatewayConfig{
			ID: id, BufferPath: filepath.Join(dir, "buffer.db"), MQTT: mqttURL, Root: root,
			ServiceURL: serviceURL, AdminURL: admin, Namespace: ns, HTTP: httpAddr,
		})
		// The harness config has no limit on telemetry: give it one.
		const pol = "  - name: telemetry\n    priority: 1\n    overflow: drop-oldest\n"
		if strings.Count(c, pol) != 1 {
			t.Fatalf("harness config changed shape; telemetry stream not found:\n%s", c)
		}
		return strings.Replace(c, pol, pol+fmt.Sprintf("    max_events: %d\n", maxEvents), 1)
	}
	// Uplink down: nothing listens on these ports.
	dead := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	gw := harness.NewGateway(t, dir, config("pulsar://"+dead, "http://"+dead), httpAddr)
	gw.Start()

	pub := harness.NewPublisher(t, mqttURL, id+"-pub")
	day := time.Now().UTC().Format("2006-01-02")
	for i := 1; i <= published; i++ {
		pub.MustPublish(root+"/sensor/temp-1", []byte(fmt.Sprintf(`{"value":%d.5,"unit":"Cel","ts":%q,"pub":"temp","n":%d}`,
			i, time.Now().UTC().Format(time.RFC3339Nano), i)))
	}
	telemetry := func() harness.StreamStatus {
		st, _ := gw.Status()
		s, _ := st.Stream("telemetry")
		return s
	}
	gw.Eventually(2*time.Minute, "all readings stored or dropped", func() error {
		if s := telemetry(); s.Depth == 0 || uint64(s.Depth)+s.Dropped != published {
			return fmt.Errorf("telemetry stream: depth %d, dropped %d of %d published", s.Depth, s.Dropped, published)
		}
		return nil
	})
	down := telemetry()
	if down.Depth != maxEvents || down.Dropped != published-maxEvents || down.Sent != 0 {
		t.Fatalf("with the uplink down: %+v", down)
	}
	t.Logf("uplink down: %d readings published, %d held, %d dropped", published, down.Depth, down.Dropped)

	// The uplink returns (the operator fixes the service URL; the gateway
	// restarts on the same buffer), and the sink writes into Cassandra.
	gw.Stop()
	if err := os.WriteFile(gw.Config, []byte(config(pulsarURL, adminURL)), 0o600); err != nil {
		t.Fatal(err)
	}
	sk := harness.NewSink(t, dir, ns)
	gw.Start()
	sk.Start()
	cs := harness.Cassandra(t)

	type gapRow struct {
		seq, from, to, count int64
		reason               string
	}
	gaps := func() (rows []gapRow, sum int64) {
		iter := cs.Query(fmt.Sprintf("SELECT seq, from_seq, to_seq, count, reason FROM %s.gaps WHERE gateway = ? AND stream = ?", sk.Keyspace),
			id, "telemetry").Iter()
		var r gapRow
		for iter.Scan(&r.seq, &r.from, &r.to, &r.count, &r.reason) {
			rows = append(rows, r)
			sum += r.count
		}
		if err := iter.Close(); err != nil {
			return nil, -1
		}
		return rows, sum
	}
	readings := func() int {
		return harness.CountRows(cs, fmt.Sprintf("SELECT count(*) FROM %s.readings WHERE gateway = ? AND source = ? AND day = ?", sk.Keyspace),
			id, "temp-1", day)
	}
	dropCounter := func() int64 {
		return int64(gw.Metric("edge_gateway_buffer_dropped_events_total", `stream="telemetry"`))
	}
	if err := testenv.Poll(3*time.Minute, fmt.Sprintf("%d readings stored or counted in gaps", published), func() error {
		_, sum := gaps()
		n := readings()
		drained, drops := gw.Drained(), dropCounter()
		if drained && n >= 0 && sum >= 0 && int64(n)+sum >= published && sum >= drops {
			return nil
		}
		return fmt.Errorf("%d reading rows, gap counts sum to %d, drop counter %d, buffer drained %t", n, sum, drops, drained)
	}); err != nil {
		t.Fatalf("%v\nsink log:\n%s\ngateway log:\n%s", err, sk.Log(), gw.Log())
	}
	rows, sum := gaps()
	drops := dropCounter()
	n := readings()
	up := telemetry()
	if drops != int64(down.Dropped) || up.Dropped != down.Dropped {
		t.Fatalf("drop counter %d (metrics), %d (status), %d before the restart", drops, up.Dropped, down.Dropped)
	}
	if sum != drops {
		t.Fatalf("gap rows %+v: counts sum to %d, the gateway dropped %d", rows, sum, drops)
	}
	if int64(n)+drops != published {
		t.Fatalf("%d reading rows + %d dropped = %d, want %d", n, drops, int64(n)+drops, published)
	}
	for _, r := range rows {
		if r.reason != "overflow" || r.from > r.to || r.to >= r.seq || r.count > r.to-r.from+1 {
			t.Fatalf("gap row %+v", r)
		}
	}
	t.Logf("%d readings published, %d dropped; Cassandra: %d reading rows, %d gap rows, sum of counts %d = drop counter %d",
		published, drops, n, len(rows), sum, drops)
}
