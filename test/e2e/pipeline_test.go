package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/harness"
)

// 1. Events published at QoS 1 by real MQTT clients arrive in Pulsar exactly
// once, in each publisher's order, and decode to what was published.
func TestMQTTToPulsarExactlyOnceInOrder(t *testing.T) {
	s := harness.NewSetup(t, "order", harness.Options{})
	col := harness.Collect(t, s.Topic("scans"))
	s.Gateway.Start()

	const pubs, perPub = 4, 500
	want := map[string]int{}
	var wg sync.WaitGroup
	for p := 0; p < pubs; p++ {
		name := fmt.Sprintf("pub%d", p)
		want[name] = perPub
		pub := harness.NewPublisher(t, s.MQTT, s.ID+"-"+name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 1; n <= perPub; n++ {
				if err := pub.Publish(s.ScanTopic(fmt.Sprintf("dock%d", p+1), "scn-"+name), harness.ScanPayload(name, n)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s.Gateway.Eventually(2*time.Minute, "all scans in Pulsar", func() bool { return col.Len() >= pubs*perPub })
	s.Gateway.Eventually(time.Minute, "buffer drained", s.Gateway.Drained)

	msgs := col.Messages()
	if probs := harness.Summarise(msgs).ExactlyOnce(want, true); probs != "" {
		t.Fatalf("delivery: %s", probs)
	}
	// Content: the envelope says what was published.
	for _, m := range msgs {
		e := m.Event
		pub := e.Attrs["pub"].(string)
		n, _ := e.Attrs["n"].(int64)
		if e.Gateway != s.ID || e.Stream != "scans" || e.Kind != event.KindScan {
			t.Fatalf("envelope %+v", e)
		}
		if wantBC := fmt.Sprintf("00%018d", n); e.Attrs["barcode"] != wantBC || e.Attrs["symbology"] != "GS1-128" {
			t.Fatalf("event %d of %s: barcode %v symbology %v, want %s", n, pub, e.Attrs["barcode"], e.Attrs["symbology"], wantBC)
		}
		if !strings.HasPrefix(e.Source, "dock") || !strings.HasSuffix(e.Source, "-scn-"+pub) || m.Key != e.Source {
			t.Fatalf("source %q key %q", e.Source, m.Key)
		}
		if e.Attrs["dock"] == nil || e.Received.IsZero() || e.Time.IsZero() || e.Boot == 0 {
			t.Fatalf("stamps missing: %+v", e)
		}
		if m.Props["gateway"] != s.ID || m.Props["kind"] != "scan" {
			t.Fatalf("properties %v", m.Props)
		}
	}
}

// 5. Malformed payloads land in quarantine; the other events are unaffected.
func TestMalformedPayloadsQuarantined(t *testing.T) {
	s := harness.NewSetup(t, "quarantine", harness.Options{})
	col := harness.Collect(t, s.Topic("scans"))
	s.Gateway.Start()
	pub := harness.NewPublisher(t, s.MQTT, s.ID+"-pub")
	bad := [][]byte{
		[]byte(`{"barcode": "unterminated`),
		[]byte(`not json at all`),
		[]byte(`{"symbology":"GS1-128"}`), // no barcode
		[]byte{0xff, 0xfe, 0x00, 0x01},
		[]byte(`{"barcode":` + strings.Repeat("9", 100<<10) + `}`), // over max_payload
	}
	good := 0
	for i := 0; i < 50; i++ {
		good++
		pub.MustPublish(s.ScanTopic("dock1", "scn-1"), harness.ScanPayload("pub", good))
		if i%10 == 0 {
			pub.MustPublish(s.ScanTopic("dock1", "scn-1"), bad[i/10])
		}
	}
	s.Gateway.Eventually(time.Minute, "good scans in Pulsar", func() bool { return col.Len() >= good })
	s.Gateway.Eventually(30*time.Second, "quarantine holds the bad payloads", func() bool {
		st, ok := s.Gateway.Status()
		return ok && st.Quarantined == int64(len(bad))
	})
	if probs := harness.Summarise(col.Messages()).ExactlyOnce(map[string]int{"pub": good}, true); probs != "" {
		t.Fatalf("delivery: %s", probs)
	}
}
