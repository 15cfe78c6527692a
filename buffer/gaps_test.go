package buffer

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Gap events that survive the overflow they record: a sustained drop must
// stay accounted for however long it lasts (gaps.go).

// jsonGapEncoder encodes gap events so that tests can decode them; other
// entries never start with '{'.
func jsonGapEncoder(stream string, seq uint64, g Gap) ([]byte, error) {
	return json.Marshal(struct {
		Seq uint64
		Gap
	}{seq, g})
}

func decodeGap(t testing.TB, e Entry) (Gap, bool) {
	t.Helper()
	if len(e.Data) == 0 || e.Data[0] != '{' {
		return Gap{}, false
	}
	var v struct {
		Seq uint64
		Gap
	}
	if err := json.Unmarshal(e.Data, &v); err != nil {
		t.Fatalf("gap event %d: %v", e.Seq, err)
	}
	if v.Seq != e.Seq {
		t.Fatalf("gap event at seq %d encoded for seq %d", e.Seq, v.Seq)
	}
	return v.Gap, true
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// uplinkReader reads a stream the way the uplink does (Read after the last
// seq it has, Ack what it delivered) and remembers everything it was handed,
// failing the test if a seq is ever handed out again with other content.
type uplinkReader struct {
	t       testing.TB
	db      *DB
	stream  string
	next    uint64            // last seq read in this session
	seen    map[uint64]string // seq -> content, across sessions
	maxSeen int               // most gap events held at once, as seen in Stats
}

func newUplinkReader(t testing.TB, db *DB, stream string) *uplinkReader {
	return &uplinkReader{t: t, db: db, stream: stream, seen: map[uint64]string{}}
}

// read reads up to max entries and returns how many it got.
func (r *uplinkReader) read(n int) int {
	r.t.Helper()
	es, err := r.db.Read(r.stream, r.next, n)
	if err != nil {
		r.t.Fatalf("Read: %v", err)
	}
	for _, e := range es {
		if e.Seq <= r.next {
			r.t.Fatalf("Read after %d returned seq %d", r.next, e.Seq)
		}
		if prev, ok := r.seen[e.Seq]; ok && prev != string(e.Data) {
			r.t.Fatalf("seq %d handed out again with other content:\n%s\n%s", e.Seq, prev, e.Data)
		}
		r.seen[e.Seq] = string(e.Data)
		r.next = e.Seq
	}
	r.maxSeen = max(r.maxSeen, int(streamStats(r.t, r.db, r.stream).GapEvents))
	return len(es)
}

// ack acks everything read so far.
func (r *uplinkReader) ack() {
	r.t.Helper()
	if r.next == 0 {
		return
	}
	if err := r.db.Ack(r.stream, r.next); err != nil {
		r.t.Fatalf("Ack: %v", err)
	}
}

// reconnect starts a new session: reading again from the acked seq.
func (r *uplinkReader) reconnect() { r.next = streamStats(r.t, r.db, r.stream).AckedSeq }

// drain reads and acks until the stream is empty.
func (r *uplinkReader) drain() {
	r.t.Helper()
	for r.read(100) > 0 {
		r.ack()
	}
	r.ack()
	if st := streamStats(r.t, r.db, r.stream); st.Depth != 0 || st.UnreportedDrops != 0 {
		r.t.Fatalf("after draining: %+v", st)
	}
}

// gapReport is what the delivered gap events of a stream say.
type gapReport struct {
	events int
	sum    uint64
}

// verifyGaps checks the gap events among what a reader was handed (seen)
// against the dropped seqs, which the drop history (Gaps, kept whole with
// a large GapHistory) gives independently: the counts add up to the drop
// counter, and every dropped seq lies in a gap event's range. With exact,
// the ranges are also disjoint and each holds only dropped seqs (and gap
// events), as many as its count: what a stream's gap events say when they
// were never capped (gaps.go).
func verifyGaps(t testing.TB, db *DB, stream string, seen map[uint64]string, exact bool) gapReport {
	t.Helper()
	type rng struct{ from, to, count, seq uint64 }
	var ranges []rng
	gapSeq := map[uint64]bool{}
	for seq, d := range seen {
		if g, ok := decodeGap(t, Entry{Seq: seq, Data: []byte(d)}); ok {
			ranges = append(ranges, rng{g.From, g.To, g.Count, seq})
			gapSeq[seq] = true
		}
	}
	hist, err := db.Gaps(stream)
	if err != nil {
		t.Fatal(err)
	}
	dropped := map[uint64]bool{}
	for _, h := range hist {
		n := uint64(0)
		for s := h.From; s <= h.To; s++ {
			if !gapSeq[s] {
				dropped[s] = true
				n++
			}
		}
		if n != h.Count {
			t.Fatalf("history %+v: %d seqs in its range are not gap events", h, n)
		}
	}
	drops := streamStats(t, db, stream).Drops.Total()
	if uint64(len(dropped)) != drops {
		t.Fatalf("history holds %d dropped seqs, drop counter %d (raise GapHistory)", len(dropped), drops)
	}
	sort.Slice(ranges, func(i, j int) bool { return ranges[i].from < ranges[j].from })
	rep := gapReport{events: len(ranges)}
	covered := map[uint64]bool{}
	for i, r := range ranges {
		if r.from > r.to || r.count == 0 || r.to >= r.seq {
			t.Fatalf("gap event %d: range %d..%d count %d", r.seq, r.from, r.to, r.count)
		}
		if exact && i > 0 && ranges[i-1].to >= r.from {
			t.Fatalf("gap ranges overlap: %+v and %+v", ranges[i-1], r)
		}
		var lost uint64
		for s := r.from; s <= r.to; s++ {
			switch {
			case dropped[s]:
				lost++
				covered[s] = true
			case exact && !gapSeq[s]:
				t.Fatalf("gap event %d (%d..%d) covers seq %d, which was not dropped", r.seq, r.from, r.to, s)
			}
		}
		if exact && lost != r.count || r.count > lost {
			t.Fatalf("gap event %d says %d lost in %d..%d, %d seqs there were dropped", r.seq, r.count, r.from, r.to, lost)
		}
		rep.sum += r.count
	}
	if rep.sum != drops {
		t.Fatalf("gap events report %d dropped, the drop counter says %d", rep.sum, drops)
	}
	if len(covered) != len(dropped) {
		t.Fatalf("gap events cover %d of the %d dropped seqs", len(covered), len(dropped))
	}
	return rep
}

// A drop-oldest stream fed far beyond its limit with the uplink down keeps
// one open gap, and the uplink gets it as one gap event when it returns.
func TestGapsSustainedOverflow(t *testing.T) {
	for _, c := range []struct {
		name         string
		total, batch int
	}{{"5000x1", 5000, 1}, {"50000x50", 50000, 50}} {
		t.Run(c.name, func(t *testing.T) {
			db, _ := openTest(t, &Options{GapEncoder: jsonGapEncoder, GapHistory: 1 << 20, Logger: quietLogger()})
			mustConfigure(t, db, StreamConfig{Name: "telemetry", MaxEvents: 1000, Overflow: PolicyDropOldest})
			for i := 0; i < c.total; i += c.batch {
				mustAppend(t, db, "telemetry", encs("r", c.batch, 40)...)
				if i%1000 == 0 {
					if st := streamStats(t, db, "telemetry"); st.GapEvents != 0 || st.Depth > 1000 {
						t.Fatalf("after %d: %+v", i, st)
					}
				}
			}
			st := streamStats(t, db, "telemetry")
			want := uint64(c.total - 1000)
			if st.Drops.Overflow != want || st.UnreportedDrops != want || st.Depth != 1000 || st.GapEvents != 0 {
				t.Fatalf("before the uplink returns: %+v", st)
			}
			r := newUplinkReader(t, db, "telemetry")
			r.drain()
			rep := verifyGaps(t, db, "telemetry", r.seen, true)
			if rep.events != 1 || len(r.seen) != 1001 {
				t.Fatalf("%d gap events, %d entries delivered", rep.events, len(r.seen))
			}
			t.Logf("%d appended, %d dropped: %d gap event, sum of counts %d", c.total, st.Drops.Total(), rep.events, rep.sum)
		})
	}
}

// The same for TTL, for the disk budget, and for a stream with both limits
// and TTL whose drops alternate between reasons.
func TestGapsSustainedTTLAndBudget(t *testing.T) {
	t.Run("ttl", func(t *testing.T) {
		clk := newClock()
		db, _ := openTest(t, &Options{GapEncoder: jsonGapEncoder, GapHistory: 1 << 20, Now: clk.Now, Logger: quietLogger()})
		mustConfigure(t, db, StreamConfig{Name: "s", MaxAge: 10 * time.Second})
		for i := 0; i < 5000; i++ {
			mustAppend(t, db, "s", encs("r", 1, 40)...)
			clk.Advance(time.Second)
			if i%500 == 0 {
				if err := db.sweepNow(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}
		st := streamStats(t, db, "s")
		if st.Drops.TTL < 4980 || st.UnreportedDrops != st.Drops.TTL || st.GapEvents != 0 {
			t.Fatalf("stats %+v", st)
		}
		r := newUplinkReader(t, db, "s")
		r.drain()
		rep := verifyGaps(t, db, "s", r.seen, true)
		if rep.events != 1 {
			t.Fatalf("%d gap events", rep.events)
		}
	})
	t.Run("budget", func(t *testing.T) {
		db, _ := openTest(t, &Options{GapEncoder: jsonGapEncoder, GapHistory: 1 << 20, DiskBudget: 40 * 1000, Logger: quietLogger()})
		mustConfigure(t, db, StreamConfig{Name: "low", Priority: 1, Overflow: PolicyDropOldest})
		mustConfigure(t, db, StreamConfig{Name: "high", Priority: 5, Overflow: PolicyDropOldest, MaxEvents: 500})
		for i := 0; i < 5000; i++ {
			mustAppend(t, db, "low", encs("l", 1, 40)...)
			mustAppend(t, db, "high", encs("h", 1, 40)...)
		}
		for _, name := range []string{"low", "high"} {
			st := streamStats(t, db, name)
			if st.GapEvents > int64(len(dropReasons)) {
				t.Fatalf("%s: %+v", name, st)
			}
			r := newUplinkReader(t, db, name)
			r.drain()
			rep := verifyGaps(t, db, name, r.seen, true)
			t.Logf("%s: drops %+v, %d gap events, sum %d", name, st.Drops, rep.events, rep.sum)
		}
	})
	t.Run("alternating", func(t *testing.T) {
		clk := newClock()
		db, _ := openTest(t, &Options{GapEncoder: jsonGapEncoder, GapHistory: 1 << 20, Now: clk.Now, Logger: quietLogger()})
		mustConfigure(t, db, StreamConfig{Name: "s", MaxEvents: 100, MaxAge: time.Minute, Overflow: PolicyDropOldest})
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < 3000; i++ {
			mustAppend(t, db, "s", encs("r", 1+rng.IntN(30), 40)...) // bursts overflow
			clk.Advance(time.Duration(rng.IntN(40)) * time.Second)   // pauses expire
			if st := streamStats(t, db, "s"); st.GapEvents > maxGapEntries {
				t.Fatalf("step %d: %d gap events held", i, st.GapEvents)
			}
		}
		st := streamStats(t, db, "s")
		if st.Drops.TTL == 0 || st.Drops.Overflow == 0 {
			t.Fatalf("drops %+v: not both reasons", st.Drops)
		}
		r := newUplinkReader(t, db, "s")
		r.drain()
		rep := verifyGaps(t, db, "s", r.seen, false)
		t.Logf("drops %+v, %d gap events held at most, %d delivered", st.Drops, r.maxSeen, rep.events)
	})
}

// A slow uplink that reads and acks a little while the overflow goes on,
// reconnects now and then (reading again from its ack), or gets stuck
// (reads to the end but never acks): a seq is never handed out twice with
// different content, the gap events held stay bounded, and what was
// delivered accounts for every drop.
func TestGapsSlowUplink(t *testing.T) {
	for _, stuck := range []bool{false, true} {
		t.Run(fmt.Sprintf("stuck=%v", stuck), func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, 3))
			db, _ := openTest(t, &Options{GapEncoder: jsonGapEncoder, GapHistory: 1 << 20, Logger: quietLogger()})
			mustConfigure(t, db, StreamConfig{Name: "s", MaxEvents: 50, Overflow: PolicyDropOldest})
			r := newUplinkReader(t, db, "s")
			for i := 0; i < 4000; i++ {
				mustAppend(t, db, "s", encs("r", 1+rng.IntN(5), 40)...)
				switch x := rng.IntN(10); {
				case x < 5 && stuck:
					r.read(1 + rng.IntN(60))
				case x < 5:
					r.read(1 + rng.IntN(8))
				case x < 7 && !stuck:
					r.ack()
				case x < 8:
					r.reconnect()
				}
			}
			r.maxSeen = max(r.maxSeen, int(streamStats(t, db, "s").GapEvents))
			if r.maxSeen > maxGapEntries {
				t.Fatalf("%d gap events held", r.maxSeen)
			}
			st := streamStats(t, db, "s")
			r.reconnect()
			r.drain()
			rep := verifyGaps(t, db, "s", r.seen, r.maxSeen < maxGapEntries)
			t.Logf("drops %d: %d gap events delivered, at most %d held", st.Drops.Total(), rep.events, r.maxSeen)
		})
	}
}

// Open gaps and gap events survive a restart: the stream record holds them,
// and Open reads no entry.
func TestGapsSurviveReopen(t *testing.T) {
	db, path := openTest(t, &Options{GapEncoder: jsonGapEncoder, GapHistory: 1 << 20, Logger: quietLogger()})
	mustConfigure(t, db, StreamConfig{Name: "s", MaxEvents: 10, Overflow: PolicyDropOldest})
	for i := 0; i < 6; i++ {
		mustAppend(t, db, "s", encs("a", 5, 10)...) // 20 dropped, open
	}
	r := newUplinkReader(t, db, "s")
	for r.read(3) > 0 { // to the end: the gap event is written
	}
	for i := 0; i < 3; i++ {
		mustAppend(t, db, "s", encs("b", 5, 10)...) // more drops, open again
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, &Options{GapEncoder: jsonGapEncoder, GapHistory: 1 << 20, Logger: quietLogger()})
	if n := db.dataTouches.Load(); n != 0 {
		t.Fatalf("Open read %d data buckets", n)
	}
	st := streamStats(t, db, "s")
	if st.GapEvents != 1 || st.UnreportedDrops == 0 {
		t.Fatalf("after reopen: %+v", st)
	}
	r.db = db
	r.reconnect()
	r.drain()
	verifyGaps(t, db, "s", r.seen, false)
}

const gapCrashEnv = "BUFFER_GAP_CRASH_CHILD"

// gapCrashChild overflows a stream while a reader reads and acks it, until
// it is killed. It prints "READ seq data" for each gap event it reads and
// "ACK upTo" once an Ack returned.
func gapCrashChild(path string, seed uint64) {
	db, err := Open(path, &Options{GapEncoder: jsonGapEncoder, LockTimeout: 10 * time.Second, Logger: quietLogger()})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	if err := db.ConfigureStream(StreamConfig{Name: "s", MaxEvents: 100, Overflow: PolicyDropOldest}); err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	say := func(format string, args ...any) {
		fmt.Fprintf(out, format+"\n", args...)
		_ = out.Flush()
	}
	go func() {
		rng := rand.New(rand.NewPCG(seed, 1))
		for {
			if _, err := db.Append(context.Background(), "s", encs("r", 1+rng.IntN(20), 40)); err != nil {
				say("ERR %v", err)
				os.Exit(2)
			}
		}
	}()
	rng := rand.New(rand.NewPCG(seed, 2))
	next := db.Stats().Streams[0].AckedSeq
	for {
		es, err := db.Read("s", next, 1+rng.IntN(30))
		if err != nil {
			say("ERR %v", err)
			os.Exit(2)
		}
		for _, e := range es {
			if len(e.Data) > 0 && e.Data[0] == '{' {
				say("READ %d %s", e.Seq, e.Data)
			}
			next = e.Seq
		}
		if rng.IntN(3) == 0 && next > 0 {
			if err := db.Ack("s", next); err != nil {
				say("ERR %v", err)
				os.Exit(2)
			}
			say("ACK %d", next)
		}
		time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
	}
}

// Killing the gateway in the middle of a sustained overflow with a reader
// going loses no drop: the gap events the reader acked plus those a final
// drain reads account for the drop counter, and no gap event's content
// changed between reads.
func TestGapsCrashKill(t *testing.T) {
	if os.Getenv(gapCrashEnv) != "" {
		seed, _ := strconv.ParseUint(os.Getenv("BUFFER_GAP_CRASH_SEED"), 10, 64)
		gapCrashChild(os.Getenv("BUFFER_CRASH_PATH"), seed)
		return
	}
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 9))
	path := filepath.Join(t.TempDir(), "crash.db")
	seen := map[uint64]string{} // gap events read by any run
	const kills = 12
	for run := 0; run < kills; run++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestGapsCrashKill$")
		cmd.Env = append(os.Environ(), gapCrashEnv+"=1", "BUFFER_CRASH_PATH="+path,
			"BUFFER_GAP_CRASH_SEED="+strconv.FormatUint(seed+uint64(run), 10))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(out)
		killAfter, acks := 5+rng.IntN(60), 0
		killed := false
		for lines.Scan() {
			f := strings.SplitN(lines.Text(), " ", 3)
			switch {
			case len(f) == 3 && f[0] == "READ":
				seq, _ := strconv.ParseUint(f[1], 10, 64)
				if prev, ok := seen[seq]; ok && prev != f[2] {
					t.Fatalf("gap event %d read again with other content:\n%s\n%s", seq, prev, f[2])
				}
				seen[seq] = f[2]
			case len(f) == 2 && f[0] == "ACK":
				acks++
			case len(f) > 0 && f[0] == "ERR":
				t.Fatalf("child: %s", lines.Text())
			}
			if acks >= killAfter && !killed {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				killed = true
			}
		}
		_ = cmd.Wait()
		if !killed {
			t.Fatalf("run %d: child exited by itself", run)
		}
	}
	db, err := Open(path, &Options{GapEncoder: jsonGapEncoder, NoMoveAside: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := streamStats(t, db, "s")
	if st.GapEvents > maxGapEntries {
		t.Fatalf("%d gap events held", st.GapEvents)
	}
	// Gap events the children read and acked are delivered; the rest is
	// still in the store and the final drain reads it.
	r := newUplinkReader(t, db, "s")
	r.reconnect()
	r.drain()
	var sum uint64
	events := 0
	for seq, d := range r.seen {
		if g, ok := decodeGap(t, Entry{Seq: seq, Data: []byte(d)}); ok {
			if prev, ok := seen[seq]; ok && prev != d {
				t.Fatalf("gap event %d changed across the crash:\n%s\n%s", seq, prev, d)
			}
			seen[seq] = d
			_ = g
		}
	}
	for seq, d := range seen {
		g, _ := decodeGap(t, Entry{Seq: seq, Data: []byte(d)})
		sum += g.Count
		events++
	}
	if sum != st.Drops.Total() {
		t.Fatalf("gap events report %d dropped, drop counter %d (%d gap events)", sum, st.Drops.Total(), events)
	}
	t.Logf("%d kills: %d dropped, %d gap events, sum of counts %d", kills, st.Drops.Total(), events, sum)
}
