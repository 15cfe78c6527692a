package uplink

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	"github.com/edgegw/gateway/test/testenv"
)

func newControl(t *testing.T, ns *pulsarNS) *Control {
	t.Helper()
	o := DefaultOptions()
	o.ServiceURL, o.AdminURL, o.Tenant, o.Namespace = ns.serviceURL, ns.adminURL, ns.tenant, ns.name
	c, err := NewControl(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func publishAll(t *testing.T, c *Control, topic string, kv ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i+1 < len(kv); i += 2 {
		if err := c.Publish(ctx, topic, KeyedMessage{Key: kv[i], Payload: []byte(kv[i+1])}); err != nil {
			t.Fatal(err)
		}
	}
}

func describe(m map[string]KeyedMessage) string {
	var s []string
	for k, v := range m {
		s = append(s, k+"="+string(v.Payload))
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

func TestControlReadLatestAndWatch(t *testing.T) {
	c := newControl(t, newNamespace(t, true))
	topic := c.Topic("config")
	publishAll(t, c, topic, "k1", "a", "k2", "b", "k1", "c")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, err := c.Read(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || describe(Latest(msgs)) != "k1=c k2=b" {
		t.Fatalf("read %d messages, latest %s", len(msgs), describe(Latest(msgs)))
	}

	var mu sync.Mutex
	var seen []string
	wctx, wcancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Watch(wctx, topic, func(k string) bool { return k != "k2" }, func(l map[string]KeyedMessage) {
			mu.Lock()
			seen = append(seen, describe(l))
			mu.Unlock()
		})
	}()
	last := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
	testenv.Eventually(t, 30*time.Second, "caught up", func() bool { return len(last()) == 1 })
	publishAll(t, c, topic, "k2", "ignored", "k3", "d", "k1", "e")
	testenv.Eventually(t, 30*time.Second, "updates", func() bool { return len(last()) == 3 })
	if got := strings.Join(last(), " | "); got != "k1=c | k1=c k3=d | k1=e k3=d" {
		t.Fatalf("watch saw %q", got)
	}
	wcancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch returned %v", err)
	}
}

func TestControlPublishExclusive(t *testing.T) {
	c := newControl(t, newNamespace(t, true))
	topic := c.Topic("config")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	inside, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- c.PublishExclusive(ctx, topic, func(read []KeyedMessage) (KeyedMessage, error) {
			close(inside)
			<-release
			return KeyedMessage{Key: "k", Payload: []byte(fmt.Sprint(len(read)))}, nil
		})
	}()
	<-inside
	// A second pusher cannot read the same state and publish too.
	err := c.PublishExclusive(ctx, topic, func([]KeyedMessage) (KeyedMessage, error) {
		return KeyedMessage{Key: "k", Payload: []byte("second")}, nil
	})
	if err == nil || !strings.Contains(err.Error(), "exclusive producer") {
		t.Fatalf("a concurrent exclusive publish got %v", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// Afterwards it can, and it sees the first one's message.
	err = c.PublishExclusive(ctx, topic, func(read []KeyedMessage) (KeyedMessage, error) {
		if len(read) != 1 || string(read[0].Payload) != "0" {
			return KeyedMessage{}, fmt.Errorf("read %v", read)
		}
		return KeyedMessage{Key: "k", Payload: []byte("1")}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Compacted reads see the latest message per key, and a tombstone at the
// end of a compacted topic (for which HasNext promises a message that never
// comes) does not hang the catch-up.
func TestControlReadsCompactedTopic(t *testing.T) {
	ns := newNamespace(t, true)
	c := newControl(t, ns)
	c.CatchUpWait = time.Second
	topic := c.Topic("status")
	publishAll(t, c, topic, "a", "1", "b", "1", "a", "2", "a", "3", "c", "1", "c", "")
	if err := c.Compact(topic); err != nil {
		t.Fatal(err)
	}
	tn, _ := utils.GetTopicName(topic)
	testenv.Eventually(t, 60*time.Second, "compaction done", func() bool {
		st, err := ns.admin.Topics().CompactStatus(*tn)
		if err == nil && st.Status == utils.ERROR {
			t.Fatalf("compaction failed: %s", st.LastError)
		}
		return err == nil && st.Status == utils.SUCCESS
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	msgs, err := c.Read(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range msgs {
		got = append(got, m.Key+"="+string(m.Payload))
	}
	if strings.Join(got, " ") != "b=1 a=3" {
		t.Fatalf("compacted read %v", got)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("catch-up took %s", d)
	}
}

func TestControlGivesUpWithContext(t *testing.T) {
	o := DefaultOptions()
	o.ServiceURL, o.AdminURL = "pulsar://127.0.0.1:1", "http://127.0.0.1:1"
	c, err := NewControl(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for name, op := range map[string]func(ctx context.Context) error{
		"read": func(ctx context.Context) error { _, err := c.Read(ctx, c.Topic("config")); return err },
		"publish": func(ctx context.Context) error {
			return c.Publish(ctx, c.Topic("status"), KeyedMessage{Key: "k", Payload: []byte("x")})
		},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		err := op(ctx)
		cancel()
		if err == nil || time.Since(start) > 5*time.Second {
			t.Fatalf("%s against a dead broker: %v after %s; want an error once ctx ends", name, err, time.Since(start))
		}
	}
}
