package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"

	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/harness"
	"github.com/edgegw/gateway/test/testenv"
)

// Pipeline benchmarks: the real gateway binary (built by test/harness) on
// the real Mosquitto and Pulsar, each figure against a bare client doing the
// least the same job needs, in the same run. `make bench` runs them once
// (-benchtime 1x); every size is an environment variable:
//
//	EDGE_BENCH_INGEST_N     (a) messages queued at Mosquitto        200000
//	EDGE_BENCH_PUBLISHERS   publishing clients                        4
//	EDGE_BENCH_SUSTAIN      (b) simulator run per side                30s
//	EDGE_BENCH_LATENCY      (c) run at 1,000 events/s                 20s
//	EDGE_BENCH_DRAIN_N      (d) events buffered, then drained         1000000
//	EDGE_BENCH_RAW_N        (d) messages of the raw producer baseline 200000

func BenchmarkIngestDrain(b *testing.B) {
	n := envInt("EDGE_BENCH_INGEST_N", 200_000)
	pubs := envInt("EDGE_BENCH_PUBLISHERS", 4)

	// The gateway: its first start creates its persistent session; then,
	// while it is stopped, n messages queue for it.
	r := newRig(b, "ingest")
	r.start(true)
	r.stop()
	pubTime := publish(b, r.mqtt, r.site, n, pubs)
	t0 := time.Now()
	r.start(true)
	r.profile("ingest-drain", 8*time.Second)
	rss := sampleRSS(gatewayPID(b, r.gw.Config))
	tAccepted := waitFor(b, r.gw, 15*time.Minute, fmt.Sprintf("%d events committed", n), func() bool { return r.accepted() >= float64(n) })
	// The driver's own count of PUBACKs sent, when the gateway exports it.
	tAcked, ackedSeen := tAccepted, false
	if _, ok := scrape(r.httpAddr, "edge_gateway_mqtt_acked_total"); ok {
		ackedSeen = true
		tAcked = waitFor(b, r.gw, time.Minute, "all acknowledged", func() bool {
			v, _ := scrape(r.httpAddr, "edge_gateway_mqtt_acked_total")
			return v >= float64(n)
		})
	}
	mem := rss.end()
	r.stop()
	gw := tAccepted.Sub(t0)

	// The baseline: a bare subscriber with a session of its own, on topics
	// of its own, the same backlog.
	site := r.site + "bare"
	sub := newBareSub(b, r.mqtt, site+"-sub", false)
	sub.connect(b, filters(site))
	sub.disconnect()
	publish(b, r.mqtt, site, n, pubs)
	t1 := time.Now()
	sub.connect(b, nil)
	tBare := waitFor(b, nil, 15*time.Minute, "bare subscriber drained", func() bool { return sub.n.Load() >= int64(n) })
	sub.disconnect()
	bare := tBare.Sub(t1)

	b.ReportMetric(float64(n)/gw.Seconds(), "gw-msgs/s")
	b.ReportMetric(float64(n)/bare.Seconds(), "bare-msgs/s")
	b.ReportMetric(bare.Seconds()/gw.Seconds(), "gw/bare")
	if ackedSeen {
		b.ReportMetric(float64(n)/tAcked.Sub(t0).Seconds(), "gw-acked-msgs/s")
	}
	b.ReportMetric(float64(n)/pubTime.Seconds(), "publish-msgs/s")
	mem.report(b)
	b.ReportMetric(float64(n), "msgs")
	b.Logf("ingest drain: %d messages queued in %s; gateway committed all %s after starting (acked: %v), bare subscriber %s",
		n, pubTime.Round(time.Millisecond), gw.Round(time.Millisecond), ackedSeen, bare.Round(time.Millisecond))
}

func BenchmarkSustained(b *testing.B) {
	run := envDuration("EDGE_BENCH_SUSTAIN", 30*time.Second)
	warm := min(5*time.Second, run/4)
	window := run - 2*warm

	// The gateway and a bare subscriber on the same live traffic, at the
	// same time: the same offered load and the same machine weather.
	r := newRig(b, "sustain").withPulsar()
	r.start(false)
	waitConnected(b, r)
	sub := newBareSub(b, r.mqtt, r.site+"-sub", false)
	sub.connect(b, filters(r.site))
	sim := simulate(b, r.mqtt, r.site, 0, run)
	time.Sleep(warm) // the measurement window starts after a warm-up
	r.profile("sustained", window)
	a0, i0, n0, t0 := r.uplinkAcked(), r.accepted(), sub.n.Load(), time.Now()
	cs0, _ := scrape(r.httpAddr, "edge_gateway_buffer_commit_duration_seconds_sum")
	cn0, _ := scrape(r.httpAddr, "edge_gateway_buffer_commit_duration_seconds_count")
	time.Sleep(window)
	a1, i1, n1, t1 := r.uplinkAcked(), r.accepted(), sub.n.Load(), time.Now()
	cs1, _ := scrape(r.httpAddr, "edge_gateway_buffer_commit_duration_seconds_sum")
	cn1, _ := scrape(r.httpAddr, "edge_gateway_buffer_commit_duration_seconds_count")
	offered := sim.wait(b)
	sub.disconnect()
	r.stop()
	secs := t1.Sub(t0).Seconds()
	gwPulsar, gwIngest, bare := (a1-a0)/secs, (i1-i0)/secs, float64(n1-n0)/secs

	b.ReportMetric(gwPulsar, "gw-pulsar-events/s")
	b.ReportMetric(gwIngest, "gw-ingest-events/s")
	b.ReportMetric(bare, "bare-msgs/s")
	b.ReportMetric(gwPulsar/bare, "pulsar/bare")
	b.ReportMetric(gwIngest/bare, "ingest/bare")
	b.ReportMetric(offered, "sim-msgs/s")
	if cn1 > cn0 {
		// The buffer's transactions (appends and acks): what one fsync costs here.
		b.ReportMetric(1000*(cs1-cs0)/(cn1-cn0), "commit-mean-ms")
		b.ReportMetric((cn1-cn0)/secs, "commits/s")
	}
	b.Logf("sustained: simulator at full speed for %s, gateway and bare subscriber on the same traffic, measured over %s after %s", run, window, warm)
}

func BenchmarkLatency(b *testing.B) {
	const rate = 1000
	run := envDuration("EDGE_BENCH_LATENCY", 20*time.Second)
	warm := min(3*time.Second, run/4)

	// On the same traffic at the same time: the gateway; the baseline, a
	// bare relay (paho subscriber → pulsar-client-go producer, acking MQTT on
	// receipt, nothing stored); and a bare subscriber (the MQTT hop alone).
	r := newRig(b, "latency").withPulsar()
	r.start(false)
	waitConnected(b, r)
	col := consume(b, r.ns, "scans", "telemetry")
	rcol := consume(b, r.ns, "relay")
	relay := newRelay(b, r.mqtt, r.site, r.ns)
	sub := newBareSub(b, r.mqtt, r.site+"-sub", true)
	sub.connect(b, filters(r.site))
	rss := sampleRSS(gatewayPID(b, r.gw.Config))
	start := time.Now()
	offered := simulate(b, r.mqtt, r.site, rate, run).wait(b)
	sent := int(offered*run.Seconds()*0.95) - 1
	waitFor(b, r.gw, time.Minute, "the events in Pulsar", func() bool { return col.len() >= sent && rcol.len() >= sent })
	mem := rss.end()
	r.stop()
	relay.close()
	sub.disconnect()
	recv, broker, gwRecv := col.latencies(start.Add(warm))
	relayed, _, _ := rcol.latencies(start.Add(warm))
	mqtt := sub.latencies()
	if len(recv) == 0 || len(relayed) == 0 {
		b.Fatalf("%d gateway and %d relayed events after the warm-up", len(recv), len(relayed))
	}
	b.ReportMetric(pct(recv, 50)*1e3, "p50-ms")
	b.ReportMetric(pct(recv, 99)*1e3, "p99-ms")
	b.ReportMetric(pct(relayed, 50)*1e3, "relay-p50-ms")
	b.ReportMetric(pct(relayed, 99)*1e3, "relay-p99-ms")
	b.ReportMetric(pct(broker, 50)*1e3, "broker-p50-ms")
	b.ReportMetric(pct(broker, 99)*1e3, "broker-p99-ms")
	b.ReportMetric(pct(gwRecv, 50)*1e3, "gw-receive-p50-ms")
	b.ReportMetric(pct(gwRecv, 99)*1e3, "gw-receive-p99-ms")
	b.ReportMetric(pct(mqtt, 50)*1e3, "mqtt-p50-ms")
	b.ReportMetric(pct(mqtt, 99)*1e3, "mqtt-p99-ms")
	b.ReportMetric(offered, "offered-events/s")
	mem.report(b)
	b.ReportMetric(float64(len(recv)), "events")
	b.Logf("latency: %d events at %.0f/s measured after a %s warm-up, %d relayed; publish→consumer receipt, publish→broker publish time (ms resolution), publish→gateway receive stamp, publish→bare MQTT receipt",
		len(recv), offered, warm, len(relayed))
}

func BenchmarkBacklogDrain(b *testing.B) {
	n := envInt("EDGE_BENCH_DRAIN_N", 1_000_000)
	pubs := envInt("EDGE_BENCH_PUBLISHERS", 4)
	rawN := min(n, envInt("EDGE_BENCH_RAW_N", 200_000))

	// Fill: the uplink at a dead address, n events through MQTT into the buffer.
	r := newRig(b, "drain").withPulsar()
	r.start(true)
	t0 := time.Now()
	publish(b, r.mqtt, r.site, n, pubs)
	tFill := waitFor(b, r.gw, 30*time.Minute, fmt.Sprintf("%d events buffered", n), func() bool { return r.accepted() >= float64(n) })
	r.stop()
	fileMiB := fileMiB(r.dir + "/buffer.db")

	// Drain: the same gateway pointed at the real Pulsar.
	t1 := time.Now()
	r.start(false)
	r.profile("backlog-drain", 10*time.Second)
	pid := gatewayPID(b, r.gw.Config)
	rss := sampleRSS(pid)
	tDrained := waitFor(b, r.gw, 30*time.Minute, "the backlog drained", func() bool { return r.buffered() == 0 })
	mem := rss.end()
	hwm := procMiB(pid, "VmHWM")
	acked := r.uplinkAcked()
	r.stop()
	if acked < float64(n) {
		b.Fatalf("drained, but Pulsar acknowledged %.0f of %d events", acked, n)
	}
	drain := tDrained.Sub(t1)

	raw := rawProducer(b, r.ns, rawN)

	b.ReportMetric(float64(n)/drain.Seconds(), "drain-events/s")
	b.ReportMetric(float64(rawN)/raw.Seconds(), "raw-events/s")
	b.ReportMetric((float64(n)/drain.Seconds())/(float64(rawN)/raw.Seconds()), "drain/raw")
	b.ReportMetric(float64(n)/tFill.Sub(t0).Seconds(), "fill-events/s")
	mem.report(b)
	b.ReportMetric(hwm, "hwm-MiB")
	b.ReportMetric(fileMiB, "file-MiB")
	b.ReportMetric(float64(n), "events")
	b.Logf("backlog drain: %d events buffered in %s with the uplink down; drained in %s (from the restart); raw producer: %d messages in %s",
		n, tFill.Sub(t0).Round(time.Millisecond), drain.Round(time.Millisecond), rawN, raw.Round(time.Millisecond))
}

// uplinkAcked is the gateway's count of events acknowledged by Pulsar since
// its pipeline started.
func (r *rig) uplinkAcked() float64 {
	v, _ := scrape(r.httpAddr, "edge_gateway_uplink_acked_events_total")
	return v
}

// waitConnected waits until every stream's producer is open.
func waitConnected(b *testing.B, r *rig) {
	b.Helper()
	waitFor(b, r.gw, 2*time.Minute, "the uplink connected", func() bool {
		v, _ := scrape(r.httpAddr, "edge_gateway_uplink_connected")
		return v >= 2
	})
}

// scrape sums the samples of one metric family on the gateway's /metrics
// whose labels contain every match; ok is false when there is none.
func scrape(addr, name string, match ...string) (sum float64, ok bool) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		all := true
		for _, m := range match {
			all = all && strings.Contains(line, m)
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); all && err == nil {
			sum, ok = sum+v, true
		}
	}
	return sum, ok
}

// simRun is a running cmd/simulate.
type simRun struct {
	cmd *exec.Cmd
	out strings.Builder
}

// simulate runs cmd/simulate for the site: 4 scanners and 2 sensors at
// rate messages/s in all (0 = as fast as it can), QoS 1, for d.
func simulate(b *testing.B, broker, site string, rate int, d time.Duration) *simRun {
	b.Helper()
	bin, err := harness.Binary("simulate")
	if err != nil {
		b.Fatal(err)
	}
	s := &simRun{}
	s.cmd = exec.Command(bin, "-broker", broker, "-site", site, "-scanners", "4", "-sensors", "2",
		"-rate", strconv.Itoa(rate), "-duration", d.String(), "-qos", "1", "-seed", "1", "-quiet")
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			_ = s.cmd.Wait()
		}
	})
	return s
}

var reSimSummary = regexp.MustCompile(`published (\d+) messages \((\d+) failed\) in \S+, (\d+) msg/s`)

// wait waits for the simulator to end and returns the rate it published at.
func (s *simRun) wait(b *testing.B) float64 {
	b.Helper()
	if err := s.cmd.Wait(); err != nil {
		b.Fatalf("simulate: %v\n%s", err, s.out.String())
	}
	m := reSimSummary.FindStringSubmatch(s.out.String())
	if m == nil {
		b.Fatalf("simulate: no summary in\n%s", s.out.String())
	}
	rate, _ := strconv.ParseFloat(m[3], 64)
	return rate
}

// collected is what a Pulsar consumer read from the events topics.
type collected struct {
	mu     sync.Mutex
	recv   []sample
	cancel context.CancelFunc
	done   chan struct{}
}

type sample struct {
	evTime       time.Time     // the event's time: the device's ts
	recv, broker time.Duration // from evTime to the consumer's receipt, to the broker's publish time
	gwRecv       time.Duration // from evTime to the gateway's receive time (the MQTT hop)
}

func (c *collected) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.recv)
}

// latencies returns, for the events whose device time is from or later,
// the seconds from it to the consumer's receipt, to the broker's publish
// time and to the gateway's receive time.
func (c *collected) latencies(from time.Time) (recv, broker, gwRecv []float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.recv {
		if !s.evTime.Before(from) {
			recv = append(recv, s.recv.Seconds())
			broker = append(broker, s.broker.Seconds())
			gwRecv = append(gwRecv, s.gwRecv.Seconds())
		}
	}
	return recv, broker, gwRecv
}

// consume reads the events topics of the streams of namespace ns as they
// arrive. A message is either a gateway event (CBOR) or a relayed MQTT
// payload (JSON with ts).
func consume(b *testing.B, ns string, streams ...string) *collected {
	b.Helper()
	url, _ := testenv.Pulsar(b)
	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: url, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	var topics []string
	for _, s := range streams {
		topics = append(topics, harness.Topic(ns, s))
	}
	cons, err := client.Subscribe(pulsar.ConsumerOptions{
		Topics:                      topics,
		SubscriptionName:            "bench-latency",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
		ReceiverQueueSize:           1000,
	})
	if err != nil {
		client.Close()
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &collected{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			m, err := cons.Receive(ctx)
			if err != nil {
				return
			}
			now := time.Now()
			cons.AckID(m.ID())
			var s sample
			if e, err := event.Unmarshal(m.Payload()); err == nil && !e.Time.IsZero() {
				s = sample{evTime: e.Time, gwRecv: e.Received.Sub(e.Time)}
			} else {
				var p struct {
					TS time.Time `json:"ts"`
				}
				if json.Unmarshal(m.Payload(), &p) != nil || p.TS.IsZero() {
					continue
				}
				s.evTime = p.TS
			}
			s.recv, s.broker = now.Sub(s.evTime), m.PublishTime().Sub(s.evTime)
			c.mu.Lock()
			c.recv = append(c.recv, s)
			c.mu.Unlock()
		}
	}()
	b.Cleanup(func() {
		cancel()
		<-c.done
		cons.Close()
		client.Close()
	})
	return c
}

// rawProducer is the baseline of the drain: a bare pulsar-client-go producer
// with the uplink's producer settings (no batching, no library send timeout,
// 1,000 pending, LZ4) sending n events like the gateway's (CBOR envelope,
// key, event time, sequence ID, properties) to a fresh topic of ns, timed
// from creating the client to the last receipt.
func rawProducer(b *testing.B, ns string, n int) time.Duration {
	b.Helper()
	url, _ := testenv.Pulsar(b)
	msgs := make([]*pulsar.ProducerMessage, n)
	now := time.Now()
	for i := range msgs {
		e := &event.Event{Gateway: "bench-raw", Stream: "scans", Seq: uint64(i + 1), Source: fmt.Sprintf("dock%d-scn-%02d", i%4+1, i%4+1),
			Kind: event.KindScan, Time: now, Received: now, Boot: 1, Mono: uint64(i),
			Attrs: map[string]any{"barcode": fmt.Sprintf("00%018d", 106141410000000000+i), "symbology": "GS1-128", "device": "scn-01"}}
		data, err := event.Marshal(e)
		if err != nil {
			b.Fatal(err)
		}
		seq := int64(i + 1)
		msgs[i] = &pulsar.ProducerMessage{Payload: data, Key: e.Source, EventTime: e.Time, SequenceID: &seq,
			Properties: map[string]string{"gateway": "bench-raw", "stream": "scans", "kind": "scan"}}
	}
	start := time.Now()
	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: url, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	p, err := client.CreateProducer(pulsar.ProducerOptions{
		Topic: harness.Topic(ns, "raw"), Name: "bench-raw", DisableBatching: true, SendTimeout: -1,
		MaxPendingMessages: 1000, CompressionType: pulsar.LZ4,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	wg.Add(n)
	for _, m := range msgs {
		p.SendAsync(context.Background(), m, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	d := time.Since(start)
	if firstErr != nil {
		b.Fatalf("raw producer: %v", firstErr)
	}
	return d
}

func quiet() plog.Logger { return plog.NewLoggerWithSlog(slog.New(slog.DiscardHandler)) }
