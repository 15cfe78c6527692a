package mqttbroker

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
)

const deviceListener = "devices"

// Broker is the embedded broker. New starts nothing; Start runs it; Close
// stops it.
type Broker struct {
	cfg     Config
	log     *slog.Logger
	tls     *tls.Config
	hook    *authHook
	inbox   *inbox
	srv     *mochi.Server
	devices *connListener

	mu      sync.Mutex
	started bool
	closed  chan struct{}
	stopped chan struct{} // closed once Close has finished
	once    sync.Once
}

// closeWait bounds how long Close waits for mochi to let go of its clients.
// mochi waits for every client goroutine, and a client caught half-way
// through its CONNECT while the listeners close is never disconnected, so
// the wait could otherwise last until that device goes away.
const closeWait = 5 * time.Second

// New validates cfg (zero fields get their defaults), reads the users'
// password files and the TLS files. It binds nothing.
func New(cfg Config, logger *slog.Logger) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mqttbroker: invalid config: %w", err)
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.Default().With("component", "broker")
	}
	h := &authHook{log: logger, users: map[string]*account{}, allowAnonymous: cfg.AllowAnonymous, anonymous: cfg.Anonymous}
	for i, u := range cfg.Users {
		a := &account{acl: u.ACL}
		if u.PasswordHash != "" {
			a.secret.hash, _ = parseHash(u.PasswordHash) // checked by Validate
		} else {
			b, err := os.ReadFile(u.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("mqttbroker: users[%d].password_file: %w", i, err)
			}
			b = trimSecret(b)
			if len(b) == 0 {
				return nil, fmt.Errorf("mqttbroker: users[%d].password_file: empty", i)
			}
			a.secret.plainSum = sha256.Sum256(b)
		}
		h.users[u.Username] = a
	}
	b := &Broker{cfg: cfg, log: logger, hook: h, closed: make(chan struct{}), stopped: make(chan struct{})}
	b.inbox = newInbox(logger, cfg.MaxInflight, int64(cfg.MaxInflightBytes))
	if cfg.TLS.CertFile != "" {
		var err error
		if b.tls, err = serverTLS(cfg.TLS); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func serverTLS(c TLSConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("mqttbroker: tls: %w", err)
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("mqttbroker: tls.client_ca_file: %w", err)
		}
		t.ClientCAs = x509.NewCertPool()
		if !t.ClientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqttbroker: tls.client_ca_file: no PEM certificate")
		}
		t.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return t, nil
}

// Start binds the device listener and serves until Close is called or ctx
// ends. It may be called once. Attach the gateway's sources before: a
// publish on a topic nothing is attached to is an ordinary broker message.
func (b *Broker) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return errors.New("mqttbroker: Start called twice")
	}
	select {
	case <-b.closed:
		return errors.New("mqttbroker: closed")
	default:
	}
	b.started = true
	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumInflight = uint16(b.cfg.MaxQueued)
	// The outbound queue is per connection and allocated whole at CONNECT
	// (8 bytes a slot): devices mostly publish, so keep it small; messages
	// to a subscriber beyond it wait in its in-flight store (MaxQueued).
	caps.MaximumClientWritesPending = int32(min(b.cfg.MaxQueued, 1024))
	caps.MaximumPacketSize = uint32(b.cfg.MaxPacketSize)
	caps.ReceiveMaximum = uint16(b.cfg.MaxInflight) // MQTT 5 devices are told the inbox's window
	// mochi logs whole packets (a CONNECT's password, a PUBLISH's
	// payload): the filter drops them and keeps the rest (logfilter.go).
	mochiLog := slog.New(newPacketFilter(b.log.Handler())).With("lib", "mochi")
	// InlineClient: the inbox passes committed events on to local
	// subscribers with Server.Publish.
	srv := mochi.New(&mochi.Options{Capabilities: caps, Logger: mochiLog, InlineClient: true})
	b.hook.clients.Store(srv.Clients)
	if err := srv.AddHook(b.hook, nil); err != nil {
		return fmt.Errorf("mqttbroker: %w", err)
	}
	b.inbox.srv.Store(srv)
	if err := srv.AddHook(b.inbox, nil); err != nil {
		return fmt.Errorf("mqttbroker: %w", err)
	}
	if b.cfg.PersistenceFile != "" {
		if err := srv.AddHook(new(bolt.Hook), &bolt.Options{Path: b.cfg.PersistenceFile}); err != nil {
			return fmt.Errorf("mqttbroker: persistence_file: %w", err)
		}
	}
	// The device listener is ours: it caps the connections and gives each
	// a deadline for its TLS handshake and CONNECT (listener.go); the hook
	// tells it the client ID a connection's CONNECT named, for its logs.
	b.devices = newConnListener(deviceListener, b.cfg.Listen, b.tls, b.cfg.MaxConnections, b.cfg.ConnectTimeout.D(), b.log)
	if err := srv.AddHook(&connTracker{l: b.devices}, nil); err != nil {
		return fmt.Errorf("mqttbroker: %w", err)
	}
	if err := srv.AddListener(b.devices); err != nil {
		_ = srv.Close()
		return fmt.Errorf("mqttbroker: listen %s: %w", b.devices.ID(), err)
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return fmt.Errorf("mqttbroker: %w", err)
	}
	b.srv = srv
	go func() {
		select {
		case <-ctx.Done():
			_ = b.Close()
		case <-b.closed:
		}
	}()
	return nil
}

// Addr is the device listener's address (useful with port 0); "" before
// Start.
func (b *Broker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.devices == nil {
		return ""
	}
	return b.devices.Address()
}

// Close disconnects every client and stops the listeners. It is idempotent
// and safe to call whether or not Start ran.
func (b *Broker) Close() error {
	b.once.Do(func() {
		defer close(b.stopped)
		close(b.closed)
		b.inbox.close()
		b.mu.Lock()
		srv := b.srv
		b.mu.Unlock()
		if srv == nil {
			return
		}
		done := make(chan struct{})
		go func() {
			_ = srv.Close()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(closeWait):
			b.log.Warn("embedded broker: clients still attached after closing; not waiting for them", "waited", closeWait)
		}
	})
	<-b.stopped
	return nil
}

// Done is closed once Close has finished.
func (b *Broker) Done() <-chan struct{} { return b.stopped }
