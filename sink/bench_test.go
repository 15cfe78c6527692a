package sink

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/edgegw/gateway/event"
)

// BenchmarkSinkVsRawInsert measures, in one run against the real services:
//
//   - raw_rows/s: the same rows inserted by a plain gocql loop (one INSERT
//     per row, write.concurrency goroutines, no Pulsar);
//   - sink_rows/s: the rows the sink (cmd/sink as a child process) writes
//     per second while draining a backlog of the same events from Pulsar;
//   - sink/raw: their ratio;
//   - raw_batched_rows/s and sink/raw_batched: the same with the baseline
//     sending the rows as the sink does, in unlogged single-partition
//     batches, which isolates the cost of Pulsar, decoding and acking;
//   - rss_MiB and hwm_MiB: the sink's resident memory, highest sample and
//     the kernel's peak (VmHWM), under that load; sink_cpu_s its CPU time.
//
// Run it once: go test -run '^$' -bench SinkVsRaw -benchtime 1x ./sink
// SINK_BENCH_EVENTS sets the number of events (default 20000).
func BenchmarkSinkVsRawInsert(b *testing.B) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("SINK_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	it := newITest(b)
	cfg := it.config()
	evs := gen("gw-bench", n, t0)
	totalRows := 0
	for _, c := range expectedCounts(evs) {
		totalRows += c
	}

	// Baseline: a raw insert loop into a keyspace of its own.
	raw := cfg
	raw.Cassandra.Keyspace = it.keyspace + "_raw"
	b.Cleanup(func() { _ = it.session.Query("DROP KEYSPACE IF EXISTS " + raw.Cassandra.Keyspace).Exec() })
	ctx := context.Background()
	if err := Migrate(ctx, it.session, raw.Cassandra, "bench", testLogger(b)); err != nil {
		b.Fatal(err)
	}
	var rows []row
	for _, e := range evs {
		payload, err := event.Marshal(e)
		if err != nil {
			b.Fatal(err)
		}
		rs, err := deriveRows(e, payload, raw.Cassandra.TTL)
		if err != nil {
			b.Fatal(err)
		}
		rows = append(rows, rs...)
	}
	inserts := map[string]string{}
	for _, t := range tables {
		inserts[t.name] = t.insert(raw.Cassandra.Keyspace)
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan row)
	errs := make(chan error, cfg.Write.Concurrency)
	for range cfg.Write.Concurrency {
		wg.Go(func() {
			for r := range work {
				if err := it.session.Query(inserts[r.table], r.values...).Exec(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for _, r := range rows {
		work <- r
	}
	close(work)
	wg.Wait()
	rawRate := float64(len(rows)) / time.Since(start).Seconds()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}

	// Second baseline: the same rows as unlogged single-partition batches,
	// grouped as the sink groups them, without Pulsar (rewrites the rows).
	items := make([]item, 0, len(rows))
	for _, r := range rows {
		items = append(items, item{job: &job{}, rows: []row{r}})
	}
	start = time.Now()
	chunks := make(chan []pendingRow)
	for range cfg.Write.Concurrency {
		wg.Go(func() {
			for c := range chunks {
				bt := it.session.Batch(gocql.UnloggedBatch)
				for _, p := range c {
					bt.Query(inserts[p.row.table], p.row.values...)
				}
				if err := bt.Exec(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for _, c := range plan(items, cfg.Write.BatchRows, int(cfg.Write.BatchBytes)) {
		chunks <- c
	}
	close(chunks)
	wg.Wait()
	batchedRate := float64(len(rows)) / time.Since(start).Seconds()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}

	// The sink: publish the backlog first, then let cmd/sink drain it.
	b.StopTimer()
	it.publish(evs)
	if err := Migrate(ctx, it.session, cfg.Cassandra, "bench", testLogger(b)); err != nil {
		b.Fatal(err)
	}
	port := freePort(b)
	cfg.HTTP.Listen = "127.0.0.1:" + port
	bin := buildSink(b)
	logPath := filepath.Join(b.TempDir(), "sink.log")
	b.StartTimer()
	c := startChild(b, bin, writeConfig(b, cfg), logPath)
	pid := c.cmd.Process.Pid
	metricsURL := "http://127.0.0.1:" + port + "/metrics"

	var t1 time.Time
	var rows1, rssMax float64
	deadline := time.Now().Add(5 * time.Minute)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		<-tick.C
		if time.Now().After(deadline) {
			b.Fatalf("sink did not write %d rows in time", totalRows)
		}
		written, ok := scrape(metricsURL, "edge_sink_rows_written_total")
		if !ok {
			continue
		}
		rssMax = max(rssMax, procStatusMiB(pid, "VmRSS"))
		if t1.IsZero() && written > 0 {
			t1, rows1 = time.Now(), written
		}
		if written >= float64(totalRows) {
			break
		}
	}
	sinkRate := (float64(totalRows) - rows1) / time.Since(t1).Seconds()
	hwm := procStatusMiB(pid, "VmHWM")
	cpu := procCPUSeconds(pid)
	b.StopTimer()
	if got := it.count(TableEvents); got != n {
		b.Fatalf("%d events rows, want %d", got, n)
	}

	b.ReportMetric(rawRate, "raw_rows/s")
	b.ReportMetric(sinkRate, "sink_rows/s")
	b.ReportMetric(sinkRate/rawRate, "sink/raw")
	b.ReportMetric(batchedRate, "raw_batched_rows/s")
	b.ReportMetric(sinkRate/batchedRate, "sink/raw_batched")
	b.ReportMetric(rssMax, "rss_MiB")
	b.ReportMetric(hwm, "hwm_MiB")
	b.ReportMetric(float64(totalRows), "rows")
	b.ReportMetric(cpu, "sink_cpu_s")
}

func freePort(b testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// scrape sums the samples of one metric family from a Prometheus text page.
func scrape(url, name string) (float64, bool) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum, found = sum+v, true
		}
	}
	return sum, found
}

// procStatusMiB reads a "kB" field of /proc/<pid>/status, in MiB.
func procStatusMiB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte(field+":")); ok {
			f := strings.Fields(string(v))
			kb, _ := strconv.ParseFloat(f[0], 64)
			return kb / 1024
		}
	}
	return 0
}

// procCPUSeconds is the user+system CPU time of a process so far.
func procCPUSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which ends with ')'): utime and stime
	// are the 12th and 13th of them, in clock ticks (100 per second here).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}
