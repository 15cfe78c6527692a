// Command simulate generates realistic gateway traffic over MQTT: scanners
// publishing GS1-128 (SSCC) scans at dock doors and sensors publishing
// temperature readings, at a given total rate, for a count or a duration.
//
//	simulate -broker tcp://127.0.0.1:1883 -scanners 4 -sensors 2 -rate 50 -count 1000
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	rc := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(rc)
}

// run is the command: it publishes until -count or -duration is reached or
// ctx ends (SIGINT, SIGTERM). After a normal end it waits for every
// acknowledgement; once ctx has ended it waits at most -drain-timeout for
// the outstanding ones (a broker that is gone never sends them) and exits
// 1 if some are missing.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	broker := fs.String("broker", "tcp://127.0.0.1:1883", "MQTT broker URL")
	user := fs.String("username", "", "MQTT username")
	passFile := fs.String("password-file", "", "file holding the MQTT password")
	insecure := fs.Bool("tls-insecure", false, "skip TLS certificate verification (test brokers only)")
	site := fs.String("site", "wh1", "site name used in topics")
	scanners := fs.Int("scanners", 4, "number of scanners (one per dock)")
	sensors := fs.Int("sensors", 2, "number of temperature sensors")
	rate := fs.Float64("rate", 20, "total messages per second across all devices (0 = as fast as possible)")
	count := fs.Int("count", 0, "stop after this many messages in total (0 = no limit)")
	duration := fs.Duration("duration", 0, "stop after this long (0 = no limit)")
	qos := fs.Int("qos", 1, "MQTT QoS (0, 1 or 2)")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "random seed")
	quiet := fs.Bool("quiet", false, "print only the final summary")
	missort := fs.Float64("missort", 0, "fraction of scans (0..1) whose route (R1 for dock1, ...) belongs to another dock: a mis-sort the rules catch")
	drain := fs.Duration("drain-timeout", 2*time.Second, "on SIGINT/SIGTERM, how long to wait for outstanding acknowledgements before exiting")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "simulate: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *scanners+*sensors == 0 || *qos < 0 || *qos > 2 || *missort < 0 || *missort > 1 {
		fmt.Fprintln(stderr, "simulate: need at least one device, qos 0..2 and missort 0..1")
		return 2
	}
	var devs []*device
	for i := 0; i < *scanners; i++ {
		devs = append(devs, &device{kind: "scanner", site: *site, dock: i + 1, id: fmt.Sprintf("scn-%02d", i+1), rng: rand.New(rand.NewPCG(*seed, uint64(i))), missort: *missort, docks: *scanners})
	}
	for i := 0; i < *sensors; i++ {
		devs = append(devs, &device{kind: "sensor", site: *site, id: fmt.Sprintf("temp-%02d", i+1), rng: rand.New(rand.NewPCG(*seed, uint64(1000+i))), phase: float64(i)})
	}

	opts := mqtt.NewClientOptions().AddBroker(*broker).
		SetClientID(fmt.Sprintf("simulate-%d", os.Getpid())).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true).
		SetMaxReconnectInterval(5 * time.Second)
	if *user != "" {
		opts.SetUsername(*user)
	}
	if *passFile != "" {
		b, err := os.ReadFile(*passFile)
		if err != nil {
			fmt.Fprintf(stderr, "simulate: %v\n", err)
			return 2
		}
		opts.SetPassword(strings.TrimSpace(string(b)))
	}
	if *insecure {
		opts.SetTLSConfig(&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // explicit test flag
	}
	c := mqtt.NewClient(opts)
	if err := connect(ctx, c, 30*time.Second); err != nil {
		fmt.Fprintf(stderr, "simulate: connect %s: %v\n", *broker, err)
		return 1
	}
	defer c.Disconnect(250)

	// The publish loop may still report while the summary is printed, when
	// it is abandoned in a publish that paho holds.
	stdout = &syncWriter{w: stdout}
	gen := ctx // publishing ends with gen; waiting for acks is bounded once ctx ends
	if *duration > 0 {
		var c2 context.CancelFunc
		gen, c2 = context.WithTimeout(ctx, *duration)
		defer c2()
	}
	var interval time.Duration
	if *rate > 0 {
		interval = time.Duration(float64(time.Second) / *rate)
	}
	st := publish(gen, c, devs, byte(*qos), *count, interval, progress(stdout, *quiet))
	missing := st.wait(ctx, *drain)
	el := time.Since(st.start)
	sent, failed := st.sent.Load(), st.failed.Load()
	fmt.Fprintf(stdout, "simulate: published %d messages (%d failed) in %s, %.0f msg/s, %d devices\n",
		sent, failed, el.Round(time.Millisecond), float64(sent)/el.Seconds(), len(devs))
	if missing > 0 {
		fmt.Fprintf(stderr, "simulate: %d messages not acknowledged within %s of the stop signal (is the broker gone?); exiting\n", missing, *drain)
		return 1
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// connect waits for the first connection, at most timeout, and not after
// ctx ends.
func connect(ctx context.Context, c mqtt.Client, timeout time.Duration) error {
	t := c.Connect()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-t.Done():
		return t.Error()
	case <-timer.C:
		return fmt.Errorf("no connection within %s", timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// progress returns the function that prints the running count every 5
// seconds, or nil when quiet.
func progress(w io.Writer, quiet bool) func(sent int64, since time.Duration) {
	if quiet {
		return nil
	}
	last := time.Now()
	return func(sent int64, since time.Duration) {
		if time.Since(last) >= 5*time.Second {
			last = time.Now()
			fmt.Fprintf(w, "simulate: %d published (%.0f/s)\n", sent, float64(sent)/since.Seconds())
		}
	}
}

// run state of one publish loop.
type pubState struct {
	start                time.Time
	sent, failed, closed atomic.Int64  // closed: tokens completed (acknowledged or failed)
	acked                chan struct{} // closed when the loop ended and every token completed
	abandon              chan struct{} // closed to stop waiting for tokens
}

// publish starts publishing count messages (0: until gen ends) round-robin
// over devs, one every interval (0: as fast as possible), and a goroutine
// that waits for each message's token. Neither blocks the caller: a
// publish that paho holds (a broker that is gone) cannot hold up a stop.
func publish(gen context.Context, c mqtt.Client, devs []*device, qos byte, count int, interval time.Duration, report func(int64, time.Duration)) *pubState {
	st := &pubState{start: time.Now(), acked: make(chan struct{}), abandon: make(chan struct{})}
	pending := make(chan mqtt.Token, 1024)
	go func() {
		defer close(st.acked)
		for t := range pending {
			select {
			case <-t.Done():
				if t.Error() != nil {
					st.failed.Add(1)
				}
				st.closed.Add(1)
			case <-st.abandon:
				return
			}
		}
	}()
	go func() {
		defer close(pending)
		next := time.Now()
		for i := 0; count == 0 || i < count; i++ {
			if interval > 0 {
				next = next.Add(interval)
				if d := time.Until(next); d > 0 {
					select {
					case <-gen.Done():
					case <-time.After(d):
					}
				}
			}
			if gen.Err() != nil {
				return
			}
			d := devs[i%len(devs)]
			t := c.Publish(d.topic(), qos, false, d.next(time.Now()))
			st.sent.Add(1)
			select {
			case pending <- t:
			case <-st.abandon:
				return
			}
			if report != nil {
				report(st.sent.Load(), time.Since(st.start))
			}
		}
	}()
	return st
}

// wait waits until the loop has ended and every message is acknowledged
// (or failed); once stop has ended, at most grace longer. It returns how
// many messages were still outstanding when it gave up.
func (st *pubState) wait(stop context.Context, grace time.Duration) int64 {
	select {
	case <-st.acked:
		return 0
	case <-stop.Done():
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-st.acked:
		return 0
	case <-timer.C:
		close(st.abandon)
		return max(st.sent.Load()-st.closed.Load(), 1)
	}
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
