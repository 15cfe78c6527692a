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
	"github.com/edgegw/gateway/drivers/mqtt/ingest"
	"github.com/edgegw/gateway/internal/backoff"
	"github.com/edgegw/gateway/internal/tlsfiles"
)

// Driver is one MQTT input on a site broker: a persistent-session
// subscriber that turns messages into events and acknowledges them only
// after the sink committed them. New starts nothing; Run runs it.
type Driver struct {
	cfg       Config
	in        *ingest.Ingest // mapping, batching, acks, device counters
	log       *slog.Logger
	opts      clientOptions // without the callbacks, which Run sets
	newClient newClientFunc
	// watchClient makes the connection of the broker drop watch
	// (sysdrops.go); nil: no watch (a test's fake transport).
	watchClient newClientFunc
	now         func() time.Time
	running     atomic.Bool
	ready       atomic.Bool // connected and subscribed
	link        linkCounters
	store       drivers.Store // the source's durable state; nil: none
	watch       brokerWatch
}

var _ drivers.Driver = (*Driver)(nil)

func init() {
	drivers.RegisterConfig("mqtt", NewConfig, func(c *Config, env drivers.Env) (drivers.Driver, error) {
		if c.embedded() {
			return newEmbedded(c, env)
		}
		return New(c, env)
	})
}

// newEmbedded makes the source of a config whose broker is "embedded": the
// mqtt-embedded driver's, given the shared part of c (its connection
// settings do not apply).
func newEmbedded(c *Config, env drivers.Env) (drivers.Driver, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("mqtt: invalid config: %w", err)
	}
	reg, ok := drivers.Lookup(EmbeddedDriver)
	if !ok {
		return nil, fmt.Errorf("mqtt: brokers is %q but this binary has no %s driver (drivers/mqttbroker)", Embedded, EmbeddedDriver)
	}
	ec, ok := reg.NewConfig().(interface{ Ingest() *ingest.Config })
	if !ok {
		return nil, fmt.Errorf("mqtt: the %s driver's config has no ingest.Config", EmbeddedDriver)
	}
	*ec.Ingest() = c.Config
	return reg.New(ec, env)
}

// New validates cfg, reads the password and TLS files, and returns a driver
// ready to Run. env.Gateway gives the default client ID. A config whose
// broker is "embedded" is refused: the mqtt-embedded driver
// (drivers/mqttbroker) runs such a source.
func New(cfg *Config, env drivers.Env) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mqtt: invalid config: %w", err)
	}
	if cfg.embedded() {
		return nil, fmt.Errorf("mqtt: brokers is %q: that source is the %s driver's", Embedded, EmbeddedDriver)
	}
	d := &Driver{cfg: *cfg, log: env.Logger, newClient: newPahoClient, watchClient: newPahoClient, now: time.Now, store: env.Store}
	if d.log == nil {
		d.log = slog.Default().With("component", "mqtt")
	}
	setPahoLogger(d.log)
	in, err := ingest.New(&cfg.Config, ingest.Options{Logger: d.log, BrokerInflight: cfg.BrokerInflight, Now: func() time.Time { return d.now() }})
	if err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	d.in = in
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
	inlet := d.in.NewInlet()
	opts := d.opts
	opts.onMessage = inlet.Deliver
	var cl client
	opts.onConnect = func() {
		d.link.connects.Add(1)
		d.subscribe(ctx, cl)
	}
	opts.onLost = func(err error) {
		d.ready.Store(false)
		d.link.lost.Add(1)
		d.log.Warn("connection lost; reconnecting", "err", err)
	}
	cl = d.newClient(opts)
	if !d.connect(ctx, cl) {
		inlet.Close()
		return nil
	}
	d.watchBrokerDrops(ctx, sink)
	d.in.Work(ctx, inlet, sink)
	d.ready.Store(false)
	inlet.Close()
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
		d.link.connectFails.Add(1)
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
	filters := d.in.Filters()
	sctx, cancel := context.WithTimeout(ctx, d.cfg.ConnectTimeout.D())
	defer cancel()
	refused, err := cl.Subscribe(sctx, filters)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("subscribe failed", "err", err)
		}
		return
	}
	d.link.subscribes.Add(1)
	d.ready.Store(true)
	if len(refused) > 0 {
		d.link.subRefused.Add(uint64(len(refused)))
		d.log.Error("broker refused subscriptions (check its ACL)", "filters", refused)
	}
}
