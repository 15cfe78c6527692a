package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/internal/backoff"
	"github.com/edgegw/gateway/internal/tlsfiles"
)

// Driver is one MQTT input: a persistent-session subscriber that turns
// messages into events and acknowledges them only after the sink committed
// them. New starts nothing; Run runs it.
type Driver struct {
	cfg       Config
	subs      []*sub
	log       *slog.Logger
	opts      clientOptions // without the callbacks, which Run sets
	newClient newClientFunc
	now       func() time.Time
	running   atomic.Bool
	ready     atomic.Bool // connected and subscribed
	stats     counters
	store     drivers.Store // the source's durable state; nil: none
	up        upstream      // loss upstream of the gateway (counter.go, sysdrops.go)
}

var _ drivers.Driver = (*Driver)(nil)

func init() {
	drivers.Register("mqtt", drivers.Registration{
		NewConfig: func() any { return NewConfig() },
		New: func(cfg any, env drivers.Env) (drivers.Driver, error) {
			c, ok := cfg.(*Config)
			if !ok {
				return nil, fmt.Errorf("mqtt: config is %T, want *mqtt.Config", cfg)
			}
			return New(c, env)
		},
	})
}

// New validates cfg, reads the password and TLS files, and returns a driver
// ready to Run. env.Gateway gives the default client ID.
func New(cfg *Config, env drivers.Env) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mqtt: invalid config: %w", err)
	}
	d := &Driver{cfg: *cfg, log: env.Logger, newClient: newPahoClient, now: time.Now, store: env.Store}
	embedded := len(cfg.Brokers) == 1 && cfg.Brokers[0] == Embedded
	if embedded {
		d.cfg.BrokerInflight = 0 // the window is the embedded broker's max_inflight
	}
	if d.cfg.AckBatch == 0 {
		d.cfg.AckBatch = autoAckBatch(d.cfg.BrokerInflight, d.cfg.MaxPending)
	}
	if d.log == nil {
		d.log = slog.Default().With("component", "mqtt")
	}
	setPahoLogger(d.log)
	for i, s := range cfg.Subscriptions {
		c, err := compileSub(s)
		if err != nil {
			return nil, fmt.Errorf("mqtt: subscriptions[%d]: %w", i, err)
		}
		c.maxPayload = int(cfg.MaxPayload)
		if s.MaxPayload > 0 {
			c.maxPayload = int(s.MaxPayload)
		}
		rl := cfg.RateLimit
		if s.RateLimit != nil {
			rl = *s.RateLimit
		}
		c.limit = newLimiter(rl)
		d.subs = append(d.subs, c)
	}
	if embedded {
		if env.Inbox == nil {
			return nil, errNoInbox
		}
		d.newClient = newInboxClient(env.Inbox)
		d.opts = clientOptions{brokers: []string{Embedded}, clientID: Embedded, connectTimeout: cfg.ConnectTimeout.D(), reconnectMax: cfg.ReconnectMax.D()}
		return d, nil
	}
	id := cfg.ClientID
	if id == "" {
		if env.Gateway == "" {
			return nil, errors.New("mqtt: client_id is empty and there is no gateway ID to derive it from")
		}
		id = "edgegw-" + env.Gateway
	}
	password := cfg.Password
	if password == "" && cfg.PasswordFile != "" {
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: password_file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
		if password == "" {
			return nil, fmt.Errorf("mqtt: password_file %s is empty", cfg.PasswordFile)
		}
		if fi, err := os.Stat(cfg.PasswordFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			d.log.Warn("password_file is readable by other users: chmod 600 it", "path", cfg.PasswordFile, "mode", fi.Mode().Perm().String())
		}
	}
	tlsConf, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	d.opts = clientOptions{
		brokers: slices.Clone(cfg.Brokers), clientID: id, username: cfg.Username, password: password,
		tls: tlsConf, keepAlive: cfg.KeepAlive.D(), connectTimeout: cfg.ConnectTimeout.D(), reconnectMax: cfg.ReconnectMax.D(),
	}
	return d, nil
}

// ClientID is the MQTT client ID the driver's session uses.
func (d *Driver) ClientID() string { return d.opts.clientID }

// tlsConfig builds the TLS settings when a broker needs them.
func (c *Config) tlsConfig() (*tls.Config, error) {
	secure := false
	for _, b := range c.Brokers {
		if u, err := url.Parse(b); err == nil && slices.Contains([]string{"ssl", "tls", "mqtts", "wss"}, u.Scheme) {
			secure = true
		}
	}
	if !secure {
		return nil, nil
	}
	t, err := tlsfiles.Client{CAFile: c.TLS.CAFile, CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile,
		ServerName: c.TLS.ServerName, Insecure: c.TLS.InsecureSkipVerify}.Config()
	if err != nil {
		return nil, fmt.Errorf("mqtt: tls.%w", err)
	}
	return t, nil
}

// item is a received message waiting for the batcher.
type item struct {
	msg  message
	recv time.Time
	// refused: told its device it was not taken (the sink was full); not
	// acked.
	refused bool
}

// autoAckBatch is the batch size when ack_batch is not set: half the
// broker's in-flight window (the broker can send the next half while one
// is committed), at least 256 and at most maxPending.
func autoAckBatch(brokerInflight, maxPending int) int {
	return min(max(256, brokerInflight/2), maxPending)
}

// Run connects (retrying with backoff), subscribes, and turns messages into
// events until ctx ends; then it disconnects and returns nil. Messages not
// yet committed are not acknowledged, so the broker redelivers them to the
// next session. Run may be called again after it returned (the same
// client ID resumes the session), but not concurrently.
func (d *Driver) Run(ctx context.Context, sink drivers.Sink) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("mqtt: Run is already running")
	}
	defer d.running.Store(false)
	queue := make(chan item, d.cfg.MaxPending)
	done := make(chan struct{}) // closed when the batcher has stopped
	opts := d.opts
	opts.onMessage = func(m message) {
		d.stats.received.Add(1)
		d.stats.pending.Add(1)
		if m.dup {
			d.stats.redelivered.Add(1)
		}
		select {
		case queue <- item{msg: m, recv: d.now()}:
		case <-done: // shutting down: not acked, the broker keeps it
			d.stats.pending.Add(-1)
		}
	}
	var cl client
	opts.onConnect = func() {
		d.stats.connects.Add(1)
		d.subscribe(ctx, cl)
	}
	opts.onLost = func(err error) {
		d.ready.Store(false)
		d.stats.lost.Add(1)
		d.log.Warn("connection lost; reconnecting", "err", err)
	}
	cl = d.newClient(opts)
	if !d.connect(ctx, cl) {
		return nil
	}
	d.watchBrokerDrops(ctx, sink)
	d.work(ctx, queue, sink)
	d.ready.Store(false)
	close(done)
	cl.Disconnect(250 * time.Millisecond)
	return nil
}

// connect makes the first connection, retrying with backoff up to
// ReconnectMax; later reconnections are the client's. It reports false when
// ctx ended first.
func (d *Driver) connect(ctx context.Context, cl client) bool {
	b := backoff.Backoff{Min: time.Second, Max: d.cfg.ReconnectMax.D()}
	for {
		err := cl.Connect(ctx)
		if err == nil {
			d.log.Info("connected", "client_id", d.opts.clientID, "brokers", d.opts.brokers)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		d.stats.connectErrors.Add(1)
		wait := b.Next()
		if h := connectHint(err, d.opts.tls != nil); h != "" {
			d.log.Error("connect failed; retrying", "err", err, "hint", h, "retry_in", wait)
		} else {
			d.log.Error("connect failed; retrying", "err", err, "retry_in", wait)
		}
		if !backoff.Sleep(ctx, wait) {
			return false
		}
	}
}

// Ready reports whether the driver is connected and its subscriptions are
// in place at the broker: only then does a message published to a new
// session reach it.
func (d *Driver) Ready() bool { return d.ready.Load() }

// subscribe (re)subscribes every filter. With a persistent session the
// broker already has them; doing it again is harmless and covers a broker
// that lost its state.
func (d *Driver) subscribe(ctx context.Context, cl client) {
	filters := make(map[string]byte, len(d.subs))
	for _, s := range d.subs {
		filters[s.pat.filter] = s.qos
	}
	sctx, cancel := context.WithTimeout(ctx, d.cfg.ConnectTimeout.D())
	defer cancel()
	refused, err := cl.Subscribe(sctx, filters)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("subscribe failed", "err", err)
		}
		return
	}
	d.stats.subs.Add(1)
	d.ready.Store(true)
	if len(refused) > 0 {
		d.stats.subRefused.Add(uint64(len(refused)))
		d.log.Error("broker refused subscriptions (check its ACL)", "filters", refused)
	}
}
