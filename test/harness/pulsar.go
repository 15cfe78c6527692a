package harness

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/admin/config"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"

	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/testenv"
)

// Namespace creates a fresh namespace "public/<prefix>-<time>" with broker
// deduplication on and returns its name. Its topics keep what was written
// for an hour (up to 1 GiB) even without a subscription: tests read back
// from the earliest message with a reader created afterwards, and Pulsar's
// default (no retention) trims a fully "consumed" ledger when it rolls over,
// e.g. at a broker restart.
func Namespace(t testing.TB, prefix string) string {
	t.Helper()
	_, adminURL := testenv.Pulsar(t)
	adm, err := pulsaradmin.NewClient(&config.Config{WebServiceURL: adminURL})
	if err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("public/%s-%d", prefix, time.Now().UnixNano())
	if err := adm.Namespaces().CreateNamespace(ns); err != nil {
		t.Fatalf("create namespace %s: %v", ns, err)
	}
	if err := adm.Namespaces().SetDeduplicationStatus(ns, true); err != nil {
		t.Fatalf("enable deduplication on %s: %v", ns, err)
	}
	if err := adm.Namespaces().SetRetention(ns, utils.NewRetentionPolicies(60, 1024)); err != nil {
		t.Fatalf("set retention on %s: %v", ns, err)
	}
	return ns
}

// Received is one message read back from Pulsar.
type Received struct {
	Event    *event.Event
	Key      string
	Producer string
	Props    map[string]string
	Err      error // decode error
}

// Collector reads a topic from the earliest message, decoding every event.
type Collector struct {
	mu     sync.Mutex
	msgs   []Received
	cancel context.CancelFunc
	done   chan struct{}
}

// Collect starts reading topic (persistent://...) from the beginning.
func Collect(t testing.TB, topic string) *Collector {
	t.Helper()
	url, _ := testenv.Pulsar(t)
	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: url, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	r, err := client.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		client.Close()
		t.Fatalf("reader on %s: %v", topic, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Collector{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			m, err := r.Next(ctx)
			if err != nil {
				return
			}
			rc := Received{Key: m.Key(), Producer: m.ProducerName(), Props: m.Properties()}
			rc.Event, rc.Err = event.Unmarshal(m.Payload())
			c.mu.Lock()
			c.msgs = append(c.msgs, rc)
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-c.done
		r.Close()
		client.Close()
	})
	return c
}

// Messages returns a copy of what was read so far.
func (c *Collector) Messages() []Received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Received(nil), c.msgs...)
}

// Len is the number of messages read so far.
func (c *Collector) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// Topic is the events topic of stream in namespace ns.
func Topic(ns, stream string) string {
	return "persistent://" + ns + "/events-" + strings.TrimSpace(stream)
}
