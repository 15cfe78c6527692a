package smoke

import (
	"fmt"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgegw/gateway/test/testenv"
)

// collector records the payloads a subscriber receives, in arrival order.
type collector struct {
	mu  sync.Mutex
	got []string
}

func (c *collector) handle(_ mqtt.Client, m mqtt.Message) {
	c.mu.Lock()
	c.got = append(c.got, string(m.Payload()))
	c.mu.Unlock()
}

func (c *collector) snapshot() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

func connect(t *testing.T, broker, id string, clean bool, h mqtt.MessageHandler) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(clean).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).SetOrderMatters(true)
	if h != nil {
		o.SetDefaultPublishHandler(h)
	}
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s to %s: %v", id, broker, tok.Error())
	}
	return c
}

func wait(t *testing.T, what string, tok mqtt.Token) {
	t.Helper()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("%s: timed out or failed: %v", what, tok.Error())
	}
}

func payloads(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%05d", prefix, i)
	}
	return out
}

func publishAll(t *testing.T, c mqtt.Client, topic string, msgs []string) {
	t.Helper()
	toks := make([]mqtt.Token, len(msgs))
	for i, m := range msgs {
		toks[i] = c.Publish(topic, 1, false, m)
	}
	for i, tok := range toks {
		wait(t, "publish "+msgs[i], tok)
	}
}

func assertReceived(t *testing.T, col *collector, want []string) {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("received %d of %d messages", len(col.snapshot()), len(want))
		}
	}()
	testenv.Eventually(t, 20*time.Second, fmt.Sprintf("%d messages", len(want)), func() bool {
		return len(col.snapshot()) >= len(want)
	})
	got := col.snapshot()
	if len(got) != len(want) {
		t.Fatalf("received %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("message %d = %q, want %q (order or content differs)", i, got[i], want[i])
		}
	}
}

// TestMosquittoQoS1 publishes at QoS 1 to an online subscriber and expects
// exactly the payloads sent, in order.
func TestMosquittoQoS1(t *testing.T) {
	broker := testenv.MQTT(t)
	topic := unique("edgegw/smoke/online/")
	col := &collector{}
	sub := connect(t, broker, unique("smoke-sub-"), true, nil)
	defer sub.Disconnect(250)
	wait(t, "subscribe", sub.Subscribe(topic, 1, col.handle))

	pub := connect(t, broker, unique("smoke-pub-"), true, nil)
	defer pub.Disconnect(250)
	want := payloads("online", 200)
	publishAll(t, pub, topic, want)
	assertReceived(t, col, want)
}

// TestMosquittoQueuesForOfflineSession checks the broker config the gateway
// relies on: a persistent session (clean session off) gets every QoS 1
// message published while it was offline, beyond Mosquitto's default queue
// limit of 1000, in order.
func TestMosquittoQueuesForOfflineSession(t *testing.T) {
	broker := testenv.MQTT(t)
	topic := unique("edgegw/smoke/offline/")
	id := unique("smoke-persistent-")

	sub := connect(t, broker, id, false, nil)
	wait(t, "subscribe", sub.Subscribe(topic, 1, nil))
	sub.Disconnect(250)

	pub := connect(t, broker, unique("smoke-pub-"), true, nil)
	defer pub.Disconnect(250)
	want := payloads("offline", 1500)
	publishAll(t, pub, topic, want)

	col := &collector{}
	sub = connect(t, broker, id, false, col.handle)
	assertReceived(t, col, want)
	sub.Disconnect(250)
	// Drop the persistent session.
	connect(t, broker, id, true, nil).Disconnect(250)
}
