package security

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edgegw/gateway/buffer"
)

type wallClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *wallClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *wallClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// A wall-clock jump on the gateway, against the real buffer with an injected
// clock (buffer.Options.Now):
//
//   - seqs stay strictly increasing (they never depend on the clock), also
//     across a reopen with the clock set back;
//   - TTL (MaxAge) expiry drops a prefix of the stream, in seq order, each
//     entry once its own append time is MaxAge behind the clock. After a
//     backward jump of J, entries appended before it are kept up to J longer
//     (their append times are "in the future"), and entries appended after it
//     wait behind them: nothing expires early, nothing is kept beyond
//     MaxAge+J. A forward jump of J ages every entry by J: entries older
//     than MaxAge-J expire at once, and are counted and recorded as ttl gaps.
//   - every drop is counted exactly, in Stats and in the gap records.
func TestBufferClockJumps(t *testing.T) {
	T := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clk := &wallClock{t: T}
	path := filepath.Join(t.TempDir(), "buffer.db")
	open := func() *buffer.DB {
		db, err := buffer.Open(path, &buffer.Options{Now: clk.Now, SweepInterval: time.Hour, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []buffer.StreamConfig{
			{Name: "scans", MaxAge: 2 * time.Hour},
			{Name: "telemetry", MaxAge: 48 * time.Hour, Overflow: buffer.PolicyDropOldest},
		} {
			if err := db.ConfigureStream(c); err != nil {
				t.Fatal(err)
			}
		}
		return db
	}
	db := open()
	defer func() { _ = db.Close() }()
	var last = map[string]uint64{}
	appendN := func(stream string, n int) {
		t.Helper()
		recs := make([]buffer.Encoder, n)
		for i := range recs {
			recs[i] = func(seq uint64) ([]byte, error) { return []byte{byte(seq)}, nil }
		}
		first, err := db.Append(context.Background(), stream, recs)
		if err != nil {
			t.Fatal(err)
		}
		if first <= last[stream] {
			t.Fatalf("%s: seq %d after %d at %v", stream, first, last[stream], clk.Now())
		}
		last[stream] = first + uint64(n) - 1
	}
	state := func(stream string) (buffer.StreamStats, []buffer.Gap) {
		t.Helper()
		for _, s := range db.Stats().Streams {
			if s.Config.Name == stream {
				gaps, err := db.Gaps(stream)
				if err != nil {
					t.Fatal(err)
				}
				return s, gaps
			}
		}
		t.Fatalf("no stream %s", stream)
		return buffer.StreamStats{}, nil
	}
	expect := func(stream string, first, next, ttl uint64, gaps ...[2]uint64) {
		t.Helper()
		s, gs := state(stream)
		if s.FirstSeq != first || s.NextSeq != next || s.Drops.TTL != ttl {
			t.Fatalf("at %v %s: first %d next %d ttl drops %d, want %d %d %d", clk.Now(), stream, s.FirstSeq, s.NextSeq, s.Drops.TTL, first, next, ttl)
		}
		if len(gs) != len(gaps) {
			t.Fatalf("%s gaps %+v, want %v", stream, gs, gaps)
		}
		for i, g := range gaps {
			if gs[i].From != g[0] || gs[i].To != g[1] || gs[i].Count != g[1]-g[0]+1 || gs[i].Reason != buffer.ReasonTTL {
				t.Fatalf("%s gap %d: %+v, want %v ttl", stream, i, gs[i], g)
			}
		}
	}

	appendN("scans", 10) // 1-10 at T
	clk.Set(T.Add(30 * time.Minute))
	appendN("scans", 10) // 11-20 at T+30m
	appendN("telemetry", 10)

	// NTP pulls the clock back an hour.
	clk.Set(T.Add(-30 * time.Minute))
	appendN("scans", 10) // 21-30 at T-30m
	if s, _ := state("scans"); s.OldestAge != 0 {
		t.Fatalf("oldest age %v with the oldest entry in the future", s.OldestAge)
	}
	// Reopening with the clock back does not reset or reuse seqs.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open()
	appendN("scans", 1) // 31 at T-30m
	expect("scans", 1, 32, 0)

	// T+1h59m: 21-31 are 2h29m old by the clock, but 1-10 (1h59m) are not:
	// expiry is in seq order, nothing goes.
	clk.Set(T.Add(2*time.Hour - time.Minute))
	appendN("scans", 1) // 32
	expect("scans", 1, 33, 0)
	// T+2h: 1-10 expire, exactly; 11-20 (1h30m) hold 21-31 back.
	clk.Set(T.Add(2 * time.Hour))
	appendN("scans", 1) // 33
	expect("scans", 11, 34, 10, [2]uint64{1, 10})
	// T+2h30m: 11-20 expire, and with them 21-31; 32 (31m) and 33 stay.
	clk.Set(T.Add(150 * time.Minute))
	appendN("scans", 1) // 34
	expect("scans", 32, 35, 31, [2]uint64{1, 10}, [2]uint64{11, 31})

	// The clock jumps a day forward: telemetry (48h TTL, appended at
	// T+30m) is now 1d2h old by the clock and stays; scans 32-34 (2h TTL)
	// expire at once.
	clk.Set(T.Add(150*time.Minute + 24*time.Hour))
	appendN("scans", 1)     // 35
	appendN("telemetry", 1) // 11
	expect("scans", 35, 36, 34, [2]uint64{1, 10}, [2]uint64{11, 31}, [2]uint64{32, 34})
	expect("telemetry", 1, 12, 0)
	// And once 48h have passed by the clock since T+30m, telemetry 1-10 go.
	clk.Set(T.Add(30*time.Minute + 48*time.Hour))
	appendN("telemetry", 1) // 12
	expect("telemetry", 11, 13, 10, [2]uint64{1, 10})
}
