// Package powercut holds the power-cut tests: the buffer and the gateway
// run on a cut file system (test/cutfs), which keeps every write in memory
// until it is synced, and a cut drops what was not, as a power cut drops
// the page cache. Every event whose append returned (whose PUBACK a
// device saw) must be there afterwards.
//
// The code under test always runs in another process than the file
// system's server: bbolt reads its file through mmap, and a page fault on
// a FUSE file blocks a thread the Go runtime cannot stop, so a garbage
// collection in the serving process would wait for a fault that only that
// process can answer.
package powercut

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegw/gateway/buffer"
	"github.com/edgegw/gateway/test/cutfs"
	"github.com/edgegw/gateway/test/harness"
	"github.com/edgegw/gateway/test/testenv"
)

// childEnv names the buffer file a child process of this test binary
// writes to (bufferChild) instead of running the tests.
const childEnv = "POWERCUT_BUFFER_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		bufferChild(path)
		return
	}
	rc := m.Run()
	harness.Cleanup()
	os.Exit(rc)
}

func mountCut(t *testing.T) *cutfs.FS {
	t.Helper()
	cutfs.Need(t)
	f, err := cutfs.Mount(t.TempDir(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			t.Error(err)
		}
	})
	return f
}

func bufferOptions() *buffer.Options {
	return &buffer.Options{Logger: slog.New(slog.DiscardHandler), CompactRatio: -1, NoMoveAside: true, JournalSize: 256 << 10, MoveInterval: 50 * time.Millisecond}
}

// bufferChild is the writing process: six writers of 1-3 records per
// Append on a reject-new stream, one on a drop-oldest stream of 500, and an
// uplink that acks all but the newest 200 scans every 7 ms. It prints
// "A stream seq data" once an Append returned and "K seq" before each Ack,
// runs until it is killed, and answers each line on its stdin with "M".
func bufferChild(path string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	db, err := buffer.Open(path, bufferOptions())
	if err != nil {
		fail(err)
	}
	for _, c := range []buffer.StreamConfig{
		{Name: "scans", Priority: 10},
		{Name: "telemetry", MaxEvents: 500, Overflow: buffer.PolicyDropOldest},
	} {
		if err := db.ConfigureStream(c); err != nil {
			fail(err)
		}
	}
	var mu sync.Mutex // one line at a time, and the scans' seqs for the uplink
	out := bufio.NewWriter(os.Stdout)
	var scans []uint64
	write := func(stream string, w int) {
		for n := 0; ; n++ {
			k := 1 + rand.IntN(3)
			recs := make([]buffer.Encoder, k)
			datas := make([]string, k)
			for i := range recs {
				datas[i] = fmt.Sprintf("%s/w%d/%d/%d/%0*d", stream, w, n, i, 150, 0)
				d := datas[i]
				recs[i] = func(uint64) ([]byte, error) { return []byte(d), nil }
			}
			first, err := db.Append(context.Background(), stream, recs)
			if err != nil {
				fail(err)
			}
			mu.Lock()
			for i, d := range datas {
				fmt.Fprintf(out, "A %s %d %s\n", stream, first+uint64(i), d)
				if stream == "scans" {
					scans = append(scans, first+uint64(i))
				}
			}
			out.Flush()
			mu.Unlock()
		}
	}
	for w := range 6 {
		go write("scans", w)
	}
	go write("telemetry", 0)
	go func() { // each line on stdin is answered with "M" (see childLog.marks)
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			mu.Lock()
			fmt.Fprintln(out, "M")
			out.Flush()
			mu.Unlock()
		}
	}()
	var acked uint64
	for range time.Tick(7 * time.Millisecond) {
		mu.Lock()
		var upTo uint64
		if n := len(scans); n > 200 {
			upTo = scans[n-200]
		}
		if upTo > acked {
			fmt.Fprintf(out, "K %d\n", upTo) // before the call: an ack may be durable before it returns
			out.Flush()
		}
		mu.Unlock()
		if upTo > acked {
			if err := db.Ack("scans", upTo); err != nil {
				fail(err)
			}
			acked = upTo
		}
	}
}

// appended is a record an Append returned.
type appended struct {
	seq  uint64
	data string
}

// childLog is what the writing process reported.
type childLog struct {
	mu    sync.Mutex
	done  map[string][]appended
	acked uint64
	marks int // "M" lines read
	err   error
}

func (l *childLog) read(r *bufio.Scanner) {
	for r.Scan() {
		f := strings.Fields(r.Text())
		l.mu.Lock()
		switch {
		case len(f) == 4 && f[0] == "A":
			seq, _ := strconv.ParseUint(f[2], 10, 64)
			l.done[f[1]] = append(l.done[f[1]], appended{seq, f[3]})
		case len(f) == 2 && f[0] == "K":
			l.acked, _ = strconv.ParseUint(f[1], 10, 64)
		case len(f) == 1 && f[0] == "M":
			l.marks++
		default:
			l.err = fmt.Errorf("child printed %q", r.Text())
		}
		l.mu.Unlock()
	}
}

// TestBufferPowerCuts runs the writing process (bufferChild) on a cut file
// system with the journal on, small and moved often, and takes 20
// power-cut images of the buffer while it runs (cutfs.Snapshot: what was
// synced, nothing else), each after a random number of appends more, so
// that cuts fall anywhere in a commit, a move or a journal wrap. Each image
// must open without repair, hold every record whose Append had returned
// before the cut and that was not acked, each under the seq Append gave
// it, and give a new record a seq above every one handed out before.
func TestBufferPowerCuts(t *testing.T) {
	f := mountCut(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+filepath.Join(f.Dir, "buffer.db"))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	log := &childLog{done: map[string][]appended{}}
	go func() {
		log.read(bufio.NewScanner(stdout))
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	count := func() (int, error) {
		log.mu.Lock()
		defer log.mu.Unlock()
		return len(log.done["scans"]), log.err
	}
	for cut := range 20 {
		n, _ := count()
		next := n + 100 + rand.IntN(1500)
		testenv.Eventually(t, 60*time.Second, fmt.Sprintf("cut %d: %d scans appended", cut, next), func() error {
			select {
			case err := <-exited:
				t.Fatalf("the writing process exited: %v", err)
			default:
			}
			n, err := count()
			if err != nil {
				t.Fatal(err)
			}
			if n < next {
				return fmt.Errorf("%d appended", n)
			}
			return nil
		})
		log.mu.Lock()
		must := map[string][]appended{}
		for s, as := range log.done {
			must[s] = append([]appended(nil), as...)
		}
		marks := log.marks
		log.mu.Unlock()
		image := t.TempDir()
		if err := f.Snapshot(image); err != nil {
			t.Fatal(err)
		}
		// The uplink keeps acking during the snapshot, and an ack the image
		// holds may have been printed after the list above was taken. The
		// child prints "K" before it acks and answers stdin with "M" in the
		// same stream: once the answer to a line sent now is read, every
		// ack the image can hold has been read too.
		if _, err := fmt.Fprintln(stdin); err != nil {
			t.Fatal(err)
		}
		var ackedBefore uint64
		testenv.Eventually(t, 30*time.Second, fmt.Sprintf("cut %d: the writing process answers", cut), func() error {
			log.mu.Lock()
			defer log.mu.Unlock()
			if log.marks == marks {
				return fmt.Errorf("no answer yet")
			}
			ackedBefore = log.acked
			return nil
		})
		checkImage(t, cut, filepath.Join(image, "buffer.db"), must, ackedBefore)
	}
	written, synced := f.Written()
	n, _ := count()
	t.Logf("20 power cuts under load, each image checked: %d scans appended, %d bytes written to the file system, %d synced", n, written, synced)
}

// checkImage opens a power-cut image as the next boot would and checks it
// against what had been appended before the cut.
func checkImage(t *testing.T, cut int, path string, must map[string][]appended, ackedBefore uint64) {
	t.Helper()
	db, err := buffer.Open(path, bufferOptions())
	if err != nil {
		t.Fatalf("cut %d: the image does not open: %v", cut, err)
	}
	defer db.Close()
	got := map[string]map[uint64]string{}
	for _, s := range []string{"scans", "telemetry"} {
		got[s] = map[uint64]string{}
		for after := uint64(0); ; {
			es, err := db.Read(s, after, 10000)
			if err != nil {
				t.Fatalf("cut %d: read %s: %v", cut, s, err)
			}
			if len(es) == 0 {
				break
			}
			for _, e := range es {
				got[s][e.Seq] = string(e.Data)
				after = e.Seq
			}
		}
	}
	missing, wrong := 0, 0
	for s, as := range must {
		for i, a := range as {
			d, ok := got[s][a.seq]
			switch {
			case ok && d != a.data:
				wrong++
			case ok:
			case s == "scans" && a.seq <= ackedBefore:
				// acked by the uplink: may be gone
			case s == "telemetry" && i < len(as)-1:
				// drop-oldest keeps the newest 500, which may include
				// appends synced after the list was taken: checked below
			default:
				missing++
				if missing <= 3 {
					t.Errorf("cut %d: %s seq %d (%s…) was appended before the cut and is missing", cut, s, a.seq, a.data[:20])
				}
			}
		}
	}
	if missing > 0 || wrong > 0 {
		t.Fatalf("cut %d: %d appended records missing, %d under another seq's data", cut, missing, wrong)
	}
	// The drop-oldest stream holds a run of consecutive seqs (drops take
	// the oldest), 500 of them once more than 500 were appended.
	var lo, hi uint64
	for seq := range got["telemetry"] {
		if lo == 0 || seq < lo {
			lo = seq
		}
		hi = max(hi, seq)
	}
	if n := len(got["telemetry"]); n > 0 && hi-lo+1 != uint64(n) {
		t.Fatalf("cut %d: telemetry holds %d records between seqs %d and %d: a hole", cut, n, lo, hi)
	}
	if n := len(got["telemetry"]); len(must["telemetry"]) > 500 && n != 500 {
		t.Fatalf("cut %d: telemetry holds %d records, want its limit of 500", cut, n)
	}
	// Seqs are never reused: a new record goes after every seq handed out.
	for _, s := range []string{"scans", "telemetry"} {
		first, err := db.Append(context.Background(), s, []buffer.Encoder{func(uint64) ([]byte, error) { return []byte("after the cut"), nil }})
		if err != nil {
			t.Fatalf("cut %d: append after the cut: %v", cut, err)
		}
		var last uint64
		for _, a := range must[s] {
			last = max(last, a.seq)
		}
		if first <= last {
			t.Fatalf("cut %d: %s: a new record got seq %d, but %d had been handed out before the cut", cut, s, first, last)
		}
	}
}
