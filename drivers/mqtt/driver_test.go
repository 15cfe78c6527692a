package mqtt

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/test/testenv"
)

// Over a fake client: the driver subscribes the filters with their names
// stripped, counts the connection, turns messages into events through the
// shared ingest, and acks them after the commit.
func TestDriverOverFakeClient(t *testing.T) {
	sink := &memSink{}
	cfg := fakeConfig()
	cfg.AckWindow = 0
	d, fc, stop := startFake(t, cfg, sink)
	testenv.Eventually(t, 5*time.Second, "subscribed", d.Ready)
	fc.mu.Lock()
	subscribed := fc.subscribed
	fc.mu.Unlock()
	if !reflect.DeepEqual(subscribed, map[string]byte{"s/+": 1}) {
		t.Fatalf("subscribed %v", subscribed)
	}
	for i := 1; i <= 3; i++ {
		fc.deliver("s/dev"+string(rune('0'+i)), scanPayload(i), 1)
	}
	testenv.Eventually(t, 5*time.Second, "3 acked", func() bool { return len(fc.acked()) == 3 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	evs, _, _ := sink.Snapshot()
	if got := barcodes(evs); !reflect.DeepEqual(got, seqBarcodes(1, 3)) || evs[0].Source != "dev1" {
		t.Fatalf("events %v (source %q)", got, evs[0].Source)
	}
	st := d.Stats()
	if st.Connects != 1 || st.Subscribes != 1 || st.Received != 3 || st.Accepted != 3 || st.Acked != 3 {
		t.Fatalf("stats %+v", st)
	}
	if !fc.disconnected {
		t.Fatal("not disconnected after Run")
	}
}

// A source on the embedded broker is the mqtt-embedded driver's: New
// refuses it, and the registration hands it on to that driver, which this
// package's tests do not link.
func TestEmbeddedIsAnAlias(t *testing.T) {
	cfg := fakeConfig()
	cfg.Brokers = []string{Embedded}
	if setting, uses := cfg.UsesInbox(); !uses || setting != "brokers" {
		t.Fatalf("UsesInbox = %q, %v", setting, uses)
	}
	if _, uses := fakeConfig().UsesInbox(); uses {
		t.Fatal("a site broker config uses the inbox")
	}
	if _, err := New(cfg, drivers.Env{Gateway: "gw1", Logger: testLogger()}); err == nil || !strings.Contains(err.Error(), EmbeddedDriver) {
		t.Fatalf("New = %v, want a refusal naming %s", err, EmbeddedDriver)
	}
	reg, _ := drivers.Lookup("mqtt")
	if _, err := reg.New(cfg, drivers.Env{Gateway: "gw1", Logger: testLogger()}); err == nil || !strings.Contains(err.Error(), "no "+EmbeddedDriver+" driver") {
		t.Fatalf("registration without %s linked: %v", EmbeddedDriver, err)
	}
}
