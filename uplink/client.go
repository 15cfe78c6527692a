package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	// ErrClosed is returned by Forward, Connect and CheckDedup once Close was
	// called.
	ErrClosed = errors.New("uplink: client closed")
	// ErrSendTimeout ends a producer session whose oldest in-flight message
	// had no receipt within Options.SendTimeout; the forwarder reconnects.
	ErrSendTimeout = errors.New("uplink: no receipt within send_timeout")
	// ErrStaleBrokerSeq ends a session whose first event, sent alone after
	// skipping what the broker said it had, came back as a duplicate: writes
	// of a previous producer were still landing. The next session starts
	// from what the broker then has.
	ErrStaleBrokerSeq = errors.New("uplink: the broker had more than its last sequence ID said")
	// ErrIdentityConflict ends a session whose producer the broker knows up
	// to a sequence ID this gateway's store never assigned: another gateway
	// writes under the same gateway.id, or the store was restored from an
	// older copy. The broker would drop this stream's events as duplicates,
	// so none is sent (or skipped) and they stay buffered; the forwarder
	// retries, and goes on once the IDs are fixed.
	ErrIdentityConflict = errors.New("uplink: the broker has sequence IDs this gateway never assigned")
)

// Client is the gateway's connection to Pulsar: one pulsar-client-go client
// shared by the forwarders of every stream, plus an admin client for the
// deduplication check. New connects nothing; the clients are built on first
// use (or by Connect). Close is idempotent and waits for the forwarders.
type Client struct {
	opts Options
	log  *slog.Logger
	reg  *prometheus.Registry
	bw   *bandwidth // nil = unlimited

	latency atomic.Pointer[func(stream string, seconds float64)]

	// Test hooks, set before use.
	newProducer func(pc pulsar.Client, o pulsar.ProducerOptions) (pulsar.Producer, error)
	backoffMin  time.Duration
	backoffMax  time.Duration
	// ackEvery spaces the backlog acks (one store commit, with its fsync,
	// each): a receipted event is deleted from the buffer at most this long
	// after its receipt. Acking sooner costs a sync per ack, on the disk
	// that a co-located broker also syncs to; acking later only means a
	// crash re-sends a little more, which the broker drops as duplicates.
	ackEvery  time.Duration
	readBatch int

	mu       sync.Mutex
	pc       pulsar.Client
	admin    *admin
	dedupOK  bool
	closed   bool
	streams  map[string]*stateBox // by stream
	done     chan struct{}        // closed by Close: ends the forwarders
	forwards sync.WaitGroup
}

// New returns a client for opts (which it validates). It starts nothing and
// does no I/O. logger may be nil.
func New(opts Options, logger *slog.Logger) (*Client, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		opts:        opts,
		log:         logger,
		reg:         prometheus.NewRegistry(),
		newProducer: func(pc pulsar.Client, o pulsar.ProducerOptions) (pulsar.Producer, error) { return pc.CreateProducer(o) },
		backoffMin:  100 * time.Millisecond,
		backoffMax:  30 * time.Second,
		ackEvery:    50 * time.Millisecond,
		readBatch:   256,
		streams:     make(map[string]*stateBox),
		done:        make(chan struct{}),
	}
	if opts.BandwidthLimit > 0 {
		c.bw = newBandwidth(int64(opts.BandwidthLimit), time.Now)
	}
	return c, nil
}

// Options returns the client's options.
func (c *Client) Options() Options { return c.opts }

// Connect builds the Pulsar and admin clients if they are not built yet. It
// reads the TLS and token files but opens no connection (the library connects
// lazily, and each forwarder reconnects on its own); Forward and CheckDedup
// call it as needed, so calling it first only surfaces setup errors early.
func (c *Client) Connect(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := c.pulsarClient()
	if err != nil {
		return err
	}
	if c.opts.AdminURL != "" {
		_, err = c.adminClient()
	}
	return err
}

func (c *Client) pulsarClient() (pulsar.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.pc != nil {
		return c.pc, nil
	}
	o := c.opts
	co := pulsar.ClientOptions{
		URL:                        o.ServiceURL,
		ConnectionTimeout:          o.ConnectionTimeout.D(),
		OperationTimeout:           o.OperationTimeout.D(),
		TLSTrustCertsFilePath:      o.TLSCAFile,
		TLSAllowInsecureConnection: o.TLSAllowInsecure,
		TLSValidateHostname:        o.TLSValidateHostname && !o.TLSAllowInsecure,
		Logger:                     plog.NewLoggerWithSlog(c.log.With("lib", "pulsar-client-go")),
		MetricsRegisterer:          c.reg,
	}
	switch {
	case o.AuthTokenFile != "":
		co.Authentication = pulsar.NewAuthenticationTokenFromFile(o.AuthTokenFile)
		co.TLSCertificateFile, co.TLSKeyFilePath = o.TLSCertFile, o.TLSKeyFile
	case o.TLSCertFile != "":
		co.Authentication = pulsar.NewAuthenticationTLS(o.TLSCertFile, o.TLSKeyFile)
	}
	pc, err := pulsar.NewClient(co)
	if err != nil {
		return nil, fmt.Errorf("uplink: pulsar client: %w", err)
	}
	c.pc = pc
	return pc, nil
}

func (c *Client) adminClient() (*admin, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.admin != nil {
		return c.admin, nil
	}
	a, err := newAdmin(c.opts)
	if err != nil {
		return nil, fmt.Errorf("uplink: admin client: %w", err)
	}
	c.admin = a
	return a, nil
}

// OnReceiptLatency sets a function called with each receipt's latency (from
// send to receipt), e.g. a histogram's Observe. It runs on the client
// library's goroutines and must not block.
func (c *Client) OnReceiptLatency(f func(stream string, seconds float64)) {
	if f == nil {
		c.latency.Store(nil)
		return
	}
	c.latency.Store(&f)
}

// PulsarMetrics returns the registry holding pulsar-client-go's own metrics
// for this client (kept out of the global registry).
func (c *Client) PulsarMetrics() prometheus.Gatherer { return c.reg }

// Streams returns a snapshot of every forwarder's state, sorted by stream.
func (c *Client) Streams() []StreamState {
	c.mu.Lock()
	boxes := make([]*stateBox, 0, len(c.streams))
	for _, b := range c.streams {
		boxes = append(boxes, b)
	}
	c.mu.Unlock()
	out := make([]StreamState, len(boxes))
	for i, b := range boxes {
		out[i] = b.get()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stream < out[j].Stream })
	return out
}

// Stream returns the state of one stream's forwarder.
func (c *Client) Stream(stream string) (StreamState, bool) {
	c.mu.Lock()
	b, ok := c.streams[stream]
	c.mu.Unlock()
	if !ok {
		return StreamState{}, false
	}
	return b.get(), true
}

// Close stops every forwarder, waits for them (each closes its producer),
// then closes the Pulsar client. It is idempotent.
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.done)
	c.mu.Unlock()

	c.forwards.Wait()
	if c.bw != nil {
		c.bw.stop()
	}
	c.mu.Lock()
	pc := c.pc
	c.mu.Unlock()
	if pc != nil {
		pc.Close()
	}
}
