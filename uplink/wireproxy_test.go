package uplink

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// wireProxy sits between a Pulsar client and the broker, counts the bytes
// in each direction and can cut every connection. Pulsar's lookup answers
// with the broker's advertised address, which would send the client past the
// proxy, so the proxy rewrites the broker's port in the broker's command
// frames (lookup responses) to its own. Both ports have five digits, so the
// frame sizes do not change (commands carry no checksum).
type wireProxy struct {
	l          net.Listener
	target     string
	from, to   []byte // ":<broker port>" -> ":<proxy port>"
	up, down   atomic.Int64
	rewritten  atomic.Int64
	mu         sync.Mutex
	conns      []net.Conn
	wg         sync.WaitGroup
	serviceURL string
}

func newWireProxy(t testing.TB, brokerServiceURL string) *wireProxy {
	t.Helper()
	target := strings.TrimPrefix(brokerServiceURL, "pulsar://")
	_, bport, err := net.SplitHostPort(target)
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener
	var pport string
	for range 20 {
		l, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, pport, _ = net.SplitHostPort(l.Addr().String())
		if len(pport) == len(bport) {
			break
		}
		_ = l.Close()
		l = nil
	}
	if l == nil {
		t.Skipf("no free port with as many digits as the broker's %s", bport)
	}
	p := &wireProxy{l: l, target: target, from: []byte(":" + bport), to: []byte(":" + pport),
		serviceURL: "pulsar://" + l.Addr().String()}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = l.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *wireProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			_, _ = io.Copy(countingWriter{out, &p.up}, in)
			_ = out.Close()
		}()
		go func() {
			defer p.wg.Done()
			p.relayDown(in, out)
			_ = in.Close()
		}()
	}
}

// relayDown copies broker -> client frame by frame, rewriting the broker's
// port in command-only frames.
func (p *wireProxy) relayDown(client, broker net.Conn) {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(broker, hdr[:4]); err != nil {
			return
		}
		total := binary.BigEndian.Uint32(hdr[:4])
		frame := make([]byte, 4+total)
		copy(frame, hdr[:4])
		if _, err := io.ReadFull(broker, frame[4:]); err != nil {
			return
		}
		if total >= 4 && binary.BigEndian.Uint32(frame[4:8])+4 == total && bytes.Contains(frame, p.from) {
			frame = bytes.ReplaceAll(frame, p.from, p.to)
			p.rewritten.Add(1)
		}
		n, err := client.Write(frame)
		p.down.Add(int64(n))
		if err != nil {
			return
		}
	}
}

// cut closes every connection through the proxy (the client reconnects).
func (p *wireProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// kill stops the proxy for good: it accepts nothing more and closes every
// connection (a dead process's connections, which never come back).
func (p *wireProxy) kill() {
	_ = p.l.Close()
	p.cut()
}

// upBytes counts client -> broker bytes so far.
func (p *wireProxy) upBytes() int64 { return p.up.Load() }

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}
