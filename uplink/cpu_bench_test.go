package uplink

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// BenchmarkForwardCPU: the gateway's CPU time (this process: the forwarder
// and the Pulsar client library; the broker is another process) to forward
// 100,000 scan-sized events to the real Pulsar, batched and compressed (the
// defaults) and unbatched (batch_max_messages 0, as before batching), in
// the same run. Reports CPU seconds per 100,000 events for both and their
// ratio.
//
//	go test -run '^$' -bench ForwardCPU -benchtime 1x ./uplink/
func BenchmarkForwardCPU(b *testing.B) {
	if b.N > 1 {
		b.Skip("one drain of each kind per run")
	}
	const n = 100_000
	ns := newNamespace(b, true)
	entries := mkEntries(b, "gw-cpu", "cpu", 1, n, 0)
	drain := func(name string, batched bool) float64 {
		o := ns.options()
		if !batched {
			o.BatchMaxMessages = 0
		}
		c, err := New(o, testLogger(b))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		bl := newMemBacklog(entries...)
		done := make(chan struct{})
		bl.onAck = func(upTo uint64) {
			if upTo == n {
				close(done)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		errc := make(chan error, 1)
		before := cpuSeconds(b)
		go func() { errc <- c.Forward(ctx, "gw-cpu", name, 0, bl) }()
		select {
		case <-done:
		case err := <-errc:
			b.Fatalf("Forward returned early: %v", err)
		case <-time.After(5 * time.Minute):
			b.Fatal("forwarder did not finish in 5 minutes")
		}
		used := cpuSeconds(b) - before
		cancel()
		<-errc
		return used * 100_000 / n
	}
	unbatched := drain("unbatched", false)
	batched := drain("batched", true)
	b.ReportMetric(batched, "batched-cpu-s/100k")
	b.ReportMetric(unbatched, "unbatched-cpu-s/100k")
	b.ReportMetric(batched/unbatched, "batched/unbatched")
	b.Logf("CPU seconds per 100,000 events forwarded: unbatched %.2f, batched zstd %.2f", unbatched, batched)
}

// cpuSeconds is this process's user + system CPU time so far.
func cpuSeconds(b *testing.B) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
