package buffer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestAppendReadAck(t *testing.T) {
	clk := newClock()
	db, _ := openTest(t, &Options{Now: clk.Now})
	mustConfigure(t, db, StreamConfig{Name: "scans"})
	if first := mustAppend(t, db, "scans", encs("a", 3, 10)...); first != 1 {
		t.Fatalf("first seq = %d, want 1", first)
	}
	clk.Advance(time.Second)
	if first := mustAppend(t, db, "scans", encs("b", 2, 10)...); first != 4 {
		t.Fatalf("first seq = %d, want 4", first)
	}
	es := readAll(t, db, "scans")
	if got, want := seqs(es), []uint64{1, 2, 3, 4, 5}; !reflect.DeepEqual(got, want) {
		t.Fatalf("seqs = %v, want %v", got, want)
	}
	for _, e := range es {
		if !bytes.HasPrefix(e.Data, fmt.Appendf(nil, ":%d:", e.Seq)[1:]) && !bytes.Contains(e.Data, fmt.Appendf(nil, ":%d:", e.Seq)) {
			t.Fatalf("entry %d holds %q", e.Seq, e.Data)
		}
	}
	if es, _ := db.Read("scans", 2, 2); !reflect.DeepEqual(seqs(es), []uint64{3, 4}) {
		t.Fatalf("Read(after 2, max 2) = %v", seqs(es))
	}
	st := streamStats(t, db, "scans")
	if st.Depth != 5 || st.Bytes != 50 || st.NextSeq != 6 || st.FirstSeq != 1 || st.OldestAge != time.Second {
		t.Fatalf("stats = %+v", st)
	}
	if err := db.Ack("scans", 3); err != nil {
		t.Fatal(err)
	}
	if got := seqs(readAll(t, db, "scans")); !reflect.DeepEqual(got, []uint64{4, 5}) {
		t.Fatalf("after ack: %v", got)
	}
	st = streamStats(t, db, "scans")
	if st.Depth != 2 || st.Bytes != 20 || st.AckedSeq != 3 || st.FirstSeq != 4 || st.OldestAge != 0 {
		t.Fatalf("stats after ack = %+v", st)
	}
	if err := db.Ack("scans", 2); err != nil {
		t.Fatalf("ack below acked: %v", err)
	}
	if err := db.Ack("scans", 6); !errors.Is(err, ErrInvalidAck) {
		t.Fatalf("ack beyond end: %v", err)
	}
	if _, err := db.Append(context.Background(), "nope", encs("x", 1, 1)); !errors.Is(err, ErrUnknownStream) {
		t.Fatalf("unknown stream: %v", err)
	}
	if _, err := db.Read("nope", 0, 1); !errors.Is(err, ErrUnknownStream) {
		t.Fatalf("unknown stream read: %v", err)
	}
}

func TestReadReturnsCopies(t *testing.T) {
	db, _ := openTest(t, nil)
	mustConfigure(t, db, StreamConfig{Name: "s"})
	mustAppend(t, db, "s", data("hello"))
	es := readAll(t, db, "s")
	for i := 0; i < 300; i++ { // grow the file so bbolt remaps
		mustAppend(t, db, "s", encs("p", 50, 4000)...)
		if i == 10 {
			_ = db.Ack("s", 1)
		}
	}
	if string(es[0].Data) != "hello" {
		t.Fatalf("entry changed under us: %q", es[0].Data)
	}
}

func TestSeqNeverReused(t *testing.T) {
	db, path := openTest(t, nil)
	mustConfigure(t, db, StreamConfig{Name: "s"})
	mustAppend(t, db, "s", encs("a", 10, 5)...)
	if err := db.Ack("s", 10); err != nil {
		t.Fatal(err)
	}
	if err := db.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if first := mustAppend(t, db, "s", data("x")); first != 11 {
		t.Fatalf("after ack+compact first = %d, want 11", first)
	}
	_ = db.Ack("s", 11)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, nil)
	if first := mustAppend(t, db, "s", data("y")); first != 12 {
		t.Fatalf("after reopen first = %d, want 12", first)
	}
}

func TestEncoderErrorFailsOnlyItsCall(t *testing.T) {
	db, _ := openTest(t, nil)
	mustConfigure(t, db, StreamConfig{Name: "s"})
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs := encs(fmt.Sprint("c", i), 3, 8)
			if i == 3 {
				recs[1] = func(uint64) ([]byte, error) { return nil, boom }
			}
			_, errs[i] = db.Append(context.Background(), "s", recs)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (i == 3) != errors.Is(err, boom) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	es := readAll(t, db, "s")
	if len(es) != 21 {
		t.Fatalf("%d entries, want 21", len(es))
	}
	for i, e := range es {
		if e.Seq != uint64(i+1) || bytes.HasPrefix(e.Data, []byte("c3:")) {
			t.Fatalf("entry %d: seq %d %q", i, e.Seq, e.Data)
		}
	}
}

func TestGroupCommitSharesOneTransaction(t *testing.T) {
	db, _ := openTest(t, nil)
	mustConfigure(t, db, StreamConfig{Name: "s"})
	release, entered := make(chan struct{}), make(chan struct{})
	blocker := func(uint64) ([]byte, error) { close(entered); <-release; return []byte("first"), nil }
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = db.Append(context.Background(), "s", []Encoder{blocker}) }()
	<-entered // the committer is busy with the blocker
	before := db.commits.Load()
	const n = 15
	firsts := make([]uint64, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			firsts[i] = mustAppend(t, db, "s", encs("x", 2, 8)...)
		}()
	}
	for db.inflight.Load() != n+1 { // all queued behind the blocker
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if got := db.commits.Load() - before; got > 2 {
		t.Fatalf("%d write transactions for %d queued appends, want the queued ones to share one", got, n)
	}
	seen := map[uint64]bool{}
	for _, f := range firsts {
		if f < 2 || seen[f] || seen[f+1] {
			t.Fatalf("overlapping seqs: %v", firsts)
		}
		seen[f], seen[f+1] = true, true
	}
}

func TestNotify(t *testing.T) {
	db, _ := openTest(t, nil)
	ch := db.Notify("s") // before the stream exists
	mustConfigure(t, db, StreamConfig{Name: "s"})
	mustConfigure(t, db, StreamConfig{Name: "t"})
	mustAppend(t, db, "t", data("x"))
	select {
	case <-ch:
		t.Fatal("signalled for another stream")
	default:
	}
	mustAppend(t, db, "s", data("x"))
	mustAppend(t, db, "s", data("y"))
	<-ch // capacity 1: one signal for two commits
	select {
	case <-ch:
		t.Fatal("more than one pending signal")
	default:
	}
}

func TestContextCancelledBeforeCommit(t *testing.T) {
	db, _ := openTest(t, nil)
	mustConfigure(t, db, StreamConfig{Name: "s"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.Append(ctx, "s", encs("x", 1, 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if st := streamStats(t, db, "s"); st.Depth != 0 || st.NextSeq != 1 {
		t.Fatalf("cancelled append wrote: %+v", st)
	}
}

// OnCommit sees every successful write transaction with its records.
func TestOnCommit(t *testing.T) {
	var mu sync.Mutex
	var records []int
	opts := &Options{OnCommit: func(n int, took time.Duration) {
		if took <= 0 {
			t.Errorf("commit took %s", took)
		}
		mu.Lock()
		records = append(records, n)
		mu.Unlock()
	}}
	db, _ := openTest(t, opts)
	if err := db.ConfigureStream(StreamConfig{Name: "s"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	records = nil // the stream's configuration was a commit too
	mu.Unlock()
	if _, err := db.Append(context.Background(), "s", []Encoder{data("a"), data("b"), data("c")}); err != nil {
		t.Fatal(err)
	}
	if err := db.Ack("s", 2); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(records) != 2 || records[0] != 3 {
		t.Fatalf("OnCommit saw %v, want [3 <ack>]", records)
	}
}
