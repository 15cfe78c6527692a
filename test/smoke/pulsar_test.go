package smoke

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"

	"github.com/edgegw/gateway/test/testenv"
)

func mustPort(t *testing.T, s string) int {
	t.Helper()
	p, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("bad port %q: %v", s, err)
	}
	return p
}

// TestPulsarDeduplication enables broker deduplication on a fresh namespace
// and checks the uplink's contract: a new producer instance with the same
// name that re-sends sequence IDs the broker already persisted gets receipts,
// and the consumer sees each message exactly once, in order.
func TestPulsarDeduplication(t *testing.T) {
	serviceURL, adminURL := testenv.Pulsar(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	admin, err := pulsaradmin.NewClient(&pulsaradmin.Config{WebServiceURL: adminURL})
	if err != nil {
		t.Fatal(err)
	}
	ns := "public/" + unique("smoke-dedup-")
	if err := admin.Namespaces().CreateNamespaceWithContext(ctx, ns); err != nil {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
	if err := admin.Namespaces().SetDeduplicationStatusWithContext(ctx, ns, true); err != nil {
		t.Fatalf("enable deduplication on %s: %v", ns, err)
	}
	topic := "persistent://" + ns + "/events"
	t.Cleanup(func() {
		if tn, err := utils.GetTopicName(topic); err == nil {
			_ = admin.Topics().Delete(*tn, true, true)
		}
		if err := admin.Namespaces().DeleteNamespace(ns); err != nil {
			t.Logf("delete namespace %s: %v", ns, err)
		}
	})

	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: serviceURL, OperationTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	consumer, err := client.Subscribe(pulsar.ConsumerOptions{
		Topic: topic, SubscriptionName: "smoke", Type: pulsar.Exclusive,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer consumer.Close()

	send := func(p pulsar.Producer, seq int64, payload string) {
		t.Helper()
		if _, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: []byte(payload), SequenceID: &seq}); err != nil {
			t.Fatalf("send seq %d: %v", seq, err)
		}
	}
	newProducer := func() pulsar.Producer {
		t.Helper()
		// No client-side batching: a batch carries only its first sequence
		// ID (see DESIGN.md, pulsar-client-go issues 1395 and 1407).
		p, err := client.CreateProducer(pulsar.ProducerOptions{
			Topic: topic, Name: "smoke-gw-scans", DisableBatching: true, SendTimeout: 30 * time.Second,
		})
		if err != nil {
			t.Fatalf("create producer: %v", err)
		}
		return p
	}

	p1 := newProducer()
	for seq := int64(0); seq < 3; seq++ {
		send(p1, seq, fmt.Sprintf("event-%d", seq))
	}
	p1.Close()

	// A new instance under the same name, as after a gateway restart: it
	// re-sends 1 and 2 (with different payloads, to tell them apart) and
	// then sends 3.
	p2 := newProducer()
	defer p2.Close()
	send(p2, 1, "resent-1")
	send(p2, 2, "resent-2")
	send(p2, 3, "event-3")
	if got := p2.LastSequenceID(); got != 3 {
		t.Errorf("LastSequenceID after sending 3 = %d, want 3", got)
	}

	// event-3 was sent after the re-sends, so had they been persisted they
	// would arrive before it: receiving exactly these four proves they were
	// dropped, without waiting for an absence.
	want := []string{"event-0", "event-1", "event-2", "event-3"}
	for i, w := range want {
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		msg, err := consumer.Receive(rctx)
		rcancel()
		if err != nil {
			t.Fatalf("receive message %d: %v", i, err)
		}
		if got := string(msg.Payload()); got != w {
			t.Fatalf("message %d = %q, want %q", i, got, w)
		}
		if err := consumer.Ack(msg); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
}
