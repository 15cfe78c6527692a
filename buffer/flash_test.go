//go:build linux

package buffer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// BenchmarkFlashWrites measures what reaches the storage per event: the
// bytes this process sent to it (write_bytes of /proc/self/io, which the
// kernel counts per page, or larger folio, dirtied in the page cache; every
// commit is synced, so all of it reaches the disk) while Append is offered
// 20, 200 and 2,000
// events/s for a fixed wall time, open loop, by one writer (evenly spaced
// events) or ten (each evenly spaced at a tenth of the rate, at random
// phases), into a stream holding a 20,000-event backlog (uplink down).
//
// Two baselines are measured in the same run, on the same file system:
//
//   - floor: a plain file, one 220-byte append + fdatasync at a time; the
//     physical floor of "synced before acknowledged" is one page per sync.
//   - raw-bolt: bbolt alone, one 220-byte Put per transaction into a bucket
//     of 20,000 keys: what the store would cost with no overhead of its own
//     and no group commit.
//
// A third figure is a model of an ingest journal in front of bbolt, kept
// as a reference for the real one (journal.go): k 220-byte records
// appended to a preallocated file per fdatasync, moved into bbolt 1,000
// at a time, one transaction each.
//
// The rates run with one writer and with ten, both with the uplink down,
// and with one writer and a reader that reads and acks everything every
// 50 ms (".../uplink"). The journal is moved into the file before and
// after the window, so the moves are counted; journal-B/event is the
// journal's part (Stats.JournalWrittenBytes). BENCH_FLASH_OPTS=nojournal
// runs without the journal.
//
// Each rate reports B/event (process I/O accounting), buffer-B/event
// (Stats.WrittenBytes, what the store counts itself), events/commit,
// floor-ratio and raw-ratio (B/event ÷ the baseline's bytes per sync or per
// commit) and the Append latency p99. Each sub-benchmark runs for a fixed
// time whatever -benchtime says (default 5 s; BENCH_FLASH_SECONDS overrides
// it), so `make bench`'s 2s and -benchtime 1x both run it once;
// BENCH_FLASH_RATES (comma-separated events/s) replaces the rates and
// BENCH_FLASH_OPTS selects storage experiments (flashOpts).
//
// It needs a real disk: on tmpfs nothing is ever written and it skips.
func BenchmarkFlashWrites(b *testing.B) {
	dir := b.TempDir()
	requireDisk(b, dir)
	secs := 5.0
	if v := os.Getenv("BENCH_FLASH_SECONDS"); v != "" {
		secs, _ = strconv.ParseFloat(v, 64)
	}
	wall := time.Duration(secs * float64(time.Second))
	var floor, raw float64
	b.Run("floor", func(b *testing.B) {
		floor = floorPerSync(b, filepath.Join(b.TempDir(), "floor"), wall)
		b.ReportMetric(floor, "B/sync")
	})
	b.Run("raw-bolt", func(b *testing.B) {
		raw = rawBoltPerCommit(b, filepath.Join(b.TempDir(), "raw.db"), wall)
		b.ReportMetric(raw, "B/commit")
		b.ReportMetric(raw/max(floor, 1), "floor-ratio")
	})
	for _, k := range []int{1, 10} {
		b.Run(fmt.Sprintf("journal-model/events-per-sync=%d", k), func(b *testing.B) {
			v := journalModel(b, b.TempDir(), k, wall)
			b.ReportMetric(v, "B/event")
			b.ReportMetric(v/max(floor, 1), "floor-ratio")
		})
	}
	rates := []int{20, 200, 2000}
	if v := os.Getenv("BENCH_FLASH_RATES"); v != "" {
		rates = nil
		for _, f := range strings.Split(v, ",") {
			r, err := strconv.Atoi(f)
			if err != nil || r <= 0 {
				b.Fatalf("BENCH_FLASH_RATES: %q", f)
			}
			rates = append(rates, r)
		}
	}
	for _, rate := range rates {
		for _, v := range []struct {
			writers int
			mode    flashMode
		}{{1, flashDown}, {10, flashDown}, {1, flashUplink}, {1, flashFull}} {
			name := fmt.Sprintf("rate=%d/writers=%d", rate, v.writers)
			switch v.mode {
			case flashUplink:
				name += "/uplink"
			case flashFull:
				name += "/full"
			}
			b.Run(name, func(b *testing.B) {
				r := flashRun(b, flashOpts(b), rate, v.writers, v.mode, wall)
				b.ReportMetric(r.perEvent, "B/event")
				b.ReportMetric(r.bufPerEvent, "buffer-B/event")
				b.ReportMetric(r.journalPerEvent, "journal-B/event")
				b.ReportMetric(r.perCommit, "events/commit")
				b.ReportMetric(r.perEvent/max(floor, 1), "floor-ratio")
				b.ReportMetric(r.perEvent/max(raw, 1), "raw-ratio")
				b.ReportMetric(float64(r.p99.Microseconds()), "p99-µs")
			})
		}
	}
}

// BenchmarkAppendLatencyJournal measures the Append latency at 1,000
// events/s (one writer, open loop, the backlog of BenchmarkFlashWrites)
// without the journal and with it, in the same run: p50-µs and p99-µs of
// each, and p99-ratio (with ÷ without) in the journal=on run. Like
// BenchmarkFlashWrites it runs for BENCH_FLASH_SECONDS (default 5 s).
func BenchmarkAppendLatencyJournal(b *testing.B) {
	requireDisk(b, b.TempDir())
	secs := 5.0
	if v := os.Getenv("BENCH_FLASH_SECONDS"); v != "" {
		secs, _ = strconv.ParseFloat(v, 64)
	}
	wall := time.Duration(secs * float64(time.Second))
	var off time.Duration
	for _, on := range []bool{false, true} {
		name := "journal=off"
		if on {
			name = "journal=on"
		}
		b.Run(name, func(b *testing.B) {
			o := flashOpts(b)
			if !on {
				o.JournalSize = -1
			}
			r := flashRun(b, o, 1000, 1, flashDown, wall)
			b.ReportMetric(float64(r.p50.Microseconds()), "p50-µs")
			b.ReportMetric(float64(r.p99.Microseconds()), "p99-µs")
			b.ReportMetric(r.perEvent, "B/event")
			if !on {
				off = r.p99
			} else if off > 0 {
				b.ReportMetric(float64(r.p99)/float64(off), "p99-ratio")
			}
		})
	}
}

// flashOpts are benchOpts with the storage experiments of BENCH_FLASH_OPTS,
// comma-separated: nofreelistsync, pagesize=N, pace=D (no early commit
// sooner than D after the previous one ended; CommitWindow is raised to D),
// nopace (no adaptive pacing: the committer as it was before pacing),
// nojournal (Options.JournalSize -1: every commit to bbolt), journalsize=N
// (Options.JournalSize), fill=D (Options.FillWindow; -1ns: off).
func flashOpts(b *testing.B) *Options {
	o := benchOpts()
	for _, f := range strings.Split(os.Getenv("BENCH_FLASH_OPTS"), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		var err error
		switch k {
		case "":
		case "nofreelistsync":
			o.noFreelistSync = true
		case "pagesize":
			o.pageSize, err = strconv.Atoi(v)
		case "pace":
			o.commitPace, err = time.ParseDuration(v)
			o.CommitWindow = max(o.commitPace, DefaultOptions.CommitWindow)
		case "nopace":
			o.commitPace = -1
		case "nojournal":
			o.JournalSize = -1
		case "journalsize":
			o.JournalSize, err = strconv.ParseInt(v, 10, 64)
		case "fill":
			o.FillWindow, err = time.ParseDuration(v)
		default:
			b.Fatalf("BENCH_FLASH_OPTS: unknown %q", k)
		}
		if err != nil {
			b.Fatalf("BENCH_FLASH_OPTS: %s: %v", f, err)
		}
	}
	return o
}

// flashEvent is a 212-byte payload: 220 bytes stored with its append time.
var flashEvent = func() []byte {
	p := make([]byte, 212)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range p {
		p[i] = byte('a' + rng.IntN(26))
	}
	return p
}()

const flashBacklog = 20_000

type flashResult struct {
	perEvent, bufPerEvent, journalPerEvent, perCommit float64
	p50, p99                                          time.Duration
}

// flashMode is what happens to the events of flashRun besides arriving.
type flashMode int

const (
	flashDown   flashMode = iota // uplink down: they stay
	flashUplink                  // a reader reads and acks them every 50 ms
	// the uplink is down and the stream is full (drop-oldest, MaxEvents
	// the backlog): every append drops the oldest entry, as in a van
	// offline for longer than its buffer holds
	flashFull
)

// flashRun offers rate events/s for wall; with flashUplink, the backlog is
// acked first and a reader reads and acks everything every 50 ms, as the
// uplink does (its ackEvery) when Pulsar keeps up.
func flashRun(b *testing.B, o *Options, rate, writers int, mode flashMode, wall time.Duration) flashResult {
	db, err := Open(filepath.Join(b.TempDir(), "b.db"), o)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	cfg := StreamConfig{Name: "s"}
	if mode == flashFull {
		cfg.MaxEvents, cfg.Overflow = flashBacklog, PolicyDropOldest
	}
	if err := db.ConfigureStream(cfg); err != nil {
		b.Fatal(err)
	}
	uplink := mode == flashUplink
	recs := make([]Encoder, 1000)
	for i := range recs {
		recs[i] = func(uint64) ([]byte, error) { return flashEvent, nil }
	}
	for done := 0; done < flashBacklog; done += len(recs) {
		if _, err := db.Append(context.Background(), "s", recs); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.moveJournal(context.Background()); err != nil {
		b.Fatal(err)
	}
	one := []Encoder{recs[0]}
	perWriter := int(float64(rate)*wall.Seconds()) / writers
	n := perWriter * writers
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	stopUplink := make(chan struct{})
	if uplink {
		after := db.Stats().Streams[0].NextSeq - 1
		if err := db.Ack("s", after); err != nil {
			b.Fatal(err)
		}
		// That ack's frame (20,000 removals) is not synced until the next
		// commit: move it into the file before the measurement starts.
		if err := db.moveJournal(context.Background()); err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stopUplink:
					return
				case <-t.C:
				}
				for {
					es, err := db.Read("s", after, 1000)
					if err != nil {
						b.Error(err)
						return
					}
					if len(es) == 0 {
						break
					}
					after = es[len(es)-1].Seq
				}
				if err := db.Ack("s", after); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	// The backlog was written in 1,000-event batches, which leave the
	// store's pages in large folios; the kernel accounts (write_bytes) a
	// whole folio when one byte of it is dirtied, so the small commits
	// that rewrite those pages would count tens of KB each. Drop the clean
	// pages from the page cache, as after a reboot (the journal does that
	// itself at every move).
	if f, err := os.Open(db.Path()); err == nil {
		_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		_ = f.Close()
	}
	st0, w0 := db.Stats(), writeBytes(b)
	b.ResetTimer()
	start := time.Now()
	var writersWG sync.WaitGroup
	rng := rand.New(rand.NewPCG(uint64(rate), uint64(writers)))
	for w := 0; w < writers; w++ {
		period := time.Duration(float64(time.Second) * float64(writers) / float64(rate))
		phase := time.Duration(0)
		if writers > 1 {
			phase = time.Duration(rng.Int64N(int64(period)))
		}
		writersWG.Add(1)
		go func() {
			defer writersWG.Done()
			for i := 0; i < perWriter; i++ {
				time.Sleep(time.Until(start.Add(phase + time.Duration(i)*period)))
				writersWG.Add(1)
				go func(slot int) {
					defer writersWG.Done()
					t0 := time.Now()
					if _, err := db.Append(context.Background(), "s", one); err != nil {
						b.Error(err)
					}
					lat[slot] = time.Since(t0)
				}(w*perWriter + i)
			}
		}()
	}
	writersWG.Wait()
	// Move what the window journaled into the file, so that its cost is
	// counted with the window's events (the journal's content before the
	// window was moved with the backlog): moves are a share of the bytes
	// per event, not outside the measurement. A move's fixed pages are
	// then shared by the window's events only, fewer than MoveInterval
	// gathers at low rates: a slight overestimate.
	if err := db.moveJournal(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	w1, st1 := writeBytes(b), db.Stats()
	close(stopUplink)
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return flashResult{
		perEvent:        float64(w1-w0) / float64(n),
		bufPerEvent:     float64(st1.WrittenBytes-st0.WrittenBytes) / float64(n),
		journalPerEvent: float64(st1.JournalWrittenBytes-st0.JournalWrittenBytes) / float64(n),
		perCommit:       float64(n) / float64(max(1, st1.Commits-st0.Commits)),
		p50:             lat[len(lat)/2],
		p99:             lat[len(lat)*99/100],
	}
}

// floorPerSync appends 220-byte records to a plain file, each followed by an
// fdatasync, for the wall time, and returns the bytes written per sync.
func floorPerSync(b *testing.B, path string, wall time.Duration) float64 {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rec := flashEvent[:220-entryHeader]
	rec = append(make([]byte, entryHeader), rec...)
	w0, start, n := writeBytes(b), time.Now(), 0
	for ; n < 50 || time.Since(start) < wall; n++ {
		if _, err := f.Write(rec); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
	}
	d := writeBytes(b) - w0
	if d == 0 {
		b.Skip("write_bytes does not move on this file system: nothing to measure")
	}
	return float64(d) / float64(n)
}

// rawBoltPerCommit puts 220-byte values, one per synced transaction, into a
// bbolt bucket of flashBacklog keys for the wall time, and returns the bytes
// written per commit.
func rawBoltPerCommit(b *testing.B, path string, wall time.Duration) float64 {
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		b.Fatal(err)
	}
	defer bdb.Close()
	val := append(make([]byte, entryHeader), flashEvent...)
	var seq uint64
	put := func(k int) {
		err := bdb.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("s"))
			if err != nil {
				return err
			}
			for i := 0; i < k; i++ {
				seq++
				if err := bk.Put(seqKey(seq), val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for seq < flashBacklog {
		put(1000)
	}
	w0, start, n := writeBytes(b), time.Now(), 0
	for ; n < 50 || time.Since(start) < wall; n++ {
		put(1)
	}
	return float64(writeBytes(b)-w0) / float64(n)
}

// journalModel appends k 220-byte records per fdatasync to a preallocated
// 4 MiB file (zeroed and synced first, so a sync has no metadata to write),
// and every 1,000 records puts them into a bbolt bucket of flashBacklog keys
// in one transaction, for the wall time; it returns the bytes written per
// record.
func journalModel(b *testing.B, dir string, k int, wall time.Duration) float64 {
	const size, move = 4 << 20, 1000
	f, err := os.OpenFile(filepath.Join(dir, "journal"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, size)); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	// Drop the zeroes from the page cache: written in one go, they sit in
	// large folios, and dirtying a byte of one accounts the whole folio.
	if !evict(b, f.Name()) {
		b.Skip("cannot evict the journal from the page cache here")
	}
	bdb, err := bolt.Open(filepath.Join(dir, "j.db"), 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		b.Fatal(err)
	}
	defer bdb.Close()
	val := append(make([]byte, entryHeader), flashEvent...)
	var seq uint64
	put := func(n int) {
		err := bdb.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("s"))
			if err != nil {
				return err
			}
			bk.FillPercent = 1
			for i := 0; i < n; i++ {
				seq++
				if err := bk.Put(seqKey(seq), val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for seq < flashBacklog {
		put(move)
	}
	rec := make([]byte, k*len(val))
	w0, start, n, off, pending := writeBytes(b), time.Now(), 0, int64(0), 0
	for n < 2*move || time.Since(start) < wall {
		if off+int64(len(rec)) > size {
			off = 0
		}
		if _, err := f.WriteAt(rec, off); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
		off += int64(len(rec))
		n += k
		if pending += k; pending >= move {
			put(pending)
			pending = 0
		}
	}
	return float64(writeBytes(b)-w0) / float64(n)
}

// writeBytes is this process's write_bytes from /proc/self/io.
func writeBytes(b testing.TB) int64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Skipf("no /proc/self/io: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				b.Fatalf("write_bytes: %v", err)
			}
			return n
		}
	}
	b.Skip("no write_bytes in /proc/self/io")
	return 0
}

// requireDisk skips when dir is on tmpfs or ramfs, where nothing is written.
func requireDisk(b testing.TB, dir string) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		b.Skipf("statfs %s: %v", dir, err)
	}
	const tmpfsMagic, ramfsMagic = 0x01021994, 0x858458f6
	if t := uint32(st.Type); t == tmpfsMagic || t == ramfsMagic {
		b.Skipf("%s is on tmpfs/ramfs: writes never reach a disk, so there is nothing to measure (set TMPDIR to a directory on the disk)", dir)
	}
}

// BenchmarkFlashOpenNoFreelistSync reports what bbolt's NoFreelistSync (one
// page less per commit) costs at Open with a 1,000,000-event backlog: a file
// written without a freelist has it rebuilt at every Open by walking every
// page of the file. open-ms is Open with the freelist synced (as shipped),
// nofreelist-open-ms without; "cold" after evicting the file from the page
// cache (posix_fadvise DONTNEED), as after a reboot.
func BenchmarkFlashOpenNoFreelistSync(b *testing.B) {
	requireDisk(b, b.TempDir())
	for i := 0; i < b.N; i++ {
		for _, nfs := range []bool{false, true} {
			path := filepath.Join(b.TempDir(), "b.db")
			o := benchOpts()
			o.noFreelistSync = nfs
			db, err := Open(path, o)
			if err != nil {
				b.Fatal(err)
			}
			fillBacklog(b, db, backlog)
			size := db.Stats().FileSize
			_ = db.Close()
			name := "open-ms"
			if nfs {
				name = "nofreelist-open-ms"
			}
			for _, cold := range []bool{false, true} {
				if cold && !evict(b, path) {
					continue
				}
				start := time.Now()
				db, err := Open(path, o)
				if err != nil {
					b.Fatal(err)
				}
				took := time.Since(start)
				_ = db.Close()
				n := name
				if cold {
					n = "cold-" + name
				}
				b.ReportMetric(float64(took.Microseconds())/1000, n)
			}
			b.ReportMetric(float64(size)/(1<<20), "file-MiB")
		}
	}
}
