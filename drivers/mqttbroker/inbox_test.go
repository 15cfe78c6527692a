package mqttbroker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/drivers/mqtt"
	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/testenv"
)

// gateSink is a drivers.Sink whose commits the test controls: while full
// it refuses with drivers.ErrFull; every committed event's barcode is
// recorded, in commit order.
type gateSink struct {
	full    atomic.Bool
	refused atomic.Int64
	mu      sync.Mutex
	stored  []string
	set     map[string]bool
}

func (s *gateSink) Emit(_ context.Context, evs []*event.Event) error {
	if s.full.Load() {
		s.refused.Add(1)
		return fmt.Errorf("stream scans: %w", drivers.ErrFull)
	}
	time.Sleep(time.Millisecond) // an fsync's worth: lets the device pipeline
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set == nil {
		s.set = map[string]bool{}
	}
	for _, e := range evs {
		bc, _ := e.Attrs["barcode"].(string)
		s.stored = append(s.stored, bc)
		s.set[bc] = true
	}
	return nil
}

func (s *gateSink) Quarantine(context.Context, string, []byte, string) error { return nil }

func (s *gateSink) has(bc string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set[bc]
}

func (s *gateSink) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.stored...)
}

// runInboxDriver runs a source on b's inbox as the gateway does for a
// config in the older spelling (driver: mqtt, brokers: [embedded]: the mqtt
// registration hands it to this package's Source), until the test ends.
func runInboxDriver(t *testing.T, b *Broker, sink drivers.Sink) *Source {
	t.Helper()
	reg, ok := drivers.Lookup("mqtt")
	if !ok {
		t.Fatal("no mqtt driver")
	}
	cfg := reg.NewConfig().(*mqtt.Config)
	cfg.Brokers = []string{mqtt.Embedded}
	cfg.Subscriptions = []mqtt.Subscription{{Topic: "site/+dock/scanner/+device", Kind: "scan", Source: "{dock}-{device}"}}
	dr, err := reg.New(cfg, drivers.Env{Gateway: "gw", Logger: testLogger(), Inbox: b})
	if err != nil {
		t.Fatal(err)
	}
	d, ok := dr.(*Source)
	if !ok {
		t.Fatalf("driver: mqtt, brokers: [embedded] made a %T, want *mqttbroker.Source", dr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	testenv.Eventually(t, 10*time.Second, "driver attached", d.Ready)
	return d
}

func anonBroker(t *testing.T, mod func(*Config)) *Broker {
	cfg := Config{AllowAnonymous: true}
	if mod != nil {
		mod(&cfg)
	}
	return startBroker(t, cfg)
}

// TestInboxAckFollowsCommit: a device pipelining 3,000 QoS 1 publishes
// (MQTT 3.1.1, paho) gets each PUBACK only after the commit that holds its
// publish, and every publish is stored once, in the order sent.
func TestInboxAckFollowsCommit(t *testing.T) {
	b := anonBroker(t, nil)
	sink := &gateSink{}
	runInboxDriver(t, b, sink)
	dev, err := connect(t, "tcp://"+b.Addr(), "sc-1", "", "")
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	var early atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		bc := fmt.Sprintf("B%05d", i)
		tok := dev.Publish("site/dock3/scanner/sc-1", 1, false, fmt.Sprintf(`{"barcode":%q}`, bc))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
				early.Add(1 << 32) // no ack at all
				return
			}
			if !sink.has(bc) {
				early.Add(1)
			}
		}()
	}
	wg.Wait()
	if e := early.Load(); e != 0 {
		t.Fatalf("%d PUBACKs before their commit, %d publishes never acked", e&(1<<32-1), e>>32)
	}
	got := sink.snapshot()
	if len(got) != n {
		t.Fatalf("stored %d, want %d", len(got), n)
	}
	for i, bc := range got {
		if want := fmt.Sprintf("B%05d", i); bc != want {
			t.Fatalf("stored[%d] = %s, want %s (order)", i, bc, want)
		}
	}
}

// TestInboxQoS2: a QoS 2 publish completes (PUBREC after the commit, then
// PUBREL/PUBCOMP) and is stored once.
func TestInboxQoS2(t *testing.T) {
	b := anonBroker(t, nil)
	sink := &gateSink{}
	runInboxDriver(t, b, sink)
	dev, err := connect(t, "tcp://"+b.Addr(), "sc-2", "", "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		tok := dev.Publish("site/dock1/scanner/sc-2", 2, false, fmt.Sprintf(`{"barcode":"Q%03d"}`, i))
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
		if !sink.has(fmt.Sprintf("Q%03d", i)) {
			t.Fatalf("publish %d completed before it was stored", i)
		}
	}
	if got := len(sink.snapshot()); got != 50 {
		t.Fatalf("stored %d, want 50", got)
	}
}

// TestInboxFullHoldsAcks: while the sink is full a 3.1.1 device gets no
// acks and loses nothing; when room returns, everything is stored and acked
// without a reconnect.
func TestInboxFullHoldsAcks(t *testing.T) {
	b := anonBroker(t, nil)
	sink := &gateSink{}
	sink.full.Store(true)
	runInboxDriver(t, b, sink)
	dev, err := connect(t, "tcp://"+b.Addr(), "sc-3", "", "")
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	toks := make([]paho.Token, n)
	for i := range n {
		toks[i] = dev.Publish("site/dock3/scanner/sc-3", 1, false, fmt.Sprintf(`{"barcode":"F%04d"}`, i))
	}
	testenv.Eventually(t, 10*time.Second, "sink refused batches", func() bool { return sink.refused.Load() >= 3 })
	// A refused batch is never acked: acks follow a successful commit only.
	for i, tok := range toks {
		select {
		case <-tok.Done():
			t.Fatalf("publish %d acked while the sink was full", i)
		default:
		}
	}
	sink.full.Store(false)
	for i, tok := range toks {
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d not acked after room returned: %v", i, tok.Error())
		}
	}
	got := sink.snapshot()
	if len(got) != n {
		t.Fatalf("stored %d, want %d", len(got), n)
	}
	for i, bc := range got {
		if want := fmt.Sprintf("F%04d", i); bc != want {
			t.Fatalf("stored[%d] = %s, want %s", i, bc, want)
		}
	}
}

// TestInboxWindowBoundsMemory: a 3.1.1 device cannot get more than
// max_inflight publishes into the gateway's memory while nothing commits.
func TestInboxWindowBoundsMemory(t *testing.T) {
	b := anonBroker(t, func(c *Config) { c.MaxInflight = 16 })
	sink := &gateSink{}
	sink.full.Store(true)
	d := runInboxDriver(t, b, sink)
	dev, err := connect(t, "tcp://"+b.Addr(), "sc-4", "", "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		dev.Publish("site/dock3/scanner/sc-4", 1, false, fmt.Sprintf(`{"barcode":"W%04d"}`, i))
	}
	testenv.Eventually(t, 10*time.Second, "window full", func() bool { return d.Stats().Received >= 16 })
	testenv.Eventually(t, 10*time.Second, "sink refused batches", func() bool { return sink.refused.Load() >= 3 })
	if got := d.Stats().Received; got != 16 {
		t.Fatalf("received %d publishes with nothing committed, want the window of 16", got)
	}
	sink.full.Store(false)
	testenv.Eventually(t, 30*time.Second, "all stored", func() bool { return len(sink.snapshot()) == 200 })
}

// TestInboxMQTT5QuotaExceeded: an MQTT 5 device gets PUBACK 0x97 while the
// sink is full (and nothing is stored), then success once room returns.
func TestInboxMQTT5QuotaExceeded(t *testing.T) {
	b := anonBroker(t, nil)
	sink := &gateSink{}
	sink.full.Store(true)
	d := runInboxDriver(t, b, sink)
	c := dial5(t, b.Addr(), "v5-dev")
	c.publish(t, 1, 1, "site/dock2/scanner/v5-dev", `{"barcode":"V5-1"}`)
	ack := c.read(t)
	if ack.FixedHeader.Type != packets.Puback || ack.PacketID != 1 || ack.ReasonCode != ReasonQuotaExceeded {
		t.Fatalf("got %v id %d reason %#x, want PUBACK 1 with 0x97", ack.FixedHeader.Type, ack.PacketID, ack.ReasonCode)
	}
	testenv.Eventually(t, 5*time.Second, "refusal counted", func() bool { return d.Stats().Refused == 1 })
	if got := len(sink.snapshot()); got != 0 {
		t.Fatalf("stored %d while full", got)
	}
	sink.full.Store(false)
	c.publish(t, 2, 1, "site/dock2/scanner/v5-dev", `{"barcode":"V5-1"}`)
	ack = c.read(t)
	if ack.FixedHeader.Type != packets.Puback || ack.PacketID != 2 || ack.ReasonCode != 0 {
		t.Fatalf("got %v id %d reason %#x, want PUBACK 2 success", ack.FixedHeader.Type, ack.PacketID, ack.ReasonCode)
	}
	if got := sink.snapshot(); len(got) != 1 || got[0] != "V5-1" {
		t.Fatalf("stored %v", got)
	}
}

// TestInboxReservedTopic: a QoS 1 publish to $SYS/… does not leave the
// device waiting: MQTT 5 gets 0x90, 3.1.1 is disconnected.
func TestInboxReservedTopic(t *testing.T) {
	b := anonBroker(t, nil)
	runInboxDriver(t, b, &gateSink{})
	c := dial5(t, b.Addr(), "v5-sys")
	c.publish(t, 7, 1, "$SYS/x", "hi")
	if ack := c.read(t); ack.FixedHeader.Type != packets.Puback || ack.ReasonCode != ReasonTopicNameInvalid {
		t.Fatalf("got %v reason %#x, want PUBACK 0x90", ack.FixedHeader.Type, ack.ReasonCode)
	}
	lost := make(chan error, 1)
	o := paho.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID("v3-sys").SetAutoReconnect(false).
		SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	dev := paho.NewClient(o)
	if tok := dev.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer dev.Disconnect(10)
	dev.Publish("$SYS/x", 1, false, "hi")
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("3.1.1 client publishing to $SYS/x was neither acked nor disconnected")
	}
}

// TestInboxUnmappedTopicIsBrokerMessage: a publish on a topic no source
// attached is an ordinary broker message (acked, routed to subscribers),
// and a mapped one reaches local subscribers after its commit.
func TestInboxUnmappedTopicIsBrokerMessage(t *testing.T) {
	b := anonBroker(t, func(c *Config) { c.Anonymous = ACL{Publish: []string{"#"}, Subscribe: []string{"#"}} })
	sink := &gateSink{}
	runInboxDriver(t, b, sink)
	dash, err := connect(t, "tcp://"+b.Addr(), "dash", "", "")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	if tok := dash.Subscribe("#", 1, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		seen[m.Topic()]++
		mu.Unlock()
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	dev, err := connect(t, "tcp://"+b.Addr(), "dev", "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"site/dock1/light/cmd", "site/dock1/scanner/s1"} {
		if tok := dev.Publish(topic, 1, false, `{"barcode":"U1"}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	testenv.Eventually(t, 5*time.Second, "dashboard got both", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen["site/dock1/light/cmd"] == 1 && seen["site/dock1/scanner/s1"] == 1
	})
	if got := sink.snapshot(); len(got) != 1 || got[0] != "U1" {
		t.Fatalf("stored %v, want only the scanner topic's event", got)
	}
}

// TestInboxDetachDisconnects: when the source detaches with publishes not
// acked, their device is disconnected (so it sends them again) and their
// room is given back.
func TestInboxDetachDisconnects(t *testing.T) {
	b := anonBroker(t, nil)
	got := make(chan drivers.Publish, 10)
	detach, err := b.Attach([]string{"t/#"}, func(p drivers.Publish) { got <- p })
	if err != nil {
		t.Fatal(err)
	}
	lost := make(chan struct{})
	o := paho.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID("d1").SetAutoReconnect(false).
		SetConnectionLostHandler(func(paho.Client, error) { close(lost) })
	dev := paho.NewClient(o)
	if tok := dev.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer dev.Disconnect(10)
	tok := dev.Publish("t/1", 1, false, "x")
	p := <-got
	if p.Topic != "t/1" || p.Client != "d1" || p.QoS != 1 {
		t.Fatalf("delivered %+v", p)
	}
	if b.inbox.bytes.inUse() == 0 {
		t.Fatal("no room taken for the publish in flight")
	}
	detach()
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("device with an unacked publish not disconnected on detach")
	}
	p.Ack() // too late: must not write or panic
	select {
	case <-tok.Done():
		if tok.Error() == nil {
			t.Fatal("publish acked after detach")
		}
	default:
	}
	if n := b.inbox.bytes.inUse(); n != 0 {
		t.Fatalf("%d bytes of room still taken after detach", n)
	}
}

// raw5 is a minimal MQTT 5 client (paho.mqtt.golang speaks 3.1.1 only).
type raw5 struct {
	c net.Conn
	r *bufio.Reader
}

func dial5(t *testing.T, addr, id string) *raw5 {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &raw5{c: c, r: bufio.NewReader(c)}
	r.write(t, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 5,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, ClientIdentifier: id, Keepalive: 30}})
	if ack := r.read(t); ack.FixedHeader.Type != packets.Connack || ack.ReasonCode != 0 {
		t.Fatalf("connect: %v reason %#x", ack.FixedHeader.Type, ack.ReasonCode)
	}
	return r
}

func (r *raw5) publish(t *testing.T, id uint16, qos byte, topic, payload string) {
	r.write(t, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos}, ProtocolVersion: 5,
		PacketID: id, TopicName: topic, Payload: []byte(payload)})
}

func (r *raw5) write(t *testing.T, pk packets.Packet) {
	t.Helper()
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	}
	if err == nil {
		_, err = r.c.Write(buf.Bytes())
	}
	if err != nil {
		t.Fatal(err)
	}
}

func (r *raw5) read(t *testing.T) packets.Packet {
	t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b0, err := r.r.ReadByte()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	n, err := binary.ReadUvarint(r.r)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r.r, body); err != nil {
		t.Fatal(err)
	}
	pk := packets.Packet{ProtocolVersion: 5}
	if err := pk.FixedHeader.Decode(b0); err != nil {
		t.Fatal(err)
	}
	pk.FixedHeader.Remaining = int(n)
	switch pk.FixedHeader.Type {
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Puback:
		err = pk.PubackDecode(body)
	case packets.Pubrec:
		err = pk.PubrecDecode(body)
	case packets.Disconnect:
		err = pk.DisconnectDecode(body)
	default:
		err = errors.New("unexpected packet type")
	}
	if err != nil {
		t.Fatalf("decode %v: %v", pk.FixedHeader.Type, err)
	}
	return pk
}

// TestInboxDeviceNotReadingAcksIsDisconnected: acks go to a device through
// its own queue and writer; a device whose queue is full (it stopped
// reading its socket) is disconnected instead of blocking the committer
// that acks everyone's publishes.
func TestInboxDeviceNotReadingAcksIsDisconnected(t *testing.T) {
	srv := mochi.New(&mochi.Options{Logger: testLogger()})
	server, client := net.Pipe() // nobody reads client: writes to server block
	defer client.Close()
	cl := srv.NewClient(server, "devices", "stuck", false)
	d := &device{window: newBudget(4), acks: make(chan *packets.Packet, 2), gone: make(chan struct{})}
	go d.writeAcks(cl, make(chan struct{}))
	f := &inflight{cl: cl, dev: d}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for id := range uint16(10) { // the writer blocks on the first; the queue holds 2
			f.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: id + 1})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("acking a device that does not read blocked the caller")
	}
	if !cl.Closed() {
		t.Fatal("a device with a full ack queue was not disconnected")
	}
	close(d.gone)
}
