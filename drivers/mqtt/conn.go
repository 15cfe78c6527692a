package mqtt

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"
)

// readBuffer is the read buffer of a broker connection. paho reads each
// packet in three or more small reads (type byte, length bytes one by one,
// body); straight from the socket that is a system call each, the largest
// single cost of ingest after the fsync. Buffered, a read fetches many
// packets at once.
const readBuffer = 32 << 10

// bufferedConn is a net.Conn whose reads go through a bufio.Reader.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// openConn opens the network connection to a broker as paho would (its
// openConnection: the same schemes, TLS config, dialer and proxy
// environment), with reads buffered. wrap, when set, wraps the raw
// connection first (tests cut connections with it).
func openConn(u *url.URL, o paho.ClientOptions, wrap func(net.Conn) net.Conn) (net.Conn, error) {
	dialer := o.Dialer
	if dialer == nil {
		dialer = &net.Dialer{Timeout: o.ConnectTimeout}
	}
	var c net.Conn
	var err error
	secure := false
	switch u.Scheme {
	case "ws", "wss":
		d := *u
		d.User = nil // gorilla/websocket refuses URLs with user info (paho #623)
		var tc *tls.Config
		if u.Scheme == "wss" {
			tc = o.TLSConfig
		}
		c, err = paho.NewWebsocket(d.String(), tc, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
	case "mqtt", "tcp":
		c, err = proxy.FromEnvironmentUsing(dialer).Dial("tcp", u.Host)
	case "unix":
		addr := u.Host
		if addr == "" {
			addr = u.Path
		}
		c, err = dialer.Dial("unix", addr)
	case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps":
		secure = true
		if os.Getenv("all_proxy") == "" {
			c, err = dialer.Dial("tcp", u.Host)
		} else {
			c, err = proxy.FromEnvironment().Dial("tcp", u.Host)
		}
	default:
		return nil, fmt.Errorf("unknown protocol %q", u.Scheme)
	}
	if err != nil {
		return nil, err
	}
	if wrap != nil {
		c = wrap(c)
	}
	if secure {
		if c, err = handshake(c, tlsConfigFor(o.TLSConfig, u.Hostname()), o.ConnectTimeout); err != nil {
			return nil, err
		}
	}
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, readBuffer)}, nil
}

// handshake runs the TLS client handshake on c within timeout (30s when
// unset), closing c when it fails.
func handshake(c net.Conn, cfg *tls.Config, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return tc, nil
}

// tlsConfigFor is cfg with ServerName set to host when cfg leaves it empty,
// as tls.Dial does.
func tlsConfigFor(cfg *tls.Config, host string) *tls.Config {
	if cfg == nil {
		return &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	if cfg.ServerName != "" {
		return cfg
	}
	c := cfg.Clone()
	c.ServerName = host
	return c
}
