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
	"sync/atomic"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
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
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *scanners+*sensors == 0 || *qos < 0 || *qos > 2 {
		fmt.Fprintln(stderr, "simulate: need at least one device and qos 0..2")
		return 2
	}
	var devs []*device
	for i := 0; i < *scanners; i++ {
		devs = append(devs, &device{kind: "scanner", site: *site, dock: i + 1, id: fmt.Sprintf("scn-%02d", i+1), rng: rand.New(rand.NewPCG(*seed, uint64(i)))})
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
	if t := c.Connect(); !t.WaitTimeout(30*time.Second) || t.Error() != nil {
		fmt.Fprintf(stderr, "simulate: connect %s: %v\n", *broker, t.Error())
		return 1
	}
	defer c.Disconnect(250)

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	if *duration > 0 {
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, *duration)
		defer c2()
	}
	var interval time.Duration
	if *rate > 0 {
		interval = time.Duration(float64(time.Second) / *rate)
	}
	var sent, failed atomic.Int64
	start := time.Now()
	lastReport := start
	pending := make(chan mqtt.Token, 1024)
	waitDone := make(chan struct{})
	go func() {
		defer close(waitDone)
		for t := range pending {
			t.Wait()
			if t.Error() != nil {
				failed.Add(1)
			}
		}
	}()
	next := time.Now()
	for i := 0; *count == 0 || i < *count; i++ {
		if interval > 0 {
			next = next.Add(interval)
			if d := time.Until(next); d > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(d):
				}
			}
		}
		if ctx.Err() != nil {
			break
		}
		d := devs[i%len(devs)]
		pending <- c.Publish(d.topic(), byte(*qos), false, d.next(time.Now()))
		sent.Add(1)
		if !*quiet && time.Since(lastReport) >= 5*time.Second {
			lastReport = time.Now()
			fmt.Fprintf(stdout, "simulate: %d published (%.0f/s)\n", sent.Load(), float64(sent.Load())/time.Since(start).Seconds())
		}
	}
	close(pending)
	<-waitDone
	el := time.Since(start)
	fmt.Fprintf(stdout, "simulate: published %d messages (%d failed) in %s, %.0f msg/s, %d devices\n",
		sent.Load(), failed.Load(), el.Round(time.Millisecond), float64(sent.Load())/el.Seconds(), len(devs))
	if failed.Load() > 0 {
		return 1
	}
	return 0
}
