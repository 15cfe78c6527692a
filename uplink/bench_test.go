package uplink

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"

	"github.com/edgegw/gateway/event"
)

// BenchmarkForward measures the forwarder against a bare pulsar-client-go
// producer with the same producer settings (batching off, library send
// timeout off, max_pending, lz4, same messages with key, event time and
// properties precomputed), on the same broker in the same run. Each
// iteration sends N events (UPLINK_BENCH_N, default 20000; ~350 bytes each)
// through both, each to a fresh topic, producer creation included. It
// reports both rates, their ratio (forwarder ÷ bare), and the receipt
// latency percentiles of both.
//
//	go test -run '^$' -bench Forward -benchtime 3x ./uplink/
func BenchmarkForward(b *testing.B) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("UPLINK_BENCH_N")); err == nil && v > 0 {
		n = v
	}
	ns := newNamespace(b, true)
	o := ns.options()
	entries := mkEntries(b, "gw-bench", "bench", 1, uint64(n), 200)
	msgs := make([]*pulsar.ProducerMessage, n)
	for i, e := range entries {
		m, _, err := message("gw-bench", "bench", e)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = m
	}
	comp, _ := compressionType(o.Compression)

	var rawTime, fwdTime time.Duration
	var mu sync.Mutex
	var rawLat, fwdLat []float64
	// bare runs the bare producer with a client of its own (as the
	// forwarder has), creation included.
	bare := func(i int) time.Duration {
		start := time.Now()
		pc, err := pulsar.NewClient(pulsar.ClientOptions{URL: ns.serviceURL, Logger: plog.NewLoggerWithSlog(testLogger(b))})
		if err != nil {
			b.Fatal(err)
		}
		defer pc.Close()
		p, err := pc.CreateProducer(pulsar.ProducerOptions{
			Topic: o.Topic(fmt.Sprintf("raw-%d", i)), Name: "gw-bench/raw", DisableBatching: true,
			SendTimeout: -1, MaxPendingMessages: o.MaxPending, CompressionType: comp,
		})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		var wg sync.WaitGroup
		wg.Add(n)
		for _, m := range msgs {
			sent := time.Now()
			p.SendAsync(context.Background(), m, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
				if err != nil {
					b.Error(err)
				}
				d := time.Since(sent).Seconds()
				mu.Lock()
				rawLat = append(rawLat, d)
				mu.Unlock()
				wg.Done()
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	forward := func(i int) time.Duration {
		start := time.Now()
		c, err := New(o, testLogger(b))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		c.OnReceiptLatency(func(_ string, s float64) {
			mu.Lock()
			fwdLat = append(fwdLat, s)
			mu.Unlock()
		})
		bl := newMemBacklog(entries...)
		done := make(chan struct{})
		bl.onAck = func(upTo uint64) {
			if upTo == uint64(n) {
				close(done)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- c.Forward(ctx, "gw-bench", fmt.Sprintf("fwd-%d", i), 0, bl) }()
		select {
		case <-done:
		case err := <-errc:
			b.Fatalf("Forward returned early: %v", err)
		case <-time.After(5 * time.Minute):
			b.Fatal("forwarder did not finish in 5 minutes")
		}
		d := time.Since(start)
		cancel()
		<-errc
		return d
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 { // alternate, so neither always runs on a warmer broker
			rawTime += bare(i)
			fwdTime += forward(i)
		} else {
			fwdTime += forward(i)
			rawTime += bare(i)
		}
	}
	b.StopTimer()

	total := float64(n * b.N)
	rawRate, fwdRate := total/rawTime.Seconds(), total/fwdTime.Seconds()
	b.ReportMetric(fwdRate, "fwd-events/s")
	b.ReportMetric(rawRate, "raw-events/s")
	b.ReportMetric(fwdRate/rawRate, "fwd/raw")
	b.ReportMetric(pct(fwdLat, 50)*1e3, "fwd-p50-ms")
	b.ReportMetric(pct(fwdLat, 99)*1e3, "fwd-p99-ms")
	b.ReportMetric(pct(rawLat, 50)*1e3, "raw-p50-ms")
	b.ReportMetric(pct(rawLat, 99)*1e3, "raw-p99-ms")
}

// BenchmarkMessage is the per-entry cost the forwarder adds before the
// library: decoding the envelope to get key, time and kind.
func BenchmarkMessage(b *testing.B) {
	e := mkEntries(b, "gw", "s", 1, 1, 200)[0]
	if _, err := event.Unmarshal(e.Data); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := message("gw", "s", e); err != nil {
			b.Fatal(err)
		}
	}
}

func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p/100))]
}
