package uplink

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"

	"github.com/edgegw/gateway/test/testenv"
)

// Test 3: CheckDedup reports a namespace without deduplication with the
// typed error that says how to turn it on, and a forwarder refuses to send.
func TestCheckDedupOff(t *testing.T) {
	ns := newNamespace(t, false)
	c := newClient(t, ns.options())
	err := c.CheckDedup(context.Background())
	var de *DedupDisabledError
	if !errors.As(err, &de) || !errors.Is(err, ErrDedupDisabled) {
		t.Fatalf("CheckDedup = %v, want a *DedupDisabledError", err)
	}
	want := "pulsar-admin namespaces set-deduplication public/" + ns.name + " --enable"
	if !strings.Contains(err.Error(), want) || de.Source != "namespace policy" {
		t.Errorf("error %q (source %q) does not say %q", err, de.Source, want)
	}

	// The forwarder sends nothing and says why.
	b := newMemBacklog(mkEntries(t, "gw-1", "scans", 1, 10, 0)...)
	runForward(t, c, "gw-1", "scans", 0, b)
	testenv.Eventually(t, 10*time.Second, "forwarder reports the dedup error", func() bool {
		st, _ := c.Stream("scans")
		return strings.Contains(st.LastError, "set-deduplication")
	})
	if st, _ := c.Stream("scans"); st.Sent != 0 || st.Sessions != 0 || b.ackedSeq() != 0 {
		t.Errorf("forwarder sent without dedup: %+v", st)
	}

	// Turning it on lets it through (the check is retried).
	if err := ns.admin.Namespaces().SetDeduplicationStatus("public/"+ns.name, true); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "acked after dedup was enabled", func() bool { return b.ackedSeq() == 10 })
}

func TestCheckDedupOn(t *testing.T) {
	ns := newNamespace(t, true)
	c := newClient(t, ns.options())
	if err := c.CheckDedup(context.Background()); err != nil {
		t.Fatalf("CheckDedup = %v, want nil", err)
	}
}

// A namespace without its own policy falls back to the broker default,
// which is off on the test standalone.
func TestCheckDedupBrokerDefault(t *testing.T) {
	ns := newNS(t, nil)
	conf, err := ns.admin.Brokers().GetRuntimeConfigurations()
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, ns.options())
	err = c.CheckDedup(context.Background())
	var de *DedupDisabledError
	switch conf["brokerDeduplicationEnabled"] {
	case "true":
		if err != nil {
			t.Fatalf("broker default on: CheckDedup = %v", err)
		}
	default:
		if !errors.As(err, &de) || de.Source != "broker default" {
			t.Fatalf("broker default off: CheckDedup = %v, want a broker-default DedupDisabledError", err)
		}
	}
}

// What pulsar-client-go hands the SendAsync callback for a message the
// broker drops as a duplicate: no error, and a message ID of -1:-1.
func TestDuplicateReceipt(t *testing.T) {
	ns := newNamespace(t, true)
	o := ns.options()
	pc, err := pulsar.NewClient(pulsar.ClientOptions{URL: ns.serviceURL, Logger: plog.NewLoggerWithSlog(testLogger(t))})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	topic := o.Topic("dups")
	send := func(seqs ...int64) []pulsar.MessageID {
		p, err := pc.CreateProducer(pulsar.ProducerOptions{Topic: topic, Name: "gw/dups", DisableBatching: true, SendTimeout: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		ids := make([]pulsar.MessageID, len(seqs))
		for i, s := range seqs {
			id, err := p.Send(context.Background(), &pulsar.ProducerMessage{Payload: []byte{byte(s)}, SequenceID: &s})
			if err != nil {
				t.Fatalf("send seq %d: %v", s, err)
			}
			ids[i] = id
		}
		return ids
	}
	first := send(1, 2, 3)
	again := send(2, 3, 4)
	for i, id := range first {
		if isDuplicateReceipt(id) {
			t.Errorf("first send of seq %d: id %v looks like a duplicate", i+1, id)
		}
	}
	for i, id := range again[:2] {
		t.Logf("receipt of re-sent seq %d: %v (ledger %d, entry %d, batch %d, partition %d)",
			i+2, id, id.LedgerID(), id.EntryID(), id.BatchIdx(), id.PartitionIdx())
		if !isDuplicateReceipt(id) {
			t.Errorf("re-sent seq %d: id %v, want -1:-1", i+2, id)
		}
	}
	if isDuplicateReceipt(again[2]) {
		t.Errorf("new seq 4 after re-sends: id %v, taken for a duplicate", again[2])
	}
}
