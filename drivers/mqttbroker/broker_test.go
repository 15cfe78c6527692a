package mqttbroker

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/test/testenv"
	"github.com/edgegw/gateway/units"
)

func testLogger() *slog.Logger {
	level := slog.LevelError
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func writeFile(t *testing.T, name, content string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startBroker runs a broker on a free loopback port until the test ends.
func startBroker(t *testing.T, cfg Config) *Broker {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	b, err := New(cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func connect(t *testing.T, url, id, user, pass string) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(user).SetPassword(pass).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, errors.New("connect timed out")
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, nil
}

// collector attaches to every topic, as the gateway's sources do, and
// acks at once.
type collector struct {
	mu   sync.Mutex
	msgs map[string][]string
}

func (c *collector) got(topic string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.msgs[topic]
}

func collect(t *testing.T, b *Broker) *collector {
	col := &collector{msgs: map[string][]string{}}
	detach, err := b.Attach([]string{"#"}, func(p drivers.Publish) {
		col.mu.Lock()
		col.msgs[p.Topic] = append(col.msgs[p.Topic], string(p.Payload))
		col.mu.Unlock()
		p.Ack()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(detach)
	return col
}

func scannerConfig(t *testing.T) Config {
	return Config{Users: []User{{
		Username: "dock3", PasswordFile: writeFile(t, "dock3", "s3cret\n"),
		ACL: ACL{Publish: []string{"site/dock3/#"}},
	}}}
}

func TestAuthAndACL(t *testing.T) {
	b := startBroker(t, scannerConfig(t))
	col := collect(t, b)
	url := "tcp://" + b.Addr()

	dev, err := connect(t, url, "sc-1", "dock3", "s3cret")
	if err != nil {
		t.Fatalf("device with the right password: %v", err)
	}
	if tok := dev.Publish("site/dock3/scan", 1, false, "ok"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("allowed publish: %v", tok.Error())
	}
	testenv.Eventually(t, 5*time.Second, "allowed publish delivered", func() bool { return len(col.got("site/dock3/scan")) == 1 })

	// Outside its ACL: QoS 0 is dropped silently; a 3.1.1 client sending
	// QoS 1 is disconnected. Neither is delivered.
	dev.Publish("site/dock4/scan", 0, false, "spoof0").WaitTimeout(5 * time.Second)
	dev.Publish("site/dock4/scan", 1, false, "spoof1").WaitTimeout(2 * time.Second)
	if tok := dev.Publish("site/dock3/scan", 1, false, "marker"); tok.WaitTimeout(2*time.Second) && tok.Error() == nil {
		testenv.Eventually(t, 5*time.Second, "marker", func() bool { return len(col.got("site/dock3/scan")) == 2 })
	}
	dev2, err := connect(t, url, "sc-2", "dock3", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	dev2.Publish("site/dock3/scan", 1, false, "marker2").WaitTimeout(5 * time.Second)
	testenv.Eventually(t, 5*time.Second, "marker2 delivered", func() bool {
		g := col.got("site/dock3/scan")
		return len(g) > 0 && g[len(g)-1] == "marker2"
	})
	if g := col.got("site/dock4/scan"); len(g) != 0 {
		t.Fatalf("disallowed publish delivered: %v", g)
	}

	// A device may not subscribe outside its (empty) subscribe ACL.
	tok := dev2.Subscribe("site/#", 1, nil)
	tok.WaitTimeout(5 * time.Second)
	if code := tok.(*paho.SubscribeToken).Result()["site/#"]; code != 0x80 {
		t.Fatalf("device subscribe to site/# granted %#x", code)
	}

	if _, err := connect(t, url, "sc-3", "dock3", "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	}
	if _, err := connect(t, url, "sc-4", "nobody", "s3cret"); err == nil {
		t.Fatal("unknown user accepted")
	}
	if _, err := connect(t, url, "anon", "", ""); err == nil {
		t.Fatal("anonymous accepted by default")
	}
}

func TestAnonymousWhenAllowed(t *testing.T) {
	cfg := Config{AllowAnonymous: true, Anonymous: ACL{Publish: []string{"open/+"}}}
	b := startBroker(t, cfg)
	col := collect(t, b)
	c, err := connect(t, "tcp://"+b.Addr(), "anon", "", "")
	if err != nil {
		t.Fatalf("anonymous refused: %v", err)
	}
	c.Publish("open/x", 1, false, "hi").WaitTimeout(5 * time.Second)
	testenv.Eventually(t, 5*time.Second, "anonymous publish", func() bool { return len(col.got("open/x")) == 1 })
}

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, Config{Users: []User{{Username: "u", PasswordHash: h, ACL: ACL{Publish: []string{"#"}}}}})
	if _, err := connect(t, "tcp://"+b.Addr(), "c1", "u", "pw"); err != nil {
		t.Fatalf("hashed password refused: %v", err)
	}
	if _, err := connect(t, "tcp://"+b.Addr(), "c2", "u", "pw2"); err == nil {
		t.Fatal("wrong password accepted")
	}
}

func TestCovers(t *testing.T) {
	for _, tc := range []struct {
		filter, req string
		want        bool
	}{
		{"site/dock3/#", "site/dock3/scan", true},
		{"site/dock3/#", "site/dock3", true},
		{"site/dock3/#", "site/dock4/scan", false},
		{"site/+/scan", "site/3/scan", true},
		{"site/+/scan", "site/+/scan", true},
		{"site/+/scan", "site/#", false},
		{"site/#", "site/+/x/#", true},
		{"#", "$SYS/x", false},
		{"a/b", "a/b/c", false},
	} {
		if got := covers(tc.filter, tc.req); got != tc.want {
			t.Errorf("covers(%q, %q) = %v", tc.filter, tc.req, got)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := User{Username: "u", PasswordFile: "f", ACL: ACL{Publish: []string{"a/#"}}}
	for _, tc := range []struct {
		path string
		cfg  Config
	}{
		{"users", Config{}},
		{"listen", Config{Listen: "1883", Users: []User{ok}}},
		{"tls", Config{TLS: TLSConfig{CertFile: "c"}, Users: []User{ok}}},
		{"tls.client_ca_file", Config{TLS: TLSConfig{ClientCAFile: "ca"}, Users: []User{ok}}},
		{"max_queued", Config{MaxQueued: 70000, Users: []User{ok}}},
		{"users[1].username", Config{Users: []User{ok, ok}}},
		{"users[0]", Config{Users: []User{{Username: "u"}}}},
		{"users[0].password_hash", Config{Users: []User{{Username: "u", PasswordHash: "md5$x"}}}},
		{"users[0].publish[0]", Config{Users: []User{{Username: "u", PasswordFile: "f", ACL: ACL{Publish: []string{"a/#/b"}}}}}},
		{"anonymous.subscribe[0]", Config{AllowAnonymous: true, Anonymous: ACL{Subscribe: []string{"a+"}}}},
	} {
		err := tc.cfg.Validate()
		var ce *units.FieldError
		if !errors.As(err, &ce) || ce.Path != tc.path || ce.Line != 0 {
			t.Errorf("%s: err = %v", tc.path, err)
		}
	}
	if err := (Config{Users: []User{ok}}).Validate(); err != nil {
		t.Fatal(err)
	}
	// Every problem at once, each with its path relative to the section.
	var es units.Errors
	err := (Config{Listen: "1883", MaxInflight: -1, ConnectTimeout: units.Duration(time.Hour), Users: []User{ok}}).Validate()
	want := units.Errors{
		{Path: "listen", Msg: `want host:port, got "1883"`},
		{Path: "max_inflight", Msg: "-1 is outside [1, 65535]"},
		{Path: "connect_timeout", Msg: "1h0m0s is outside [100ms, 5m0s]"},
	}
	if !errors.As(err, &es) || len(es) != len(want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	for i := range want {
		if *es[i] != *want[i] {
			t.Errorf("error %d = %+v, want %+v", i, *es[i], *want[i])
		}
	}
}

func TestCloseIdempotent(t *testing.T) {
	b, err := New(scannerConfig(t), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err == nil {
		t.Fatal("Start after Close succeeded")
	}
	_ = b.Close()

	ctx, cancel := context.WithCancel(context.Background())
	cfg := scannerConfig(t)
	cfg.Listen = "127.0.0.1:0"
	b2, err := New(cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	addr := b2.Addr()
	cancel() // ending the context closes the broker
	// Wait for Close to finish before dialling: a connection accepted while
	// mochi closes races inside mochi (WaitGroup Add during Wait).
	select {
	case <-b2.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("cancelling the context did not close the broker")
	}
	if _, err := connect(t, "tcp://"+addr, "x", "dock3", "s3cret"); err == nil {
		t.Fatal("the listener still accepts connections after the context ended")
	}
	_ = b2.Close()
}

// %u and %c in an ACL filter give each device its own topics; a client ID
// that would change the filter's shape matches nothing.
func TestACLPatterns(t *testing.T) {
	b := startBroker(t, Config{Users: []User{{
		Username: "dev1", PasswordFile: writeFile(t, "p", "pw"),
		ACL: ACL{Publish: []string{"devices/%u/#", "clients/%c/state"}},
	}}})
	col := collect(t, b)
	url := "tcp://" + b.Addr()
	c, err := connect(t, url, "sc-9", "dev1", "pw")
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"devices/dev1/scan", "clients/sc-9/state", "devices/dev2/scan", "clients/sc-8/state"} {
		c.Publish(topic, 0, false, topic).WaitTimeout(5 * time.Second)
	}
	c.Publish("devices/dev1/marker", 1, false, "m").WaitTimeout(5 * time.Second)
	testenv.Eventually(t, 5*time.Second, "marker", func() bool { return len(col.got("devices/dev1/marker")) == 1 })
	for topic, want := range map[string]int{"devices/dev1/scan": 1, "clients/sc-9/state": 1, "devices/dev2/scan": 0, "clients/sc-8/state": 0} {
		if got := len(col.got(topic)); got != want {
			t.Errorf("%s: %d delivered, want %d", topic, got, want)
		}
	}
	for _, tc := range []struct{ filter, user, id, want string }{
		{"a/%u/%c", "u", "c", "a/u/c"},
		{"a/%c/#", "u", "x/#", ""},
		{"a/%c", "u", "+", ""},
		{"a/%u", "", "c", ""},
	} {
		got, ok := expand(tc.filter, tc.user, tc.id)
		if (tc.want == "") == ok || got != tc.want {
			t.Errorf("expand(%q, %q, %q) = %q, %v", tc.filter, tc.user, tc.id, got, ok)
		}
	}
}

// A device cannot take over another user's session by using its client ID
// (kicking it off, or inheriting its queued messages); its owner can.
func TestClientIDBelongsToItsUser(t *testing.T) {
	b := startBroker(t, Config{Users: []User{
		{Username: "dock3", PasswordFile: writeFile(t, "p3", "pw3"), ACL: ACL{Publish: []string{"site/dock3/#"}}},
		{Username: "dock4", PasswordFile: writeFile(t, "p4", "pw4"), ACL: ACL{Publish: []string{"site/dock4/#"}}},
	}})
	url := "tcp://" + b.Addr()
	o := paho.NewClientOptions().AddBroker(url).SetClientID("sc-41").SetUsername("dock3").SetPassword("pw3").
		SetCleanSession(false).SetAutoReconnect(false)
	owner := paho.NewClient(o)
	if tok := owner.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if _, err := connect(t, url, "sc-41", "dock4", "pw4"); err == nil {
		t.Fatal("another user took over the client ID of an online session")
	}
	if !owner.IsConnectionOpen() {
		t.Fatal("the owner was kicked off")
	}
	owner.Disconnect(50) // the persistent session stays, offline
	if _, err := connect(t, url, "sc-41", "dock4", "pw4"); err == nil {
		t.Fatal("another user took over the client ID of an offline persistent session")
	}
	if _, err := connect(t, url, "sc-41", "dock3", "pw3"); err != nil {
		t.Fatalf("the owner cannot resume its session: %v", err)
	}
}
