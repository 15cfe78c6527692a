package buffer

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Benchmarks. `make bench` runs them as
//
//	go test -run '^$' -bench . -benchtime 2s ./buffer/
//
// Throughput is reported against raw bbolt in the same run: ratio =
// buffer events/s ÷ raw bbolt events/s, where raw bbolt does a batched Put of
// the same events with as many events per transaction as the appenders can
// have in flight (one each), i.e. the best any group commit could do.

var event200 = bytes.Repeat([]byte("e"), 200)

func benchOpts() *Options {
	return &Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CompactRatio: -1}
}

func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("appenders=%d", n), func(b *testing.B) { benchAppend(b, n) })
	}
}

func benchAppend(b *testing.B, appenders int) {
	db, err := Open(filepath.Join(b.TempDir(), "b.db"), benchOpts())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.ConfigureStream(StreamConfig{Name: "s"}); err != nil {
		b.Fatal(err)
	}
	raw := newRawBolt(b)
	defer raw.Close()
	rec := []Encoder{func(uint64) ([]byte, error) { return event200, nil }}
	commits := db.commits.Load()
	// Alternate rounds of the store and of raw bbolt so that both see the
	// same disk and CPU weather.
	const rounds = 10
	per := max(1, b.N/appenders/rounds)
	var ours, base time.Duration
	b.SetBytes(200)
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		start := time.Now()
		var wg sync.WaitGroup
		for a := 0; a < appenders; a++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < per; i++ {
					if _, err := db.Append(context.Background(), "s", rec); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		ours += time.Since(start)
		b.StopTimer()
		base += raw.put(b, per*appenders, appenders)
		b.StartTimer()
	}
	b.StopTimer()
	n := float64(per * appenders * rounds)
	b.ReportMetric(n/ours.Seconds(), "events/s")
	b.ReportMetric(n/base.Seconds(), "raw-events/s")
	b.ReportMetric(base.Seconds()/ours.Seconds(), "ratio")
	b.ReportMetric(n/float64(db.commits.Load()-commits), "events/commit")
}

// rawBolt is the baseline: plain bbolt, batched Puts of the same events in
// synced transactions.
type rawBolt struct {
	*bolt.DB
	seq uint64
}

func newRawBolt(b *testing.B) *rawBolt {
	bdb, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		b.Fatal(err)
	}
	_ = bdb.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("s")); return err })
	return &rawBolt{DB: bdb}
}

// put stores n 200-byte events, batch per transaction, and returns the time.
func (r *rawBolt) put(b *testing.B, n, batch int) time.Duration {
	start := time.Now()
	for done := 0; done < n; done += batch {
		err := r.Update(func(tx *bolt.Tx) error {
			bk := tx.Bucket([]byte("s"))
			bk.FillPercent = 1
			for i := 0; i < batch && done+i < n; i++ {
				r.seq++
				if err := bk.Put(seqKey(r.seq), event200); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// BenchmarkAppendLatency offers 1,000 events/s (one Append each, open loop)
// and reports the latency percentiles.
func BenchmarkAppendLatency(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "b.db"), benchOpts())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.ConfigureStream(StreamConfig{Name: "s"}); err != nil {
		b.Fatal(err)
	}
	rec := []Encoder{func(uint64) ([]byte, error) { return event200, nil }}
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			if _, err := db.Append(context.Background(), "s", rec); err != nil {
				b.Error(err)
			}
			lat[i] = time.Since(t0)
		}()
	}
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// fillBacklog appends n 200-byte events in batches of 1024.
func fillBacklog(b *testing.B, db *DB, n int) {
	if err := db.ConfigureStream(StreamConfig{Name: "s"}); err != nil {
		b.Fatal(err)
	}
	recs := make([]Encoder, 1024)
	for i := range recs {
		recs[i] = func(uint64) ([]byte, error) { return event200, nil }
	}
	for done := 0; done < n; done += len(recs) {
		if _, err := db.Append(context.Background(), "s", recs[:min(len(recs), n-done)]); err != nil {
			b.Fatal(err)
		}
	}
}

const backlog = 1_000_000

// BenchmarkDrain reads and acks a 1,000,000-event backlog, 1,000 at a time,
// as the uplink does.
func BenchmarkDrain(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db, err := Open(filepath.Join(b.TempDir(), "b.db"), benchOpts())
		if err != nil {
			b.Fatal(err)
		}
		fillBacklog(b, db, backlog)
		b.StartTimer()
		start := time.Now()
		var after uint64
		drained := 0
		for {
			es, err := db.Read("s", after, 1000)
			if err != nil {
				b.Fatal(err)
			}
			if len(es) == 0 {
				break
			}
			after = es[len(es)-1].Seq
			if err := db.Ack("s", after); err != nil {
				b.Fatal(err)
			}
			drained += len(es)
		}
		b.ReportMetric(float64(drained)/time.Since(start).Seconds(), "events/s")
		b.StopTimer()
		if drained != backlog {
			b.Fatalf("drained %d", drained)
		}
		_ = db.Close()
	}
}

// BenchmarkBacklogRSS reports resident memory while a store holding a
// 1,000,000-event backlog is open (reopened, so only what Open and Stats
// touch is resident from the file).
func BenchmarkBacklogRSS(b *testing.B) {
	for i := 0; i < b.N; i++ {
		path := filepath.Join(b.TempDir(), "b.db")
		db, err := Open(path, benchOpts())
		if err != nil {
			b.Fatal(err)
		}
		fillBacklog(b, db, backlog)
		_ = db.Close()
		runtime.GC()
		before := vmRSS(b)
		db, err = Open(path, benchOpts())
		if err != nil {
			b.Fatal(err)
		}
		st := db.Stats()
		es, _ := db.Read("s", 0, 1000) // the uplink's first batch
		after := vmRSS(b)
		if st.Streams[0].Depth != backlog || len(es) != 1000 {
			b.Fatalf("backlog %d", st.Streams[0].Depth)
		}
		b.ReportMetric(float64(after)/(1<<20), "rss-MiB")
		b.ReportMetric(float64(after-before)/(1<<20), "open-rss-delta-MiB")
		b.ReportMetric(float64(st.FileSize)/(1<<20), "file-MiB")
		_ = db.Close()
	}
}

func vmRSS(b *testing.B) int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	b.Skip("VmRSS not found")
	return 0
}

// BenchmarkAppendRecords compares, at 16 appenders of one event per call, in
// alternating rounds of the same run: Append ("plain"), AppendRecords with a
// fresh random 16-byte key per event ("keyed": index insert and, the window
// being full, one prune per event) and the same with CheckDup on every event
// ("checked": a lookup more). keyed-ratio = keyed events/s ÷ plain events/s,
// checked-ratio likewise (medians over rounds). BENCH_DEDUP_WINDOW overrides
// Options.DedupWindow.
func BenchmarkAppendRecords(b *testing.B) {
	const appenders = 16
	o := benchOpts()
	if w := os.Getenv("BENCH_DEDUP_WINDOW"); w != "" {
		o.DedupWindow, _ = strconv.Atoi(w)
	}
	db, err := Open(filepath.Join(b.TempDir(), "b.db"), o)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	window := db.opts.DedupWindow
	// Fill the windows so that every keyed append also prunes.
	newKey := func(rng *rand.Rand) []byte {
		k := make([]byte, 16)
		binary.LittleEndian.PutUint64(k, rng.Uint64())
		binary.LittleEndian.PutUint64(k[8:], rng.Uint64())
		return k
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, name := range []string{"plain", "keyed", "checked"} {
		if err := db.ConfigureStream(StreamConfig{Name: name}); err != nil {
			b.Fatal(err)
		}
		recs := make([]Record, 1024)
		for done := 0; done < window; done += len(recs) {
			for i := range recs {
				recs[i] = Record{Enc: func(uint64) ([]byte, error) { return event200, nil }}
				if name != "plain" {
					recs[i].Key = newKey(rng)
				}
			}
			if _, err := db.AppendRecords(context.Background(), name, recs); err != nil {
				b.Fatal(err)
			}
		}
	}
	enc := func(uint64) ([]byte, error) { return event200, nil }
	round := func(mode string, per int) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for a := 0; a < appenders; a++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(a), uint64(time.Now().UnixNano())))
				for i := 0; i < per; i++ {
					var err error
					if mode == "plain" {
						_, err = db.Append(context.Background(), "plain", []Encoder{enc})
					} else {
						_, err = db.AppendRecords(context.Background(), mode, []Record{{Enc: enc, Key: newKey(rng), CheckDup: mode == "checked"}})
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	// Many short rounds, each timing the three modes back to back (in a
	// rotating order); the ratios are the medians of the per-round ratios,
	// which a busy machine disturbs much less than ratios of totals.
	const rounds = 30
	per := max(1, b.N/appenders/rounds)
	took := map[string]time.Duration{}
	var keyedR, checkedR []float64
	modes := []string{"plain", "keyed", "checked"}
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		t := map[string]time.Duration{}
		for i := range modes {
			mode := modes[(r+i)%len(modes)]
			t[mode] = round(mode, per)
			took[mode] += t[mode]
		}
		keyedR = append(keyedR, t["plain"].Seconds()/t["keyed"].Seconds())
		checkedR = append(checkedR, t["plain"].Seconds()/t["checked"].Seconds())
	}
	b.StopTimer()
	median := func(x []float64) float64 { sort.Float64s(x); return x[len(x)/2] }
	n := float64(per * appenders * rounds)
	b.ReportMetric(n/took["plain"].Seconds(), "plain-events/s")
	b.ReportMetric(n/took["keyed"].Seconds(), "keyed-events/s")
	b.ReportMetric(median(keyedR), "keyed-ratio")
	b.ReportMetric(median(checkedR), "checked-ratio")
	st := db.Stats()
	for _, s := range st.Streams {
		if s.Config.Name != "plain" && s.DedupKeys != int64(window) {
			b.Fatalf("%s: window holds %d keys", s.Config.Name, s.DedupKeys)
		}
	}
}

// BenchmarkDedupFirstCheck reports what the first CheckDup of a stream after
// Open costs with a full window of 65,536 keys: the in-memory index is built
// from the FIFO then (load-ms: the call, commit included; a second call for
// comparison as next-ms), and its heap size (index-MiB).
func BenchmarkDedupFirstCheck(b *testing.B) {
	path := filepath.Join(b.TempDir(), "b.db")
	db, err := Open(path, benchOpts())
	if err != nil {
		b.Fatal(err)
	}
	if err := db.ConfigureStream(StreamConfig{Name: "s"}); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	recs := make([]Record, 1024)
	for done := 0; done < db.opts.DedupWindow; done += len(recs) {
		for i := range recs {
			k := make([]byte, 16)
			binary.LittleEndian.PutUint64(k, rng.Uint64())
			binary.LittleEndian.PutUint64(k[8:], rng.Uint64())
			recs[i] = Record{Enc: func(uint64) ([]byte, error) { return event200, nil }, Key: k}
		}
		if _, err := db.AppendRecords(context.Background(), "s", recs); err != nil {
			b.Fatal(err)
		}
	}
	_ = db.Close()
	check := []Record{{Enc: func(uint64) ([]byte, error) { return event200, nil }, Key: recs[0].Key, CheckDup: true}}
	var load, next time.Duration
	var heap float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		db, err := Open(path, benchOpts())
		if err != nil {
			b.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		if out, err := db.AppendRecords(context.Background(), "s", check); err != nil || !out[0].Dup {
			b.Fatalf("%v %v", out, err)
		}
		load += time.Since(start)
		start = time.Now()
		if _, err := db.AppendRecords(context.Background(), "s", check); err != nil {
			b.Fatal(err)
		}
		next += time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap += float64(after.HeapAlloc) - float64(before.HeapAlloc)
		_ = db.Close()
	}
	b.ReportMetric(float64(load.Microseconds())/1000/float64(b.N), "load-ms")
	b.ReportMetric(float64(next.Microseconds())/1000/float64(b.N), "next-ms")
	b.ReportMetric(heap/float64(b.N)/(1<<20), "index-MiB")
}
