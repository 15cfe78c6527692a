package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/testenv"
)

// fakeBroker is the least of an MQTT 3.1.1 broker: it accepts CONNECT,
// answers PINGREQ, counts PUBLISH packets and acknowledges QoS 1 ones only
// when ack is set. stop makes it go away (listener and connections closed).
type fakeBroker struct {
	ln        net.Listener
	ack       bool
	published atomic.Int64
	mu        sync.Mutex
	conns     []net.Conn
}

func newFakeBroker(t *testing.T, ack bool) *fakeBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBroker{ln: ln, ack: ack}
	t.Cleanup(b.stop)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			go b.serve(c)
		}
	}()
	return b
}

func (b *fakeBroker) url() string { return "tcp://" + b.ln.Addr().String() }

func (b *fakeBroker) stop() {
	_ = b.ln.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		_ = c.Close()
	}
}

func (b *fakeBroker) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		h, err := r.ReadByte()
		if err != nil {
			return
		}
		n, mul := 0, 1
		for {
			d, err := r.ReadByte()
			if err != nil {
				return
			}
			n += int(d&0x7f) * mul
			if d&0x80 == 0 {
				break
			}
			mul *= 128
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		var reply []byte
		switch h >> 4 {
		case 1: // CONNECT
			reply = []byte{0x20, 2, 0, 0}
		case 3: // PUBLISH
			b.published.Add(1)
			if qos := (h >> 1) & 3; qos == 1 && b.ack && len(body) >= 2 {
				tl := int(body[0])<<8 | int(body[1])
				if len(body) >= 4+tl {
					reply = []byte{0x40, 2, body[2+tl], body[3+tl]}
				}
			}
		case 12: // PINGREQ
			reply = []byte{0xd0, 0}
		case 14: // DISCONNECT
			return
		}
		if reply != nil {
			if _, err := c.Write(reply); err != nil {
				return
			}
		}
	}
}

// runAsync runs the command in a goroutine; the channel gets its exit code.
func runAsync(ctx context.Context, args []string, stdout, stderr io.Writer) <-chan int {
	rc := make(chan int, 1)
	go func() { rc <- run(ctx, args, stdout, stderr) }()
	return rc
}

// With its broker gone, simulate stops within -drain-timeout of the stop
// signal, says how many messages were not acknowledged, and exits 1.
func TestStopWithBrokerGoneIsBounded(t *testing.T) {
	b := newFakeBroker(t, false) // never acknowledges: acks stay outstanding
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb bytes.Buffer
	const drain = 500 * time.Millisecond
	rc := runAsync(ctx, []string{"-broker", b.url(), "-rate", "200", "-qos", "1", "-quiet", "-drain-timeout", drain.String()}, &out, &errb)
	testenv.Eventually(t, 20*time.Second, "10 messages at the broker", func() error {
		if n := b.published.Load(); n < 10 {
			return fmt.Errorf("the broker got %d", n)
		}
		return nil
	})
	b.stop() // the broker is gone; paho reconnects in vain
	// Scenario, not synchronisation: acks are outstanding from the first
	// message on (this broker never sends one); the pause lets publishing go
	// on into paho's store, as it does in the field before someone stops it.
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	cancel() // SIGTERM
	select {
	case code := <-rc:
		took := time.Since(start)
		if code != 1 {
			t.Errorf("rc %d, want 1", code)
		}
		if took > drain+2*time.Second {
			t.Errorf("stopped %s after the signal, want about %s", took, drain)
		}
		if !strings.Contains(errb.String(), "not acknowledged within 500ms") {
			t.Errorf("stderr %q", errb.String())
		}
		if !strings.Contains(out.String(), "simulate: published ") {
			t.Errorf("no summary: %q", out.String())
		}
		t.Logf("stopped in %s: %s%s", took.Round(time.Millisecond), out.String(), errb.String())
	case <-time.After(drain + 10*time.Second):
		t.Fatal("simulate did not stop after the signal")
	}
}

// With a broker that acknowledges, a -count run waits for every
// acknowledgement and exits 0 without a signal; so does a -duration run.
func TestRunsToTheEnd(t *testing.T) {
	b := newFakeBroker(t, true)
	for _, args := range [][]string{{"-count", "50", "-rate", "0"}, {"-duration", "300ms", "-rate", "100"}} {
		var out, errb bytes.Buffer
		rc := runAsync(context.Background(), append([]string{"-broker", b.url(), "-qos", "1", "-quiet"}, args...), &out, &errb)
		select {
		case code := <-rc:
			if code != 0 || !strings.Contains(out.String(), "(0 failed)") || errb.Len() != 0 {
				t.Errorf("%q: rc %d, out %q, stderr %q", args, code, out.String(), errb.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%q did not end", args)
		}
	}
	if b.published.Load() < 50 {
		t.Errorf("the broker got %d messages", b.published.Load())
	}
}

// A stop signal during the first connection ends the wait for it.
func TestStopWhileConnecting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: paho retries the connection
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	var out, errb bytes.Buffer
	if rc := run(ctx, []string{"-broker", "tcp://" + addr, "-quiet"}, &out, &errb); rc != 1 || time.Since(start) > 5*time.Second {
		t.Errorf("rc %d after %s, stderr %q", rc, time.Since(start), errb.String())
	}
}

func TestUnexpectedArgument(t *testing.T) {
	var out, errb bytes.Buffer
	if rc := run(context.Background(), []string{"-quiet", "extra"}, &out, &errb); rc != 2 || !strings.Contains(errb.String(), `"extra"`) {
		t.Errorf("rc %d, stderr %q", rc, errb.String())
	}
}

// Scans carry their dock's route, and a -missort fraction of them another
// dock's.
func TestMissortRoutes(t *testing.T) {
	d := &device{kind: "scanner", dock: 3, docks: 4, missort: 0.25, rng: rand.New(rand.NewPCG(1, 2))}
	wrong := 0
	for range 4000 {
		switch r := d.route(); r {
		case "R3":
		case "R1", "R2", "R4":
			wrong++
		default:
			t.Fatalf("route %q", r)
		}
	}
	if wrong < 800 || wrong > 1200 {
		t.Fatalf("%d of 4000 mis-sorted, want about 1000", wrong)
	}
	d.missort = 0
	if r := d.route(); r != "R3" {
		t.Fatalf("route %q without -missort", r)
	}
}
