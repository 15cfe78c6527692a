package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/harness"
	"github.com/edgegw/gateway/test/testenv"
)

// A device that numbers its messages (fields.counter) and skips 11..19:
// the real gateway reports exactly one gap (reason device-counter, the
// device's source, 11..19, count 9), in the events stream just before the
// event that showed it, and the sink writes it as one row of the gaps
// table.
func TestDeviceCounterGapEndToEnd(t *testing.T) {
	mqttURL := testenv.MQTT(t)
	stamp := time.Now().UnixNano()
	root := fmt.Sprintf("e2e/upgaps-%d", stamp)
	s := harness.NewSetup(t, "upgaps", harness.Options{ExtraSources: fmt.Sprintf(`
  - name: counted
    driver: mqtt
    mqtt:
      brokers: [%s]
      client_id: upgaps-counted-%d
      broker_inflight: 1000
      broker_drops: {topic: "off"}
      subscriptions:
        - topic: %s/+device/scan
          kind: scan
          stream: scans
          source: "{device}"
          fields: {counter: seq}
`, mqttURL, stamp, root)})
	col := harness.Collect(t, s.Topic("scans"))
	sk := harness.NewSink(t, s.Dir, s.Namespace)
	s.Gateway.Start()
	sk.Start()
	cs := harness.Cassandra(t)

	const device = "scn-counted"
	var sent []int
	for n := 1; n <= 10; n++ {
		sent = append(sent, n)
	}
	for n := 20; n <= 25; n++ {
		sent = append(sent, n)
	}
	pub := harness.NewPublisher(t, s.MQTT, s.ID+"-pub")
	for _, n := range sent {
		pub.MustPublish(root+"/"+device+"/scan", fmt.Appendf(nil, `{"barcode":"PKG%04d","seq":%d}`, n, n))
	}

	// Pulsar: the 16 scans and one gap, in order.
	var evs []*event.Event
	s.Gateway.Eventually(2*time.Minute, "16 scans and a gap in Pulsar", func() bool {
		evs = evs[:0]
		for _, m := range col.Messages() {
			if m.Err != nil {
				t.Fatalf("undecodable message in Pulsar: %v", m.Err)
			}
			if m.Event.Source == device {
				evs = append(evs, m.Event)
			}
		}
		return len(evs) >= len(sent)+1
	})
	s.Gateway.Eventually(time.Minute, "buffer drained", s.Gateway.Drained)
	var order []string
	gaps := 0
	for _, m := range col.Messages() {
		e := m.Event
		if e.Source != device {
			if e.Kind == event.KindGap {
				t.Logf("other gap event (not this test's device): source %s attrs %v", e.Source, e.Attrs)
			}
			continue
		}
		if e.Kind == event.KindGap {
			gaps++
			g, err := event.GapOf(e)
			if err != nil {
				t.Fatal(err)
			}
			order = append(order, fmt.Sprintf("gap %d-%d/%d %s", g.From, g.To, g.Count, g.Reason))
			continue
		}
		order = append(order, fmt.Sprint(e.Attrs["counter"]))
	}
	want := []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "gap 11-19/9 device-counter", "20", "21", "22", "23", "24", "25"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("Pulsar, source %s: %q\nwant %q", device, order, want)
	}

	// Cassandra: all 17 events, and one gap row.
	day := time.Now().UTC().Format("2006-01-02")
	s.Gateway.Eventually(2*time.Minute, "17 event rows in Cassandra", func() bool {
		return harness.CountRows(cs, fmt.Sprintf("SELECT count(*) FROM %s.events WHERE gateway = ? AND day = ?", sk.Keyspace), s.ID, day) >= len(sent)+1
	})
	type gapRow struct {
		seq, from, to, count int64
		reason, source       string
	}
	var rows []gapRow
	iter := cs.Query(fmt.Sprintf("SELECT seq, from_seq, to_seq, count, reason, source FROM %s.gaps WHERE gateway = ? AND stream = ?", sk.Keyspace), s.ID, "scans").Iter()
	var r gapRow
	for iter.Scan(&r.seq, &r.from, &r.to, &r.count, &r.reason, &r.source) {
		if r.source == device {
			rows = append(rows, r)
		} else {
			t.Logf("other gap row: %+v", r)
		}
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].from != 11 || rows[0].to != 19 || rows[0].count != 9 || rows[0].reason != "device-counter" {
		t.Fatalf("gap rows of %s: %+v, want one 11-19/9 device-counter\nsink log:\n%s", device, rows, sk.Log())
	}
	if m := s.Gateway.Metric("edge_gateway_mqtt_device_lost_total", `source="counted"`); m != 9 {
		t.Errorf("edge_gateway_mqtt_device_lost_total{source=counted} = %v, want 9", m)
	}
}
