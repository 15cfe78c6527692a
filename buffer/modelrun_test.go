package buffer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestModel(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	// journal: the JournalSize (0: the default 4 MiB, moved only by
	// compactions, checks of the FIFO, reopens and commits it does not
	// carry; 64 KiB: also moved when half full; -1: none).
	for i, c := range []struct {
		gaps, budget bool
		journal      int64
	}{{true, false, 0}, {true, true, 64 << 10}, {false, true, 0}, {false, false, 64 << 10}, {true, true, -1}} {
		seed := seed + uint64(i)
		t.Run(fmt.Sprintf("gaps=%v/budget=%v/journal=%d/seed=%d", c.gaps, c.budget, c.journal, seed), func(t *testing.T) {
			t.Logf("seed %d (pass it to runModel to reproduce)", seed)
			runModel(t, seed, c.gaps, c.budget, c.journal, 1500)
		})
	}
}

func runModel(t *testing.T, seed uint64, withGaps, withBudget bool, journal int64, steps int) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	clk := newClock()
	opts := &Options{Now: clk.Now, GapHistory: 40, SweepInterval: time.Hour, CompactRatio: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), JournalSize: journal}
	if withGaps {
		opts.GapEncoder = testGapEncoder
	}
	if withBudget {
		opts.DiskBudget = int64(300 + rng.IntN(1200))
	}
	opts.DedupWindow = 1 + rng.IntN(10)
	m := &model{streams: map[string]*mStream{}, opts: opts}
	path := filepath.Join(t.TempDir(), "model.db")
	db := openAt(t, path, opts)
	ctx := context.Background()
	names := []string{"a", "b", "c"}
	errs := map[string]int{}
	replays := 0 // crashes with commits in the journal only
	randCfg := func(name string) StreamConfig {
		c := StreamConfig{Name: name, Priority: rng.IntN(3), Overflow: PolicyDropOldest}
		if rng.IntN(3) == 0 {
			c.Overflow = PolicyRejectNew
		}
		if rng.IntN(2) == 0 {
			c.MaxEvents = int64(1 + rng.IntN(15))
		}
		if rng.IntN(2) == 0 {
			c.MaxBytes = int64(60 + rng.IntN(500))
		}
		if rng.IntN(3) == 0 {
			c.MaxAge = time.Duration(1+rng.IntN(10)) * time.Second
		}
		return c
	}
	for _, n := range names {
		c := randCfg(n)
		mustConfigure(t, db, c)
		m.streams[n] = &mStream{cfg: c, next: 1}
	}
	for step := 0; step < steps; step++ {
		m.now = clk.Now()
		name := names[rng.IntN(len(names))]
		s := m.streams[name]
		var op string
		switch r := rng.IntN(100); {
		case r < 30:
			op = "append"
			recs := make([]Encoder, 1+rng.IntN(4))
			for i := range recs {
				recs[i] = seqData(fmt.Sprint(name, step), 5+rng.IntN(50))
			}
			wantFirst, wantErr := m.append(name, recs)
			if wantErr != nil {
				errs[wantErr.Error()]++
			}
			m.endTx()
			first, err := db.Append(ctx, name, recs)
			if !errors.Is(err, wantErr) || (wantErr == nil && err != nil) || first != wantFirst {
				t.Fatalf("step %d append %s: got (%d, %v), model (%d, %v)", step, name, first, err, wantFirst, wantErr)
			}
		case r < 45:
			op = "appendRecords"
			recs := make([]Record, 1+rng.IntN(4))
			for i := range recs {
				recs[i] = Record{Enc: seqData(fmt.Sprint(name, step), 5+rng.IntN(50)), CheckDup: rng.IntN(2) == 0}
				if k := rng.IntN(13); k < 12 || recs[i].CheckDup {
					recs[i].Key = []byte(fmt.Sprint("key", k))
				}
			}
			want, wantErr := m.appendRecords(name, recs)
			m.endTx()
			if wantErr != nil {
				errs[wantErr.Error()]++
			}
			got, err := db.AppendRecords(ctx, name, recs)
			if !errors.Is(err, wantErr) || (wantErr == nil && err != nil) || !reflect.DeepEqual(got, want) {
				t.Fatalf("step %d appendRecords %s: got (%v, %v), model (%v, %v)", step, name, got, err, want, wantErr)
			}
		case r < 65:
			op = "ack"
			upTo := s.acked + uint64(rng.IntN(6))
			if rng.IntN(10) == 0 {
				upTo = s.next + uint64(rng.IntN(2)) // beyond the end
			}
			wantErr := m.ack(name, upTo)
			if err := db.Ack(name, upTo); !errors.Is(err, wantErr) || (wantErr == nil && err != nil) {
				t.Fatalf("step %d ack %s %d: got %v, model %v", step, name, upTo, err, wantErr)
			}
		case r < 75:
			op = "read"
			after := s.acked + uint64(rng.IntN(5))
			max := 1 + rng.IntN(5)
			want := m.read(name, after, max)
			got, err := db.Read(name, after, max)
			if err != nil {
				t.Fatal(err)
			}
			compareEntries(t, step, name, got, want)
		case r < 85:
			op = "clock"
			clk.Advance(time.Duration(rng.IntN(3000)) * time.Millisecond)
		case r < 90:
			op = "sweep"
			m.sweep()
			m.endTx()
			if err := db.sweepNow(ctx); err != nil {
				t.Fatal(err)
			}
		case r < 94:
			op = "configure"
			c := randCfg(name)
			s.cfg = c
			mustConfigure(t, db, c)
		case r < 98:
			// Half of the reopens follow a crash: everything acknowledged
			// must come back from the file and the journal's replay.
			if rng.IntN(2) == 0 {
				op = "reopen"
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				op = "crash"
				if crash(t, db) {
					replays++
				}
			}
			db = openAt(t, path, opts)
		default:
			op = "compact"
			if err := db.Compact(ctx); err != nil {
				t.Fatal(err)
			}
		}
		compareModel(t, step, op, db, m, step%50 == 0)
	}
	compareModel(t, steps, "end", db, m, true)
	var d Drops
	var dups uint64
	for _, s := range m.streams {
		d.Overflow += s.drops.Overflow
		d.TTL += s.drops.TTL
		d.Budget += s.drops.Budget
		dups += s.dups
	}
	var gapEvents int
	for _, s := range m.streams {
		gapEvents += s.gapEvents()
	}
	t.Logf("budget %d, drops %+v, errors %v, dedup window %d, duplicates %d, gap events held %d, crashes replayed %d", opts.DiskBudget, d, errs, opts.DedupWindow, dups, gapEvents, replays)
	if journal >= 0 && steps >= 1000 && replays == 0 {
		t.Fatalf("no crash left commits in the journal: the replay was not tested")
	}
}

func compareEntries(t *testing.T, step int, name string, got []Entry, want []mEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("step %d %s: %d entries, model %d (%v)", step, name, len(got), len(want), seqs(got))
	}
	for i := range got {
		if got[i].Seq != want[i].seq || string(got[i].Data) != string(want[i].data) {
			t.Fatalf("step %d %s entry %d: (%d %q), model (%d %q)", step, name, i, got[i].Seq, got[i].Data, want[i].seq, want[i].data)
		}
	}
}

func compareModel(t *testing.T, step int, op string, db *DB, m *model, full bool) {
	t.Helper()
	st := db.Stats()
	if st.LiveBytes != m.total() {
		t.Fatalf("step %d (%s): live bytes %d, model %d", step, op, st.LiveBytes, m.total())
	}
	for _, ss := range st.Streams {
		s := m.streams[ss.Config.Name]
		first := s.next
		var oldest time.Time
		if len(s.entries) > 0 {
			first = s.entries[0].seq
		}
		if d := s.dataEntries(); len(d) > 0 {
			oldest = time.Unix(0, d[0].at)
		}
		if ss.Depth != int64(len(s.entries)) || ss.Bytes != s.bytes() || ss.NextSeq != s.next ||
			ss.FirstSeq != first || ss.AckedSeq != s.acked || ss.Drops != s.drops || !ss.Oldest.Equal(oldest) ||
			ss.Dups != s.dups || ss.DedupKeys != int64(len(s.fifo)) ||
			ss.GapEvents != int64(s.gapEvents()) || ss.UnreportedDrops != s.unreported() {
			t.Fatalf("step %d (%s) stream %s:\n got   %+v\n model depth=%d bytes=%d first=%d next=%d acked=%d drops=%+v oldest=%v dups=%d keys=%d gap events=%d unreported=%d",
				step, op, ss.Config.Name, ss, len(s.entries), s.bytes(), first, s.next, s.acked, s.drops, oldest, s.dups, len(s.fifo), s.gapEvents(), s.unreported())
		}
		// Every drop is in exactly one gap event or still open.
		if m.opts.GapEncoder != nil && s.reported+s.unreported() != s.drops.Total() {
			t.Fatalf("step %d (%s) stream %s: gap events report %d, open %d, drops %d",
				step, op, ss.Config.Name, s.reported, s.unreported(), s.drops.Total())
		}
		if n := s.gapEvents(); n > maxGapEntries {
			t.Fatalf("step %d (%s) stream %s: %d gap events held", step, op, ss.Config.Name, n)
		}
		if !full {
			continue
		}
		if got := dedupFIFO(t, db, ss.Config.Name); !reflect.DeepEqual(got, s.fifo) && len(got)+len(s.fifo) > 0 {
			t.Fatalf("step %d %s: dedup FIFO %v, model %v", step, ss.Config.Name, got, s.fifo)
		}
		compareEntries(t, step, ss.Config.Name, readQuiet(t, db, ss.Config.Name), s.entries)
		gaps, err := db.Gaps(ss.Config.Name)
		if err != nil || len(gaps) != len(s.gaps) {
			t.Fatalf("step %d %s: %d gaps (%v), model %d", step, ss.Config.Name, len(gaps), err, len(s.gaps))
		}
		for i := range gaps {
			g, w := gaps[i], s.gaps[i]
			if g.From != w.From || g.To != w.To || g.Count != w.Count || g.Reason != w.Reason || !g.At.Equal(w.At) {
				t.Fatalf("step %d %s gap %d: %+v, model %+v", step, ss.Config.Name, i, g, w)
			}
		}
	}
}

// dedupFIFO returns a stream's dedup FIFO, oldest first.
func dedupFIFO(t *testing.T, db *DB, stream string) []mKey {
	t.Helper()
	var out []mKey
	// The FIFO is read from the file: move the journal's commits into it.
	if err := db.moveJournal(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := db.view(func(v *viewTx) error {
		b := v.tx.Bucket(bktDedup).Bucket([]byte(stream))
		if b == nil {
			return nil
		}
		return b.Bucket(bktDedupFIFO).ForEach(func(seq, k []byte) error {
			out = append(out, mKey{keySeq(seq), string(k)})
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
