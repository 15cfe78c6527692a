package mqtt

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgegw/gateway/drivers/mqtt/ingest"
)

// clientOptions is what the driver asks of an MQTT client.
type clientOptions struct {
	brokers        []string
	clientID       string
	username       string
	password       string
	tls            *tls.Config
	keepAlive      time.Duration
	connectTimeout time.Duration
	reconnectMax   time.Duration
	// onMessage is called for every PUBLISH, in the order received, on one
	// goroutine; it may block (the client then stops reading).
	onMessage func(ingest.Message)
	onConnect func() // after every (re)connection, on its own goroutine
	onLost    func(error)
	// wrapConn, when set, wraps every network connection (tests use it to
	// cut a connection).
	wrapConn func(net.Conn) net.Conn
}

// client is the small part of an MQTT client the driver uses; tests swap
// in a fake through Driver.newClient.
type client interface {
	// Connect makes one connection attempt, waiting at most until ctx ends.
	// Once connected, the client reconnects by itself.
	Connect(ctx context.Context) error
	// Subscribe subscribes to filter→QoS and returns the filters the broker
	// refused.
	Subscribe(ctx context.Context, filters map[string]byte) (refused []string, err error)
	// Disconnect ends the session's connection, waiting up to quiesce for
	// outgoing work (acks) to be written.
	Disconnect(quiesce time.Duration)
}

type newClientFunc func(clientOptions) client

type pahoClient struct{ c paho.Client }

func newPahoClient(o clientOptions) client {
	opts := paho.NewClientOptions()
	for _, b := range o.brokers {
		opts.AddBroker(b)
	}
	opts.SetClientID(o.clientID).
		SetUsername(o.username).
		SetPassword(o.password).
		SetCleanSession(false).   // persistent session: the broker keeps what we have not acked
		SetAutoAckDisabled(true). // we ack after the durable commit
		SetOrderMatters(true).    // handler called in arrival order on the router goroutine
		SetResumeSubs(false).     // the broker's session holds the subscriptions
		SetProtocolVersion(4).    // MQTT 3.1.1
		SetKeepAlive(o.keepAlive).
		SetPingTimeout(o.keepAlive / 2).
		SetConnectTimeout(o.connectTimeout).
		SetWriteTimeout(o.connectTimeout).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(o.reconnectMax).
		SetConnectRetry(false). // the driver retries the first connection with its own backoff
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			o.onMessage(ingest.Message{Topic: m.Topic(), Payload: m.Payload(), QoS: m.Qos(), Dup: m.Duplicate(), Ack: m.Ack})
		}).
		SetOnConnectHandler(func(paho.Client) { o.onConnect() }).
		SetConnectionLostHandler(func(_ paho.Client, err error) { o.onLost(err) })
	if o.tls != nil {
		opts.SetTLSConfig(o.tls)
	}
	opts.SetDialer(&net.Dialer{Timeout: o.connectTimeout})
	opts.SetCustomOpenConnectionFn(func(u *url.URL, co paho.ClientOptions) (net.Conn, error) {
		return openConn(u, co, o.wrapConn)
	})
	return &pahoClient{c: paho.NewClient(opts)}
}

func wait(ctx context.Context, t paho.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pahoClient) Connect(ctx context.Context) error {
	err := wait(ctx, p.c.Connect())
	if err != nil && ctx.Err() != nil {
		p.c.Disconnect(0) // abandon the attempt in progress
	}
	return err
}

func (p *pahoClient) Subscribe(ctx context.Context, filters map[string]byte) ([]string, error) {
	t := p.c.SubscribeMultiple(filters, nil) // nil: all messages go to the default handler
	if err := wait(ctx, t); err != nil {
		return nil, err
	}
	var refused []string
	if st, ok := t.(*paho.SubscribeToken); ok {
		for f, code := range st.Result() {
			if code == 0x80 {
				refused = append(refused, f)
			}
		}
	}
	return refused, nil
}

func (p *pahoClient) Disconnect(quiesce time.Duration) {
	p.c.Disconnect(uint(quiesce / time.Millisecond))
}

// pahoLogOnce sends paho's package-level loggers to slog. Paho has one set
// for the whole process, so the first driver's logger wins.
var pahoLogOnce sync.Once

func setPahoLogger(l *slog.Logger) {
	pahoLogOnce.Do(func() {
		l = l.With("lib", "paho")
		paho.CRITICAL = pahoLog{l, slog.LevelError}
		paho.ERROR = pahoLog{l, slog.LevelWarn} // paho logs every lost connection as an error
		paho.WARN = pahoLog{l, slog.LevelDebug} // routine store housekeeping, mostly
	})
}

type pahoLog struct {
	l     *slog.Logger
	level slog.Level
}

func (p pahoLog) Println(v ...any) {
	p.l.Log(context.Background(), p.level, strings.TrimSpace(fmt.Sprintln(v...)))
}

func (p pahoLog) Printf(format string, v ...any) {
	p.l.Log(context.Background(), p.level, strings.TrimSpace(fmt.Sprintf(format, v...)))
}
