package buffer

import (
	"testing"
	"time"
)

// fillDB is a DB in the state fillHold reads: a journal, the previous
// commit a synced one-page frame, and the frames so far described by f.
func fillDB(f fillStats) *DB {
	db := &DB{jnl: &journal{}, lastPages: 1, fill: f}
	db.opts.CommitWindow = 2 * time.Millisecond
	db.opts.FillWindow = 10 * time.Millisecond
	return db
}

func TestFillHold(t *testing.T) {
	// 240 bytes per record, 100 bytes of counters per frame, frames
	// compressed to 60%: 0.9 × 4096 ÷ 0.6 = 6,144 uncompressed bytes fit,
	// (6,144 − 100) ÷ 240 = 25 records.
	busy := fillStats{rate: 2000, perRecord: 240, fixed: 100, ratio: 0.6}
	now := time.Now()
	for _, c := range []struct {
		name   string
		db     *DB
		n      int
		first  time.Time
		target int // 0: commit now
	}{
		{"busy", fillDB(busy), 6, now, 25},
		{"uncompressed", fillDB(fillStats{rate: 2000, perRecord: 240, fixed: 100, ratio: 1}), 6, now, 14},
		// 1,000 × 240 B × 10 ms = 2,400 B: a page would not fill in time.
		{"slow", fillDB(fillStats{rate: 1000, perRecord: 240, fixed: 100, ratio: 0.6}), 3, now, 0},
		{"already full", fillDB(busy), 25, now, 0},
		{"window over", fillDB(busy), 6, now.Add(-10 * time.Millisecond), 0},
		{"no frame yet", fillDB(fillStats{}), 6, now, 0},
		{"no journal", func() *DB { db := fillDB(busy); db.jnl = nil; return db }(), 6, now, 0},
		{"last commit to the file", func() *DB { db := fillDB(busy); db.lastPages = 0; return db }(), 6, now, 0},
		{"last frame over a page", func() *DB { db := fillDB(busy); db.lastPages = 2; return db }(), 6, now, 0},
		{"disabled", func() *DB { db := fillDB(busy); db.opts.FillWindow = -1; return db }(), 6, now, 0},
	} {
		target, wait := c.db.fillHold(c.n, c.first)
		if target != c.target {
			t.Errorf("%s: target %d, want %d", c.name, target, c.target)
		}
		if c.target == 0 && wait != 0 {
			t.Errorf("%s: wait %v, want 0", c.name, wait)
		}
		if c.target > 0 && (wait <= 0 || wait > c.db.opts.FillWindow) {
			t.Errorf("%s: wait %v, want in (0, %v]", c.name, wait, c.db.opts.FillWindow)
		}
	}
}

func TestFillStatsRate(t *testing.T) {
	var f fillStats
	start := time.Unix(0, 0)
	// Commits of 6 records every 3 ms, with one of 1 record 0.2 ms after
	// each: 7 records per 3 ms, 2,333 records/s. A mean of per-interval
	// rates would say (6/2.8ms + 1/0.2ms)/2 = 3,571.
	for i := 0; i < 200; i++ {
		f.update(6, 6, 1500, 1600, 1440, start, -1)
		start = start.Add(200 * time.Microsecond)
		f.update(1, 1, 300, 340, 240, start, -1)
		start = start.Add(2800 * time.Microsecond)
	}
	if f.rate < 2200 || f.rate > 2450 {
		t.Errorf("rate %.0f records/s, want about 2,333", f.rate)
	}
	if f.perRecord != 240 || f.fixed != 100 {
		t.Errorf("last frame: %.0f bytes per record and %d fixed, want 240 and 100", f.perRecord, f.fixed)
	}
	if f.ratio < 0.88 || f.ratio > 0.89 {
		t.Errorf("ratio %.3f, want 300/340", f.ratio)
	}
}

// A large request counts for the records a page holds, small ones whole.
func TestSmallRecords(t *testing.T) {
	backlog := []*request{{n: 1000}}
	if got := smallRecords(backlog, 1000*256); got != 16 {
		t.Errorf("a 1,000-record request of 256 bytes each counts %d, want 16", got)
	}
	var trickle []*request
	for range 21 {
		trickle = append(trickle, &request{n: 1})
	}
	if got := smallRecords(trickle, 21*256); got != 21 {
		t.Errorf("21 single-record requests count %d, want 21", got)
	}
	mixed := append(trickle[:4:4], &request{n: 100}, &request{}) // an ack writes no record
	if got := smallRecords(mixed, 104*256); got != 4+16 {
		t.Errorf("4 single records and a 100-record request count %d, want 20", got)
	}
	if got := smallRecords([]*request{{}}, 100); got != 0 {
		t.Errorf("acks only count %d, want 0", got)
	}
}

// Holding is turned off when it slows the arrivals (callers that wait for
// their commits: a closed loop), and kept when callers send at their own
// pace (the held commits are bigger, the rate the same).
func TestFillOffInClosedLoop(t *testing.T) {
	start := time.Now() // fillHold waits until a time after now
	// commit records a commit of n records, every after the previous
	// one; heldFrom: the records it had when held, -1 if not held.
	commit := func(f *fillStats, n int, every time.Duration, heldFrom int) {
		start = start.Add(every)
		f.update(n, n, 60*n+100, 240*n+100, 240*n, start, heldFrom)
	}
	// Closed loop: one caller, a commit of 1 record every 200 µs
	// (5,000/s); held, it can only send one per FillWindow.
	db := fillDB(fillStats{})
	for range 20 {
		commit(&db.fill, 1, 200*time.Microsecond, -1)
	}
	if target, _ := db.fillHold(1, start); target == 0 {
		t.Fatalf("5,000 records/s of 240 bytes: not held (rate %.0f)", db.fill.rate)
	}
	for range fillProbe {
		commit(&db.fill, 1, 10*time.Millisecond, 1) // the hold gathers nothing
	}
	if target, _ := db.fillHold(1, start.Add(900*time.Millisecond)); target != 0 {
		t.Errorf("closed loop: held (target %d) within the second after the probe", target)
	}
	if !db.fill.off.Equal(start.Add(time.Second)) {
		t.Errorf("closed loop: off until %v, want a second after the probe (%v)", db.fill.off, start.Add(time.Second))
	}
	// A second probe that finds the same doubles the time off.
	for range 20 {
		commit(&db.fill, 1, 200*time.Microsecond, -1)
	}
	for range fillProbe {
		commit(&db.fill, 1, 10*time.Millisecond, 1) // the hold gathers nothing
	}
	if want := start.Add(2 * time.Second); !db.fill.off.Equal(want) {
		t.Errorf("closed loop again: off until %v, want %v", db.fill.off, want)
	}

	// Open loop at 2,000 records/s: 6 records every 3 ms free, 20 every
	// 10 ms held. Holding stays on.
	db = fillDB(fillStats{})
	for range 20 {
		commit(&db.fill, 6, 3*time.Millisecond, -1)
	}
	for range 3 * fillProbe {
		commit(&db.fill, 20, 10*time.Millisecond, 6)
	}
	if !db.fill.off.IsZero() {
		t.Errorf("open loop: holding turned off until %v", db.fill.off)
	}
	if target, _ := db.fillHold(6, start); target == 0 {
		t.Errorf("open loop: not held (rate %.0f)", db.fill.rate)
	}

	// The same after a burst (sources starting together, a backlog sent
	// in small writes): 13 records every 2.6 ms free (5,000/s), then the
	// open loop's 2,000/s held. The holds gather records: holding stays on
	// (make bench once measured 14 events a commit instead of 21 when
	// such a start turned it off for a second).
	db = fillDB(fillStats{})
	for range 20 {
		commit(&db.fill, 13, 2600*time.Microsecond, -1)
	}
	for range fillProbe {
		commit(&db.fill, 20, 10*time.Millisecond, 9)
	}
	if !db.fill.off.IsZero() {
		t.Errorf("open loop after a burst: holding turned off until %v", db.fill.off)
	}
}
