package buffer

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestRejectNew(t *testing.T) {
	db, _ := openTest(t, &Options{GapEncoder: testGapEncoder, Now: newClock().Now})
	mustConfigure(t, db, StreamConfig{Name: "s", MaxEvents: 3, MaxBytes: 100, Overflow: PolicyRejectNew})
	mustAppend(t, db, "s", encs("a", 2, 10)...)
	before := db.Stats()
	if _, err := db.Append(context.Background(), "s", encs("b", 2, 10)); !errors.Is(err, ErrStreamFull) {
		t.Fatalf("over MaxEvents: %v", err)
	}
	if _, err := db.Append(context.Background(), "s", encs("b", 1, 81)); !errors.Is(err, ErrStreamFull) {
		t.Fatalf("over MaxBytes: %v", err)
	}
	if after := db.Stats(); !reflect.DeepEqual(before.Streams, after.Streams) {
		t.Fatalf("a rejected append changed the stream:\n%+v\n%+v", before.Streams, after.Streams)
	}
	mustAppend(t, db, "s", encs("c", 1, 80)...)
	if got := seqs(readAll(t, db, "s")); !reflect.DeepEqual(got, []uint64{1, 2, 3}) {
		t.Fatalf("seqs = %v", got)
	}
}

func TestDropOldestRecordsGaps(t *testing.T) {
	db, _ := openTest(t, &Options{GapEncoder: testGapEncoder})
	mustConfigure(t, db, StreamConfig{Name: "s", MaxEvents: 5, Overflow: PolicyDropOldest})
	mustAppend(t, db, "s", encs("a", 5, 10)...) // 1..5
	if first := mustAppend(t, db, "s", encs("b", 2, 10)...); first != 6 {
		t.Fatalf("first = %d", first)
	}
	// Room for 2 events: drop 1..2. Gap events do not count against the
	// limits; the drop is written as one when a reader reaches the end.
	if st := streamStats(t, db, "s"); st.UnreportedDrops != 2 || st.GapEvents != 0 {
		t.Fatalf("stats before the read = %+v", st)
	}
	es := readAll(t, db, "s")
	if got := seqs(es); !reflect.DeepEqual(got, []uint64{3, 4, 5, 6, 7, 8}) {
		t.Fatalf("seqs = %v", got)
	}
	if want := "gap s seq=8 1-2 n=2 overflow"; string(es[5].Data) != want {
		t.Fatalf("gap event = %q, want %q", es[5].Data, want)
	}
	gaps, err := db.Gaps("s")
	if err != nil || len(gaps) != 1 || gaps[0].From != 1 || gaps[0].To != 2 || gaps[0].Count != 2 || gaps[0].Reason != ReasonOverflow {
		t.Fatalf("Gaps = %+v, %v", gaps, err)
	}
	if st := streamStats(t, db, "s"); st.Drops != (Drops{Overflow: 2}) || st.Depth != 6 || st.GapEvents != 1 || st.UnreportedDrops != 0 {
		t.Fatalf("stats = %+v", st)
	}
	if _, err := db.Append(context.Background(), "s", encs("c", 6, 1)); !errors.Is(err, ErrStreamFull) {
		t.Fatalf("batch larger than the stream: %v", err)
	}
}

func TestDropOldestWithoutGapEncoder(t *testing.T) {
	db, _ := openTest(t, nil)
	mustConfigure(t, db, StreamConfig{Name: "s", MaxBytes: 30, Overflow: PolicyDropOldest})
	mustAppend(t, db, "s", encs("a", 3, 10)...)
	mustAppend(t, db, "s", encs("b", 1, 15)...)
	if got := seqs(readAll(t, db, "s")); !reflect.DeepEqual(got, []uint64{3, 4}) {
		t.Fatalf("seqs = %v", got)
	}
	if st := streamStats(t, db, "s"); st.Bytes != 25 || st.Drops.Overflow != 2 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestTTL(t *testing.T) {
	clk := newClock()
	db, _ := openTest(t, &Options{Now: clk.Now, GapEncoder: testGapEncoder})
	mustConfigure(t, db, StreamConfig{Name: "s", MaxAge: time.Minute})
	mustAppend(t, db, "s", encs("a", 2, 10)...) // 1,2 at t0
	clk.Advance(30 * time.Second)
	mustAppend(t, db, "s", encs("b", 1, 10)...) // 3 at t0+30s
	clk.Advance(30 * time.Second)               // 1,2 are exactly MaxAge old
	if first := mustAppend(t, db, "s", encs("c", 1, 10)...); first != 4 {
		t.Fatalf("first = %d, want 4", first)
	}
	es := readAll(t, db, "s") // reaches the end: the gap event takes 5
	if got := seqs(es); !reflect.DeepEqual(got, []uint64{3, 4, 5}) {
		t.Fatalf("seqs = %v", got)
	}
	if string(es[2].Data) != "gap s seq=5 1-2 n=2 ttl" {
		t.Fatalf("gap event %q", es[2].Data)
	}
	clk.Advance(30 * time.Second) // 3 expires; sweep does it
	if err := db.sweepNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	es = readAll(t, db, "s")
	if got := seqs(es); !reflect.DeepEqual(got, []uint64{4, 5, 6}) {
		t.Fatalf("after sweep seqs = %v", got)
	}
	if string(es[2].Data) != "gap s seq=6 3-3 n=1 ttl" {
		t.Fatalf("gap event %q", es[2].Data)
	}
	st := streamStats(t, db, "s")
	if st.Drops.TTL != 3 || st.OldestAge != 30*time.Second || st.FirstSeq != 4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBackgroundSweep(t *testing.T) {
	clk := newClock()
	db, _ := openTest(t, &Options{Now: clk.Now, GapEncoder: testGapEncoder, SweepInterval: time.Millisecond})
	mustConfigure(t, db, StreamConfig{Name: "s", MaxAge: time.Minute})
	mustAppend(t, db, "s", encs("a", 1, 10)...)
	ch := db.Notify("s")
	select { // drain the append's signal
	case <-ch:
	default:
	}
	clk.Advance(time.Hour)
	select {
	case <-ch: // the sweep appended the gap event
	case <-time.After(10 * time.Second):
		t.Fatal("background sweep did not run")
	}
	if st := streamStats(t, db, "s"); st.Drops.TTL != 1 || st.FirstSeq != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDiskBudgetEvictsLowestPriorityDropOldest(t *testing.T) {
	db, _ := openTest(t, &Options{DiskBudget: 100, Now: newClock().Now})
	mustConfigure(t, db, StreamConfig{Name: "low", Priority: 1, Overflow: PolicyDropOldest})
	mustConfigure(t, db, StreamConfig{Name: "mid", Priority: 5, Overflow: PolicyDropOldest})
	mustConfigure(t, db, StreamConfig{Name: "keep", Priority: 0, Overflow: PolicyRejectNew})
	mustConfigure(t, db, StreamConfig{Name: "high", Priority: 9, Overflow: PolicyDropOldest})
	mustAppend(t, db, "keep", encs("k", 2, 10)...) // 20
	mustAppend(t, db, "low", encs("l", 3, 10)...)  // 50
	mustAppend(t, db, "mid", encs("m", 3, 10)...)  // 80
	mustAppend(t, db, "high", encs("h", 1, 35)...) // 115: evict 2 from low (lowest), then fits
	if st := streamStats(t, db, "low"); st.Depth != 1 || st.Drops.Budget != 2 {
		t.Fatalf("low = %+v", st)
	}
	if db.Stats().LiveBytes != 95 {
		t.Fatalf("live = %d", db.Stats().LiveBytes)
	}
	// A low-priority append may not evict higher-priority data.
	if _, err := db.Append(context.Background(), "low", encs("l", 1, 30)); !errors.Is(err, ErrDiskBudget) {
		t.Fatalf("low evicting higher priority: %v", err)
	}
	// Reject-new streams are never evicted, and nothing is written on failure.
	before := db.Stats()
	if _, err := db.Append(context.Background(), "high", encs("h", 1, 100)); !errors.Is(err, ErrDiskBudget) {
		t.Fatalf("budget: %v", err)
	}
	after := db.Stats()
	// Its batch's transaction still commits (a meta page and the freelist).
	after.Commits, after.WrittenBytes, after.JournalWrittenBytes = before.Commits, before.WrittenBytes, before.JournalWrittenBytes
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("failed append changed state:\n%+v\n%+v", before, after)
	}
	mustAppend(t, db, "mid", encs("m", 1, 25)...) // needs 20: low's last (10) then mid's first (10)
	if got := seqs(readAll(t, db, "low")); len(got) != 0 {
		t.Fatalf("low = %v", got)
	}
	if got := seqs(readAll(t, db, "mid")); !reflect.DeepEqual(got, []uint64{2, 3, 4}) {
		t.Fatalf("mid = %v", got)
	}
	if gaps, _ := db.Gaps("mid"); len(gaps) != 1 || gaps[0].Reason != ReasonBudget || gaps[0].From != 1 || gaps[0].To != 1 {
		t.Fatalf("mid gaps = %+v", gaps)
	}
	if got := len(readAll(t, db, "keep")); got != 2 {
		t.Fatalf("keep lost entries: %d", got)
	}
}

func TestMaxFileSize(t *testing.T) {
	db, _ := openTest(t, &Options{MaxFileSize: 1 << 20})
	mustConfigure(t, db, StreamConfig{Name: "s"})
	var err error
	var last uint64
	for i := 0; i < 1000 && err == nil; i++ {
		var f uint64
		f, err = db.Append(context.Background(), "s", encs("x", 10, 1000))
		if err == nil {
			last = f + 9
		}
	}
	if !errors.Is(err, ErrDiskBudget) {
		t.Fatalf("err = %v", err)
	}
	if st := streamStats(t, db, "s"); st.NextSeq != last+1 || st.Depth != int64(last) {
		t.Fatalf("stats %+v after last good seq %d", st, last)
	}
	if fs := db.Stats().FileSize; fs > 1<<20 {
		t.Fatalf("file grew to %d", fs)
	}
	if err := db.Ack("s", last); err != nil {
		t.Fatalf("ack when full: %v", err)
	}
	if f := mustAppend(t, db, "s", encs("y", 10, 1000)...); f != last+1 {
		t.Fatalf("after freeing, first = %d, want %d", f, last+1)
	}
}
