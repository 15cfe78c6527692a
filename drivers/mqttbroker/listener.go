package mqttbroker

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edgegw/gateway/internal/loglimit"
)

// connListener is the device listener: a mochi listeners.Listener (in
// place of listeners.TCP) that
//
//   - caps the open connections at Config.MaxConnections: one over the cap is
//     closed as soon as it is accepted (not left in the kernel's backlog),
//     counted, and logged at most once per refusedLogEvery (loglimit.Summary);
//   - gives every connection a deadline of Config.ConnectTimeout from accept
//     for its TLS handshake and its CONNECT packet (mochi reads CONNECT with
//     no deadline of its own, and resets the deadline to 1.5 x keepalive
//     itself once it has the CONNECT: Client.refreshDeadline in
//     attachClient, and before every packet in Client.Read);
//   - keeps accepting after a temporary accept error such as EMFILE
//     (listeners.TCP stops for good on any error);
//   - logs how connections end with the listener, remote address and client
//     ID (once the CONNECT named one), rate-limited, instead of mochi's
//     Warn("", "error", err);
//   - closes, on Close, the connections still in their handshake or CONNECT,
//     which mochi does not know about and would otherwise wait for.
type connListener struct {
	id      string
	addr    string
	tls     *tls.Config
	max     int
	timeout time.Duration
	log     *slog.Logger

	ln      net.Listener
	done    chan struct{}
	once    sync.Once
	refused atomic.Int64 // connections closed for the cap, since start

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]*connInfo // key: the conn given to mochi
	// handlers counts the running handle goroutines. Close waits for them:
	// mochi's CloseAll waits on a WaitGroup that each establish adds to, so
	// no establish may start once Close returns.
	handlers sync.WaitGroup

	refusedLog, noConnectLog, tlsLog, errLog, endLog, acceptLog *loglimit.Summary
}

// connInfo is what the listener knows of one open connection.
type connInfo struct {
	raw       net.Conn // the TCP conn (under TLS, if any)
	remote    string
	client    string // client ID from the CONNECT
	connected bool   // a CONNECT was read
}

// How often each kind of connection event is logged at most. Between lines
// the events are held, and the next line gives the latest event's details
// and how many others were held back (loglimit.Key).
const (
	refusedLogEvery = 5 * time.Second
	eventLogEvery   = 5 * time.Second
	errLogEvery     = time.Second
)

func newConnListener(id, addr string, tlsCfg *tls.Config, maxConns int, timeout time.Duration, log *slog.Logger) *connListener {
	l := &connListener{id: id, addr: addr, tls: tlsCfg, max: maxConns, timeout: timeout, done: make(chan struct{}), conns: map[net.Conn]*connInfo{}}
	l.log = log.With("listener", id)
	l.refusedLog = loglimit.NewSummary(l.log, slog.LevelWarn,
		"embedded broker: connections refused: max_connections reached", refusedLogEvery)
	l.noConnectLog = loglimit.NewSummary(l.log, slog.LevelInfo,
		"embedded broker: closed connections that sent no CONNECT within connect_timeout", eventLogEvery)
	l.tlsLog = loglimit.NewSummary(l.log, slog.LevelInfo, "embedded broker: TLS handshake failed", eventLogEvery)
	l.endLog = loglimit.NewSummary(l.log, slog.LevelInfo,
		"embedded broker: client timed out (no packet within 1.5 x keepalive)", eventLogEvery)
	l.errLog = loglimit.NewSummary(l.log, slog.LevelWarn, "embedded broker: connection closed on error", errLogEvery)
	l.acceptLog = loglimit.NewSummary(l.log, slog.LevelError, "embedded broker: accept failed; retrying", eventLogEvery)
	return l
}

// ID implements listeners.Listener.
func (l *connListener) ID() string { return l.id }

// Address is the bound address once Init has run, else the configured one.
func (l *connListener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.addr
}

// Protocol implements listeners.Listener.
func (l *connListener) Protocol() string { return "tcp" }

// Init binds the address. mochi's logger is not used: l logs to the
// broker's own logger.
func (l *connListener) Init(*slog.Logger) error {
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return err
	}
	l.ln = ln
	return nil
}

// Open is the number of open connections (those in TLS handshake or CONNECT
// included).
func (l *connListener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// Refused is the number of connections closed for the cap since start.
func (l *connListener) Refused() int64 { return l.refused.Load() }

// Serve accepts until Close.
func (l *connListener) Serve(establish listeners.EstablishFn) {
	var delay time.Duration
	for {
		raw, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE, ENFILE, ENOBUFS...: wait and try again, like net/http.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.acceptLog.Event("error", err, "retry_in", delay)
			t := time.NewTimer(delay)
			select {
			case <-l.done:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		delay = 0
		if c, ok := l.admit(raw); ok {
			go l.handle(c, establish)
		}
	}
}

// admit registers raw and sets its deadline, or closes it at once when the
// listener is at its cap or closed.
func (l *connListener) admit(raw net.Conn) (net.Conn, bool) {
	remote := raw.RemoteAddr().String()
	l.mu.Lock()
	if l.closed || len(l.conns) >= l.max {
		closed := l.closed
		l.mu.Unlock()
		var n int64
		if !closed {
			n = l.refused.Add(1)
		}
		if tc, ok := raw.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST: no TIME_WAIT left behind per refused socket
		}
		_ = raw.Close()
		if !closed {
			l.refusedLog.Event("max_connections", l.max, "refused_total", n, "remote", remote)
		}
		return nil, false
	}
	c := raw
	if l.tls != nil {
		c = tls.Server(raw, l.tls)
	}
	l.conns[c] = &connInfo{raw: raw, remote: remote}
	l.handlers.Add(1) // under mu: Close sees it or refuses the conn
	l.mu.Unlock()
	// On the TCP conn: it bounds the TLS handshake too. mochi replaces it
	// with its keepalive deadline once it has read the CONNECT.
	_ = raw.SetDeadline(time.Now().Add(l.timeout))
	return c, true
}

// handle runs one connection: TLS handshake, then mochi; it logs how the
// connection ended and unregisters it.
func (l *connListener) handle(c net.Conn, establish listeners.EstablishFn) {
	defer l.handlers.Done()
	defer l.release(c)
	if tc, ok := c.(*tls.Conn); ok {
		if err := tc.HandshakeContext(context.Background()); err != nil {
			info := l.info(c)
			if isDisconnect(err) {
				l.log.Debug("embedded broker: connection closed during TLS handshake", "remote", info.remote, "error", err)
				return
			}
			l.tlsLog.Event("remote", info.remote, "error", err)
			return
		}
	}
	err := establish(l.id, c)
	l.ended(l.info(c), err)
}

// ended logs why a connection ended. Clean ends and vanished peers are
// Debug; the auth hook already logs refused credentials.
func (l *connListener) ended(info connInfo, err error) {
	switch {
	case err == nil:
		return
	case !info.connected && errors.Is(err, os.ErrDeadlineExceeded):
		l.noConnectLog.Event("connect_timeout", l.timeout, "remote", info.remote)
	case isDisconnect(err):
		l.log.Debug("embedded broker: connection closed", "client", info.client, "remote", info.remote, "error", err)
	case errors.Is(err, packets.ErrBadUsernameOrPassword), errors.Is(err, packets.ErrNotAuthorized):
		l.log.Debug("embedded broker: connection refused", "client", info.client, "remote", info.remote, "error", err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		l.endLog.Event("client", info.client, "remote", info.remote)
	default:
		client := info.client
		if !info.connected {
			client = info.remote // no CONNECT yet: the address is all we know
		}
		l.errLog.Event("client", client, "remote", info.remote, "error", err)
	}
}

// isDisconnect: the peer went away or the connection was closed here.
func isDisconnect(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, mochi.ErrConnectionClosed)
}

func (l *connListener) info(c net.Conn) connInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i := l.conns[c]; i != nil {
		return *i
	}
	return connInfo{}
}

// connected records that c sent a CONNECT naming client.
func (l *connListener) connected(c net.Conn, client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i := l.conns[c]; i != nil {
		i.client, i.connected = client, true
	}
}

func (l *connListener) release(c net.Conn) {
	l.mu.Lock()
	i := l.conns[c]
	delete(l.conns, c)
	l.mu.Unlock()
	if i != nil {
		_ = i.raw.Close() // mochi closed c already; this is for the early returns
	}
}

// Close stops accepting, lets mochi disconnect its clients of l, then closes
// the connections still in their handshake or CONNECT.
func (l *connListener) Close(closeClients listeners.CloseFn) {
	l.once.Do(func() {
		close(l.done)
		closeClients(l.id)
		if l.ln != nil {
			_ = l.ln.Close()
		}
		l.mu.Lock()
		l.closed = true
		raws := make([]net.Conn, 0, len(l.conns))
		for _, i := range l.conns {
			raws = append(raws, i.raw)
		}
		l.mu.Unlock()
		for _, r := range raws {
			_ = r.Close()
		}
		l.handlers.Wait() // their connections are closed: they end
		for _, r := range []*loglimit.Summary{l.refusedLog, l.noConnectLog, l.tlsLog, l.errLog, l.endLog, l.acceptLog} {
			r.Stop()
		}
	})
}

// connTracker is the mochi hook that tells the listener which client ID a
// connection's CONNECT named, so that its log lines can say.
type connTracker struct {
	mochi.HookBase
	l *connListener
}

func (h *connTracker) ID() string { return "edgegw-conns-" + h.l.id }

func (h *connTracker) Provides(b byte) bool { return b == mochi.OnConnect }

func (h *connTracker) OnConnect(cl *mochi.Client, _ packets.Packet) error {
	if cl.Net.Listener == h.l.id {
		h.l.connected(cl.Net.Conn, cl.ID)
	}
	return nil
}
