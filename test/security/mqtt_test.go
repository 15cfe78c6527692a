package security

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/drivers/mqtt"
	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/testenv"
	"github.com/edgegw/gateway/units"
)

// sliceSink is a drivers.Sink in memory.
type sliceSink struct {
	mu  sync.Mutex
	evs []*event.Event
}

func (s *sliceSink) Emit(_ context.Context, evs []*event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evs = append(s.evs, evs...)
	return nil
}

func (s *sliceSink) Quarantine(context.Context, string, []byte, string) error { return nil }

func (s *sliceSink) events() []*event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*event.Event(nil), s.evs...)
}

// runDriver runs an MQTT driver until the test ends and returns it with its
// captured log. stop cancels Run and checks that it returned nil.
func runDriver(t *testing.T, cfg *mqtt.Config, sink drivers.Sink) (d *mqtt.Driver, log *logBuffer, stop func()) {
	t.Helper()
	l, lb := captureLogger()
	d, err := mqtt.New(cfg, drivers.Env{Gateway: "gw-sec", Logger: l.With("component", "mqtt")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, sink) }()
	stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v, want nil after cancel", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	t.Cleanup(stop)
	return d, lb, stop
}

// device connects a paho client over TLS with a client certificate (when
// pair is not nil) and a username and password.
func device(t *testing.T, m *Mosquitto, ca *CA, pair *Pair, id, user, pass string) (paho.Client, error) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if pair != nil {
		c, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	o := paho.NewClientOptions().AddBroker(m.URL).SetClientID(id).SetUsername(user).SetPassword(pass).
		SetTLSConfig(tc).SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect timed out")
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, nil
}

const mqttACL = `user gateway
topic read site/#

user dock3
topic write site/dock3/#
`

// secureMosquitto is a Mosquitto that wants TLS, a client certificate from
// ca, a password, and keeps each user to its topics.
func secureMosquitto(t *testing.T, ca *CA) *Mosquitto {
	return StartMosquitto(t, MosquittoOptions{CA: ca, RequireCert: true, ACL: mqttACL,
		Users: map[string]string{"gateway": "gw-pass-Zq81xT", "dock3": "dev-pass-Lm42Kp"}})
}

// gatewayConfig is the driver's config for m: mutual TLS and a password
// from a file.
func gatewayConfig(t *testing.T, m *Mosquitto, ca *CA, password string) *mqtt.Config {
	dir := t.TempDir()
	cfg := mqtt.NewConfig()
	cfg.Brokers = []string{m.URL}
	cfg.ClientID = fmt.Sprintf("gw-sec-%d", time.Now().UnixNano())
	cfg.Username = "gateway"
	cfg.PasswordFile = writeSecret(t, dir, "mqtt.pass", password)
	cfg.TLS.CAFile = ca.WriteCert(t, dir, "ca")
	cfg.TLS.CertFile, cfg.TLS.KeyFile = ca.Client(t, "gateway").Write(t, dir, "gateway")
	cfg.ReconnectMax = units.Duration(time.Second)
	cfg.ConnectTimeout = units.Duration(5 * time.Second)
	cfg.BrokerInflight = 1000
	cfg.Subscriptions = []mqtt.Subscription{{Topic: "site/+dock/scanner/+device", Kind: "scan", Source: "{dock}-{device}"}}
	return cfg
}

// The driver connects over TLS with a client certificate and a password
// read from a file, subscribes, and gets a device's scans; a publish outside
// the device's ACL does not reach it.
func TestMQTTMutualTLSWithPassword(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Mosquitto")
	}
	ca := NewCA(t, "site-ca")
	m := secureMosquitto(t, ca)
	sink := &sliceSink{}
	d, log, stop := runDriver(t, gatewayConfig(t, m, ca, "gw-pass-Zq81xT"), sink)
	testenv.Eventually(t, 20*time.Second, "driver subscribed", func() bool { return d.Stats().Subscribes > 0 })

	devCert := ca.Client(t, "dock3")
	dev, err := device(t, m, ca, &devCert, "sc-41", "dock3", "dev-pass-Lm42Kp")
	if err != nil {
		t.Fatalf("device: %v", err)
	}
	const n = 100
	for i := 1; i <= n; i++ {
		if tok := dev.Publish("site/dock3/scanner/sc-41", 1, false, fmt.Sprintf(`{"barcode":"B%05d"}`, i)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	// Outside its ACL: Mosquitto acknowledges and drops it.
	dev.Publish("site/dock4/scanner/sc-41", 1, false, `{"barcode":"SPOOF"}`).WaitTimeout(10 * time.Second)
	dev.Publish("site/dock3/scanner/sc-41", 1, false, `{"barcode":"LAST"}`).WaitTimeout(10 * time.Second)
	testenv.Eventually(t, 30*time.Second, "all scans", func() bool { return len(sink.events()) >= n+1 })
	stop()
	evs := sink.events()
	for i, e := range evs[:n] {
		if want := fmt.Sprintf("B%05d", i+1); e.Attrs["barcode"] != want || e.Source != "dock3-sc-41" {
			t.Fatalf("event %d: %v from %s, want %s", i, e.Attrs["barcode"], e.Source, want)
		}
	}
	for _, e := range evs {
		if e.Attrs["barcode"] == "SPOOF" {
			t.Fatal("a publish outside the device's ACL reached the gateway")
		}
	}
	if strings.Contains(log.String(), "gw-pass-Zq81xT") {
		t.Fatal("the password is in the driver's log")
	}
}

// Every way to get the connection wrong fails with a message that says
// why, in the driver's log (Run retries and never returns an error), and
// the driver keeps retrying until it is stopped.
func TestMQTTRefusedConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Mosquitto")
	}
	ca := NewCA(t, "site-ca")
	m := secureMosquitto(t, ca)
	other := NewCA(t, "other-ca")
	for _, tc := range []struct {
		name string
		mod  func(t *testing.T, c *mqtt.Config)
		want []string // all in the log
	}{
		{"wrong CA", func(t *testing.T, c *mqtt.Config) { c.TLS.CAFile = other.WriteCert(t, t.TempDir(), "other") },
			[]string{"x509: certificate signed by unknown authority", "check tls.ca_file"}},
		{"wrong password", func(t *testing.T, c *mqtt.Config) {
			c.PasswordFile = writeSecret(t, t.TempDir(), "p", "not-the-password")
		},
			[]string{"not Authorized", "check username and password_file"}},
		{"unknown user", func(t *testing.T, c *mqtt.Config) { c.Username = "nobody" },
			[]string{"not Authorized", "check username and password_file"}},
		{"no client certificate", func(t *testing.T, c *mqtt.Config) { c.TLS.CertFile, c.TLS.KeyFile = "", "" },
			[]string{"connect failed", "client certificate"}},
		{"client certificate from another CA", func(t *testing.T, c *mqtt.Config) {
			c.TLS.CertFile, c.TLS.KeyFile = other.Client(t, "gateway").Write(t, t.TempDir(), "rogue")
		}, []string{"connect failed", "client certificate"}},
		{"plaintext to the TLS port", func(t *testing.T, c *mqtt.Config) {
			c.Brokers = []string{strings.Replace(m.URL, "ssl://", "tcp://", 1)}
		}, []string{"connect failed", "an ssl:// broker URL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := gatewayConfig(t, m, ca, "gw-pass-Zq81xT")
			tc.mod(t, cfg)
			d, log, stop := runDriver(t, cfg, &sliceSink{})
			testenv.Eventually(t, 30*time.Second, "two failed attempts", func() bool { return d.Stats().ConnectFails >= 2 })
			stop()
			st, text := d.Stats(), log.String()
			if st.Connects != 0 {
				t.Fatalf("connected: %+v", st)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("the log does not say %q:\n%s", w, text)
				}
			}
			if strings.Contains(text, "gw-pass-Zq81xT") || strings.Contains(text, "not-the-password") {
				t.Error("a password is in the log")
			}
			t.Logf("%s: %s", tc.name, firstLine(text, "connect failed"))
		})
	}
}

func firstLine(text, sub string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
