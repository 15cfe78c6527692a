package mqttbroker

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.yaml.in/yaml/v3"

	"github.com/edgegw/gateway/test/testenv"
	"github.com/edgegw/gateway/units"
)

// logBuf is a goroutine-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if testing.Verbose() {
		_, _ = os.Stderr.Write(p)
	}
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the log lines holding every one of subs.
func (l *logBuf) lines(subs ...string) []string {
	var out []string
next:
	for _, line := range strings.Split(l.String(), "\n") {
		for _, s := range subs {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		out = append(out, line)
	}
	return out
}

// startBrokerLog is startBroker with the log (at Debug) captured.
func startBrokerLog(t *testing.T, cfg Config) (*Broker, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	cfg.Listen = "127.0.0.1:0"
	b, err := New(cfg, slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, lb
}

func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// dialOrReset dials; it fails the test on any error but a reset.
func dialOrReset(t *testing.T, addr string) (net.Conn, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		if errors.Is(err, syscall.ECONNRESET) {
			return nil, err
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, nil
}

// closedByServer reads from c until within: true when the server closed
// it (EOF or reset), false when nothing happened by then.
func closedByServer(t *testing.T, c net.Conn, within time.Duration) bool {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	buf := make([]byte, 512)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue // e.g. a CONNACK
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false
		}
		return true
	}
}

func anonConfig() Config { return Config{AllowAnonymous: true} }

func TestIdleSocketsClosedAtConnectTimeout(t *testing.T) {
	cfg := anonConfig()
	cfg.ConnectTimeout = units.Duration(300 * time.Millisecond)
	b, lb := startBrokerLog(t, cfg)

	// A device that connects properly before the idle sockets stays: mochi
	// replaces the connect deadline with its keepalive one.
	dev, err := connect(t, "tcp://"+b.Addr(), "good-dev", "", "")
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	start := time.Now()
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dialRaw(t, b.Addr())
	}
	// One sends half a CONNECT and stalls: the deadline is from accept, not
	// per read.
	if _, err := conns[0].Write([]byte{0x10, 0x20, 0x00}); err != nil {
		t.Fatal(err)
	}
	// (No check that all n are open at once: on a slow machine the first
	// may time out before the last is accepted. A socket the server never
	// accepted would never be closed by it, failing below.)
	for i, c := range conns {
		if !closedByServer(t, c, 5*time.Second) {
			t.Fatalf("idle socket %d still open after 5s with connect_timeout 300ms", i)
		}
	}
	if el := time.Since(start); el < cfg.ConnectTimeout.D() {
		t.Fatalf("idle sockets closed after %v, before connect_timeout", el)
	}
	testenv.Eventually(t, 5*time.Second, "open connections back to 1", func() bool { return b.devices.Open() == 1 })
	if !dev.IsConnectionOpen() {
		t.Fatal("the device that sent CONNECT in time was disconnected")
	}
	dev.Disconnect(50)
	testenv.Eventually(t, 5*time.Second, "open connections back to 0", func() bool { return b.devices.Open() == 0 })
	testenv.Eventually(t, 10*time.Second, "timeouts logged", func() bool {
		return len(lb.lines("sent no CONNECT within connect_timeout", "listener=devices")) > 0
	})
	// Rate-limited: far fewer lines than sockets.
	if got := len(lb.lines("sent no CONNECT within connect_timeout")); got > 3 {
		t.Fatalf("%d log lines for %d timed-out sockets", got, n)
	}
}

func TestConnectionCap(t *testing.T) {
	cfg := anonConfig()
	cfg.MaxConnections = 10
	cfg.ConnectTimeout = units.Duration(time.Minute)
	b, lb := startBrokerLog(t, cfg)

	// A refused socket's reset can beat the dialer's own check of the
	// connect: such a dial fails with ECONNRESET; it counts as closed.
	var conns []net.Conn
	var closed int
	for range 15 {
		c, err := dialOrReset(t, b.Addr())
		if err != nil {
			closed++
			continue
		}
		conns = append(conns, c)
	}
	testenv.Eventually(t, 5*time.Second, "5 refused", func() bool { return b.devices.Refused() == 5 })
	if got := b.devices.Open(); got != 10 {
		t.Fatalf("open connections %d, want 10", got)
	}
	// The refused ones are closed: each read ends (an event, seen by a
	// reader per socket). That the 10 others stay open is the broker's own
	// count, not the absence of a close for a while.
	ended := make(chan net.Conn, len(conns))
	for _, c := range conns {
		go func() {
			buf := make([]byte, 512)
			for {
				if _, err := c.Read(buf); err != nil {
					ended <- c
					return
				}
			}
		}()
	}
	gone := map[net.Conn]bool{}
	testenv.Eventually(t, 5*time.Second, fmt.Sprintf("%d refused sockets closed", 5-closed), func() error {
		for len(gone) < 5-closed {
			select {
			case c := <-ended:
				gone[c] = true
			default:
				return fmt.Errorf("%d closed", len(gone))
			}
		}
		return nil
	})
	var open []net.Conn
	for _, c := range conns {
		if !gone[c] {
			open = append(open, c)
		}
	}
	closed += len(gone)
	if got := b.devices.Open(); closed != 5 || len(open) != 10 || got != 10 {
		t.Fatalf("%d sockets closed and %d open (the broker counts %d open), want 5 and 10", closed, len(open), got)
	}
	if l := lb.lines("max_connections reached", "listener=devices", "max_connections=10"); len(l) == 0 {
		t.Fatalf("no refusal logged:\n%s", lb)
	}

	// Room again once some close: a device gets in.
	for _, c := range open[:3] {
		_ = c.Close()
	}
	testenv.Eventually(t, 5*time.Second, "7 open", func() bool { return b.devices.Open() == 7 })
	dialRaw(t, b.Addr())
	dialRaw(t, b.Addr())
	if _, err := connect(t, "tcp://"+b.Addr(), "after-cap", "", ""); err != nil {
		t.Fatalf("connect with room under the cap: %v", err)
	}
	testenv.Eventually(t, 5*time.Second, "10 open", func() bool { return b.devices.Open() == 10 })
	if got := b.devices.Refused(); got != 5 {
		t.Fatalf("refused %d, want still 5", got)
	}
	if extra, err := dialOrReset(t, b.Addr()); err == nil && !closedByServer(t, extra, 5*time.Second) {
		t.Fatal("connection over the cap not closed")
	}
	testenv.Eventually(t, 5*time.Second, "refused 6", func() bool { return b.devices.Refused() == 6 })
}

// mqttConnect encodes a 3.1.1 CONNECT.
func mqttConnect(t *testing.T, id, user, pass string) []byte {
	t.Helper()
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: 4,
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), ClientIdentifier: id, Clean: true, Keepalive: 30,
			UsernameFlag: user != "", Username: []byte(user), PasswordFlag: pass != "", Password: []byte(pass),
		},
	}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rawSession dials, sends CONNECT and reads the CONNACK.
func rawSession(t *testing.T, addr, id, user, pass string) net.Conn {
	t.Helper()
	c := dialRaw(t, addr)
	if _, err := c.Write(mqttConnect(t, id, user, pass)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil {
		t.Fatalf("CONNACK: %v", err)
	}
	if ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("CONNACK %x", ack)
	}
	return c
}

func TestNoPasswordInLogs(t *testing.T) {
	const pass = "Pw-in-CONNECT-7731"
	cfg := Config{Users: []User{{Username: "dock3", PasswordFile: writeFile(t, "dock3", pass), ACL: ACL{Publish: []string{"site/#"}}}}}
	b, lb := startBrokerLog(t, cfg)

	c := rawSession(t, b.Addr(), "twice-connect", "dock3", pass)
	if _, err := c.Write(mqttConnect(t, "twice-connect", "dock3", pass)); err != nil {
		t.Fatal(err)
	}
	if !closedByServer(t, c, 5*time.Second) {
		t.Fatal("second CONNECT did not end the connection")
	}
	testenv.Eventually(t, 5*time.Second, "connection end logged", func() bool {
		return len(lb.lines("connection closed on error", "client=twice-connect", "listener=devices", "second connect")) == 1
	})
	out := lb.String()
	// mochi's own line is still there, minus the packet.
	if l := lb.lines("error processing packet", "client=twice-connect", "listener=devices", "second connect"); len(l) != 1 {
		t.Fatalf("mochi's error line missing or changed:\n%s", out)
	}
	decimal := strings.Trim(fmt.Sprint([]byte(pass)), "[]") // how %v prints a []byte
	for _, leak := range []string{pass, decimal, "pk=", "Password"} {
		if strings.Contains(out, leak) {
			t.Fatalf("log holds %q:\n%s", leak, out)
		}
	}
}

func TestPacketTooLargeNamesClient(t *testing.T) {
	cfg := anonConfig()
	cfg.MaxPacketSize = 1024
	b, lb := startBrokerLog(t, cfg)

	c := rawSession(t, b.Addr(), "big-sender", "", "")
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: "site/x", Payload: bytes.Repeat([]byte("A"), 4096)}
	var buf bytes.Buffer
	if err := pk.PublishEncode(&buf); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write(buf.Bytes())
	if !closedByServer(t, c, 5*time.Second) {
		t.Fatal("oversized PUBLISH did not end the connection")
	}
	testenv.Eventually(t, 5*time.Second, "packet too large logged", func() bool {
		return len(lb.lines("level=WARN", "packet too large", "client=big-sender", "listener=devices", "remote=127.0.0.1:")) == 1
	})
	if strings.Contains(lb.String(), "AAAAAAAA") {
		t.Fatal("payload in the log")
	}

	// Before CONNECT there is no client ID: the remote address names it.
	c2 := dialRaw(t, b.Addr())
	_, _ = c2.Write([]byte{0x10, 0xff, 0xff, 0x7f}) // a CONNECT of 2 MiB
	if !closedByServer(t, c2, 5*time.Second) {
		t.Fatal("oversized CONNECT did not end the connection")
	}
	want := "client=" + c2.LocalAddr().String()
	testenv.Eventually(t, 5*time.Second, "oversized CONNECT logged", func() bool {
		return len(lb.lines("packet too large", want, "listener=devices")) == 1
	})
}

// selfSigned writes a certificate and key for 127.0.0.1.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	certFile = writeFile(t, "broker.crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, "broker.key", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})))
	return certFile, keyFile, pool
}

func TestTLSHandshakeUnderConnectTimeout(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	cfg := anonConfig()
	cfg.TLS = TLSConfig{CertFile: certFile, KeyFile: keyFile}
	cfg.ConnectTimeout = units.Duration(300 * time.Millisecond)
	b, lb := startBrokerLog(t, cfg)

	// A TLS client that connects properly stays connected.
	o := paho.NewClientOptions().AddBroker("ssl://" + b.Addr()).SetClientID("tls-dev").
		SetTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	dev := paho.NewClient(o)
	if tok := dev.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("TLS device: %v", tok.Error())
	}
	defer dev.Disconnect(50)

	silent := dialRaw(t, b.Addr()) // never starts the handshake
	stalled := dialRaw(t, b.Addr())
	if _, err := stalled.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00}); err != nil { // a ClientHello header, no body
		t.Fatal(err)
	}
	// Handshake done, no CONNECT.
	quiet, err := tls.Dial("tcp", b.Addr(), &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	for name, c := range map[string]net.Conn{"silent": silent, "stalled handshake": stalled, "no CONNECT after handshake": quiet} {
		if !closedByServer(t, c, 5*time.Second) {
			t.Fatalf("%s: still open after 5s with connect_timeout 300ms", name)
		}
	}
	testenv.Eventually(t, 5*time.Second, "only the device left", func() bool { return b.devices.Open() == 1 })
	if !dev.IsConnectionOpen() {
		t.Fatal("TLS device disconnected")
	}
	testenv.Eventually(t, 10*time.Second, "handshake timeouts logged", func() bool {
		return len(lb.lines("TLS handshake failed", "listener=devices")) > 0
	})
}

func TestCloseEndsConnectionsBeforeConnect(t *testing.T) {
	cfg := anonConfig()
	cfg.ConnectTimeout = units.Duration(5 * time.Minute)
	b, _ := startBrokerLog(t, cfg)
	c := dialRaw(t, b.Addr())
	testenv.Eventually(t, 5*time.Second, "accepted", func() bool { return b.devices.Open() == 1 })
	done := make(chan struct{})
	go func() { _ = b.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeWait - time.Second):
		t.Fatal("Close waited for a connection that never sent CONNECT")
	}
	if !closedByServer(t, c, 5*time.Second) {
		t.Fatal("connection still open after Close")
	}
}

func TestConfigConnectionLimits(t *testing.T) {
	var y Config
	if err := yaml.Unmarshal([]byte("connect_timeout: 1500ms\nmax_connections: 300\n"), &y); err != nil {
		t.Fatal(err)
	}
	if y.ConnectTimeout.D() != 1500*time.Millisecond || y.MaxConnections != 300 {
		t.Fatalf("YAML decoded to %v %d", y.ConnectTimeout, y.MaxConnections)
	}
	base := anonConfig()
	d := base.withDefaults()
	if d.ConnectTimeout.D() != DefaultConnectTimeout || d.MaxConnections != DefaultMaxConnections {
		t.Fatalf("defaults: %v %d", d.ConnectTimeout, d.MaxConnections)
	}
	for _, tc := range []struct {
		mod  func(*Config)
		path string
	}{
		{func(c *Config) { c.ConnectTimeout = units.Duration(-time.Second) }, "connect_timeout"},
		{func(c *Config) { c.ConnectTimeout = units.Duration(50 * time.Millisecond) }, "connect_timeout"},
		{func(c *Config) { c.ConnectTimeout = units.Duration(time.Hour) }, "connect_timeout"},
		{func(c *Config) { c.MaxConnections = -1 }, "max_connections"},
		{func(c *Config) { c.MaxConnections = 2 << 20 }, "max_connections"},
		{func(c *Config) { c.ConnectTimeout = units.Duration(100 * time.Millisecond); c.MaxConnections = 1 }, ""},
		{func(c *Config) { c.ConnectTimeout = units.Duration(5 * time.Minute); c.MaxConnections = 1 << 20 }, ""},
	} {
		c := base
		tc.mod(&c)
		err := c.Validate()
		if tc.path == "" {
			if err != nil {
				t.Errorf("%+v: %v", c, err)
			}
			continue
		}
		var ce *units.FieldError
		if !errors.As(err, &ce) || ce.Path != tc.path {
			t.Errorf("connect_timeout %v max_connections %d: got %v, want a ConfigError at %s", c.ConnectTimeout, c.MaxConnections, err, tc.path)
		}
	}
}
