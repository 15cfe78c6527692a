package buffer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"testing"
	"time"
)

// journalOpts keep every commit in the journal until the test moves it.
func journalOpts() *Options {
	return &Options{MoveInterval: time.Hour, SweepInterval: time.Hour}
}

// crash leaves db as a kill -9 would: the committer stopped, nothing moved
// from the journal into the file, the files closed (what the process wrote
// is in the page cache, as after a kill). Close is a no-op afterwards. It
// reports whether the journal held commits not moved into the file.
func crash(t testing.TB, db *DB) (journaled bool) {
	t.Helper()
	db.closeOnce.Do(func() {
		db.sendMu.Lock()
		db.closed = true
		close(db.reqs)
		db.sendMu.Unlock()
		close(db.stop)
		db.wg.Wait()
		journaled = db.jnl != nil && db.jnl.off > 0 // the committer is gone: no race
		db.abortTx()
		if db.jnl != nil {
			_ = db.jnl.close()
		}
		db.swapMu.Lock()
		_ = db.bolt.Close()
		db.bolt = nil
		db.swapMu.Unlock()
	})
	return journaled
}

// noise encodes size random bytes, seeded by the seq: a payload that does
// not compress.
func noise(size int) Encoder {
	return func(seq uint64) ([]byte, error) {
		b := make([]byte, size)
		rng := rand.New(rand.NewPCG(seq, 1))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b, nil
	}
}

// letters encodes size random lowercase letters, seeded by the seq (the
// payload of BenchmarkFlashWrites): it compresses to about 60%.
func letters(size int) Encoder {
	return func(seq uint64) ([]byte, error) {
		b := make([]byte, size)
		rng := rand.New(rand.NewPCG(seq, 2))
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		return b, nil
	}
}

// frameOf is the frame of ops, uncompressed: as format 5 wrote every frame.
func frameOf(gen, prev uint64, ops []jop) []byte {
	f, _ := appendFrame(nil, gen, prev, appendOps(nil, ops), nil)
	return f
}

// frameBounds returns where each frame of the journal's current generation
// ends, parsing the file independently of readFrames.
func frameBounds(t *testing.T, path string) []int64 {
	t.Helper()
	raw, err := os.ReadFile(path + journalSuffix)
	if err != nil {
		t.Fatal(err)
	}
	var ends []int64
	var gen uint64
	at := func(off int) bool {
		return off+frameHeader <= len(raw) && isMagic(binary.BigEndian.Uint32(raw[off:])) &&
			(off == 0 || binary.BigEndian.Uint64(raw[off+8:]) == gen && binary.BigEndian.Uint64(raw[off+16:]) == uint64(ends[len(ends)-1]))
	}
	for off := 0; ; {
		if !at(off) {
			if off = (off + journalPage - 1) / journalPage * journalPage; !at(off) {
				break
			}
		}
		if off == 0 {
			gen = binary.BigEndian.Uint64(raw[8:])
		}
		off += frameHeader + int(binary.BigEndian.Uint32(raw[off+4:]))
		ends = append(ends, int64(off))
	}
	return ends
}

func isMagic(m uint32) bool { return m == journalMagic || m == journalMagicZ }

func TestJournalReplayAfterCrash(t *testing.T) {
	opts := journalOpts()
	db, path := openTest(t, opts)
	mustConfigure(t, db, StreamConfig{Name: "a"})
	mustConfigure(t, db, StreamConfig{Name: "b", MaxEvents: 5, Overflow: PolicyDropOldest})
	// The first keyed append creates the stream's dedup bucket: a commit
	// to the file.
	mustAppendRecords(t, db, "b", rec("k0", true))
	moves := db.Stats().Moves
	for i := 0; i < 10; i++ {
		mustAppend(t, db, "a", encs("a", 3, 100)...)
	}
	mustAppendRecords(t, db, "b", rec("k1", true), rec("k2", true))
	if err := db.Ack("a", 12); err != nil {
		t.Fatal(err)
	}
	if st := db.Stats(); st.Moves != moves {
		t.Fatalf("%d moves: the test needs the commits in the journal", st.Moves-moves)
	}
	// The file alone does not hold them yet: a reader of the file would
	// see no entries of a.
	if n := countFileEntries(t, db, "a"); n != 0 {
		t.Fatalf("file holds %d entries of a before any move", n)
	}
	wantA, wantB, want := readAll(t, db, "a"), readAll(t, db, "b"), db.Stats()
	if len(wantA) != 18 || wantA[0].Seq != 13 {
		t.Fatalf("before the crash: %d entries from %d", len(wantA), wantA[0].Seq)
	}
	crash(t, db)

	// A read-only open must not show the file without the journal.
	if _, err := Open(path, &Options{ReadOnly: true}); !errors.Is(err, ErrReplayPending) {
		t.Fatalf("read-only open with a journal to replay: %v", err)
	}
	db2 := openAt(t, path, opts)
	if err := db2.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, db2, "a"); !reflect.DeepEqual(got, wantA) {
		t.Fatalf("stream a after replay: %v, want %v", seqs(got), seqs(wantA))
	}
	if got := readAll(t, db2, "b"); !reflect.DeepEqual(got, wantB) {
		t.Fatalf("stream b after replay: %v, want %v", seqs(got), seqs(wantB))
	}
	got := db2.Stats()
	for _, s := range []*Stats{&got, &want} {
		s.Boot, s.FileSize, s.Commits, s.WrittenBytes, s.Moves, s.JournalWrittenBytes = 0, 0, 0, 0, 0, 0
		for i := range s.Streams {
			s.Streams[i].OldestAge = 0
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("stats after replay:\n%+v\nwant\n%+v", got, want)
	}
	// The replay is in the file now: the dedup index and seqs carry on.
	if n := countFileEntries(t, db2, "a"); n != 18 {
		t.Fatalf("file holds %d entries of a after replay, want 18", n)
	}
	wantAppended(t, mustAppendRecords(t, db2, "b", rec("k2", true), rec("k3", true)), Appended{3, true}, Appended{4, false})
	if first := mustAppend(t, db2, "a", data("x")); first != 31 {
		t.Fatalf("next seq of a %d, want 31", first)
	}
}

// countFileEntries counts the entries of a stream in the file alone.
func countFileEntries(t *testing.T, db *DB, stream string) int {
	t.Helper()
	n := 0
	err := db.view(func(v *viewTx) error {
		n = v.tx.Bucket(bktData).Bucket([]byte(stream)).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A frame torn or damaged anywhere (a crash during its write: its callers
// were never answered) ends the replay there: the frames before it are
// replayed, it and everything after it are not, and the seqs it would
// have taken are assigned again.
func TestJournalDamagedFrame(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(raw []byte, start, end int64) []byte
	}{
		{"torn", func(raw []byte, start, end int64) []byte { return raw[:end-7] }},
		{"crc", func(raw []byte, start, end int64) []byte { raw[end-3] ^= 0x40; return raw }},
		{"header", func(raw []byte, start, end int64) []byte { raw[start+5] ^= 0x01; return raw }},
		{"zeroed", func(raw []byte, start, end int64) []byte { clear(raw[start:end]); return raw }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, path := openTest(t, journalOpts())
			mustConfigure(t, db, StreamConfig{Name: "s"})
			mustAppend(t, db, "s", encs("one", 2, 50)...)
			mustAppend(t, db, "s", encs("two", 2, 50)...)
			want := readAll(t, db, "s")
			mustAppend(t, db, "s", encs("three", 2, 50)...)
			mustAppend(t, db, "s", encs("four", 2, 50)...)
			ends := frameBounds(t, path)
			if len(ends) != 4 {
				t.Fatalf("%d frames, want 4 (one per append)", len(ends))
			}
			crash(t, db)
			raw, err := os.ReadFile(path + journalSuffix)
			if err != nil {
				t.Fatal(err)
			}
			raw = tc.damage(raw, ends[1], ends[2])
			if err := os.WriteFile(path+journalSuffix, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			db2 := openAt(t, path, journalOpts())
			if err := db2.Check(context.Background()); err != nil {
				t.Fatal(err)
			}
			compareEntriesExact(t, readAll(t, db2, "s"), want)
			if first := mustAppend(t, db2, "s", data("five")); first != 5 {
				t.Fatalf("next seq %d, want 5", first)
			}
		})
	}
}

// After a move the journal starts again at offset 0 with the next
// generation; the frames of the old generation after the new ones must
// never be replayed, even where one starts exactly where a new one ends.
func TestJournalStaleGenerationIgnored(t *testing.T) {
	db, path := openTest(t, journalOpts())
	mustConfigure(t, db, StreamConfig{Name: "s"})
	// Same-sized appends of most of a page: each frame is as long as the
	// others and starts a page, so the stale frame after the new one
	// (whose page the new write zeroes to its end) is exactly where the
	// new one's successor would be, and names the new one's end as its
	// predecessor's: only its generation tells it apart. Random payloads:
	// frames that compress would not be the same size.
	for i := 0; i < 4; i++ {
		mustAppend(t, db, "s", noise(3000))
	}
	old := frameBounds(t, path)
	if err := db.moveJournal(context.Background()); err != nil {
		t.Fatal(err)
	}
	// One byte shorter: its stream record says 15000 bytes held, not 3000.
	mustAppend(t, db, "s", noise(2999))
	want := readAll(t, db, "s")
	crash(t, db)
	ends := frameBounds(t, path) // the new generation only
	if len(old) != 4 || len(ends) != 1 || ends[0] != old[0] {
		t.Fatalf("frames end at %v, new ones at %v: not aligned, the test does not test anything", old, ends)
	}
	raw, _ := os.ReadFile(path + journalSuffix)
	next := (ends[0] + journalPage - 1) / journalPage * journalPage
	if binary.BigEndian.Uint32(raw[next:]) != journalMagic || binary.BigEndian.Uint64(raw[next+16:]) != uint64(ends[0]) {
		t.Fatal("no stale frame linked after the new one")
	}
	db2 := openAt(t, path, journalOpts())
	if err := db2.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	compareEntriesExact(t, readAll(t, db2, "s"), want)
	// A stale frame replayed would have put back an older stream record.
	if st := streamStats(t, db2, "s"); st.NextSeq != 6 {
		t.Fatalf("next seq %d after replay, want 6", st.NextSeq)
	}
}

// readFrames stops at a frame of another generation, a bad magic or a torn
// end, and replays each good frame once.
func TestReadFrames(t *testing.T) {
	op := func(s string) []jop { return []jop{{bkt: jData, name: "s", key: seqKey(1), val: []byte(s)}} }
	// file lays out frames (gen, payload) back to back; a gen of 0 means
	// "skip to the next page boundary" (padding).
	type fr struct {
		gen uint64
		s   string
	}
	file := func(frs ...fr) []byte {
		var b []byte
		prev := uint64(0)
		for _, f := range frs {
			if f.gen == 0 {
				b = append(b, make([]byte, (len(b)+journalPage-1)/journalPage*journalPage-len(b))...)
				continue
			}
			b = append(b, frameOf(f.gen, prev, op(f.s))...)
			prev = uint64(len(b))
		}
		return b
	}
	damaged := file(fr{7, "a"}, fr{7, "b"}, fr{0, ""}, fr{7, "c"})
	damaged[len(frameOf(7, 0, op("a")))+frameHeader] ^= 1 // b's payload
	for _, tc := range []struct {
		name string
		file []byte
		want []string
	}{
		{"empty", nil, nil},
		{"zeros", make([]byte, 4096), nil},
		{"two", append(file(fr{7, "a"}, fr{7, "b"}), make([]byte, 100)...), []string{"a", "b"}},
		{"padded", file(fr{7, "a"}, fr{0, ""}, fr{7, "b"}, fr{7, "c"}), []string{"a", "b", "c"}},
		{"older after", file(fr{7, "a"}, fr{6, "b"}, fr{7, "c"}), []string{"a"}},
		{"newer after", file(fr{7, "a"}, fr{8, "b"}), []string{"a"}},
		{"other first", file(fr{6, "a"}, fr{7, "b"}), nil},
		{"torn", file(fr{7, "a"}, fr{7, "b"})[:len(frameOf(7, 0, op("a")))+30], []string{"a"}},
		// c is linked to b, at the next page: a damaged b ends the chain.
		{"damaged before padded", damaged, []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frames, _, err := readFrames(bytes.NewReader(tc.file), int64(len(tc.file)), 7)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ops := range frames {
				if len(ops) != 1 || ops[0].name != "s" || ops[0].bkt != jData || keySeq(ops[0].key) != 1 {
					t.Fatalf("ops %+v", ops)
				}
				got = append(got, string(ops[0].val))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("replayed %q, want %q", got, tc.want)
			}
		})
	}
}

// AppendBatch's promise holds for a journaled batch: one frame, so after a
// crash either every stream has its records or none has.
func TestJournalBatchAllOrNothing(t *testing.T) {
	for _, torn := range []bool{false, true} {
		db, path := openTest(t, journalOpts())
		mustConfigure(t, db, StreamConfig{Name: "a"})
		mustConfigure(t, db, StreamConfig{Name: "b"})
		mustAppend(t, db, "a", data("before"))
		_, err := db.AppendBatch(context.Background(), []Batch{
			{Stream: "a", Records: []Record{{Enc: data("a1")}, {Enc: data("a2")}}},
			{Stream: "b", Records: []Record{{Enc: data("b1")}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		ends := frameBounds(t, path)
		crash(t, db)
		if torn {
			// Cut the batch's frame between its two streams' records.
			if err := os.Truncate(path+journalSuffix, ends[len(ends)-1]-40); err != nil {
				t.Fatal(err)
			}
		}
		db2 := openAt(t, path, journalOpts())
		a, b := readAll(t, db2, "a"), readAll(t, db2, "b")
		wantA, wantB := 3, 1
		if torn {
			wantA, wantB = 1, 0
		}
		if len(a) != wantA || len(b) != wantB {
			t.Fatalf("torn=%v: a has %d entries, b %d; want %d and %d", torn, len(a), len(b), wantA, wantB)
		}
		if err := db2.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// Moves happen on their own (half-full journal, MoveInterval) and leave
// the journal empty, the file holding everything.
func TestJournalMoves(t *testing.T) {
	db, path := openTest(t, &Options{JournalSize: 64 << 10, MoveInterval: time.Hour})
	mustConfigure(t, db, StreamConfig{Name: "s"})
	for i := 0; i < 100; i++ {
		mustAppend(t, db, "s", encs("x", 2, 500)...)
	}
	st := db.Stats()
	if st.Moves == 0 {
		t.Fatal("no move with 100 KB through a 64 KiB journal")
	}
	if fi, err := os.Stat(path + journalSuffix); err != nil || fi.Size() != 64<<10 {
		t.Fatalf("journal file: %v %v", fi, err)
	}
	want := readAll(t, db, "s")
	if len(want) != 200 {
		t.Fatalf("%d entries", len(want))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Close moved everything: the file alone holds it.
	ro, err := Open(path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	compareEntriesExact(t, readAll(t, ro, "s"), want)
}

// No journal (JournalSize < 0): every commit goes to the file, as before.
func TestJournalDisabled(t *testing.T) {
	db, path := openTest(t, &Options{JournalSize: -1})
	mustConfigure(t, db, StreamConfig{Name: "s"})
	mustAppend(t, db, "s", encs("x", 3, 10)...)
	if n := countFileEntries(t, db, "s"); n != 3 {
		t.Fatalf("file holds %d entries", n)
	}
	if _, err := os.Stat(path + journalSuffix); !os.IsNotExist(err) {
		t.Fatalf("journal created: %v", err)
	}
}

// A store written by the format-4 code (testdata/format4.db.gz, made by
// that code: scans keyed with a window of 5, acked to 3; telemetry
// drop-oldest with a gap event; a quarantine item; meta lkg=v4) is upgraded
// to the current format (5 brought the journal), which a format-4 build
// refuses (ErrFormatVersion: its newest format is 4), and journals its next
// commits.
func TestFormat4Upgrade(t *testing.T) {
	db, want := upgradeFixture(t, "format4.db", 4)
	if len(want.Streams) != 2 || want.Streams[0].NextSeq != 9 || want.Streams[0].DedupKeys != 5 ||
		want.Streams[1].GapEvents != 1 || want.Quarantined != 1 {
		t.Fatalf("fixture content: %+v", want)
	}
	if v, err := db.GetMeta("lkg"); err != nil || string(v) != "v4" {
		t.Fatalf("meta %q %v", v, err)
	}
	var gen []byte
	_ = db.view(func(v *viewTx) error {
		gen = append(gen, v.tx.Bucket(bktMeta).Get(keyJournal)...)
		return nil
	})
	if len(gen) != 8 || binary.BigEndian.Uint64(gen) == 0 {
		t.Fatalf("journal generation after upgrade: %x", gen)
	}
	k7 := Record{Enc: data("again"), Key: []byte("k7"), CheckDup: true}
	wantAppended(t, mustAppendRecords(t, db, "scans", k7, rec("new", true)), Appended{8, true}, Appended{9, false})
	path := db.Path()
	crash(t, db)
	db2 := openAt(t, path, nil)
	if v, _ := fileFormat(t, db2, path); v != formatVersion {
		t.Fatalf("format %d after upgrade", v)
	}
	es := readAll(t, db2, "scans")
	if len(es) != 6 || es[5].Seq != 9 {
		t.Fatalf("scans after replay: %v", seqs(es))
	}
	if err := db2.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A journal left by another store at the same path (the store file deleted,
// a new one created) is never replayed into the new one.
func TestJournalOfAnotherStoreIgnored(t *testing.T) {
	db, path := openTest(t, journalOpts())
	mustConfigure(t, db, StreamConfig{Name: "s"})
	mustAppend(t, db, "s", encs("x", 3, 10)...)
	crash(t, db)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	db2 := openAt(t, path, journalOpts())
	mustConfigure(t, db2, StreamConfig{Name: "s"})
	if es := readAll(t, db2, "s"); len(es) != 0 {
		t.Fatalf("new store holds %v", seqs(es))
	}
}

// A solo request (a move, a compaction, a check) that arrives while a
// batch is being collected is run after that batch, not lost: the
// committer used to take it twice and drop it, its caller waiting forever.
func TestSoloDuringBatchCollection(t *testing.T) {
	db, _ := openTest(t, &Options{CommitWindow: time.Second, MoveInterval: time.Hour})
	mustConfigure(t, db, StreamConfig{Name: "s"})
	// One write call in flight that never arrives: the committer keeps
	// collecting the next batch for the whole window.
	db.inflight.Add(1)
	defer db.inflight.Add(-1)
	// The append, as Append builds it, so that the test sees when the
	// committer has taken it into a batch.
	r := &request{n: 1, isAppend: true, apply: func(s *stage) error {
		_, err := s.append("s", s.stream("s"), encs("x", 1, 10), nil)
		return err
	}}
	appended := make(chan error, 1)
	go func() { appended <- db.submit(context.Background(), r) }()
	// Wait until it is taken into a batch (not a sleep: a poll of its
	// state with a bound; the queue's length alone also reads 0 before
	// the request is sent).
	deadline := time.Now().Add(10 * time.Second)
	for r.state.Load() != reqTaken {
		if time.Now().After(deadline) {
			t.Fatal("append not taken")
		}
		time.Sleep(time.Millisecond)
	}
	moved := make(chan error, 1)
	go func() { moved <- db.moveJournal(context.Background()) }()
	for _, ch := range []chan error{appended, moved} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a call did not return: the solo request was lost")
		}
	}
	if n := countFileEntries(t, db, "s"); n != 1 {
		t.Fatalf("file holds %d entries after the move, want 1", n)
	}
}

// A full drop-oldest stream drops at every append (a van offline longer
// than its buffer holds): those commits stay in the journal, history
// included, and a crash keeps every drop and its record. Drops that follow
// each other extend one record; the history's bound counts records.
func TestJournalDropsAfterCrash(t *testing.T) {
	opts := journalOpts()
	opts.GapHistory = 5
	opts.GapEncoder = testGapEncoder
	db, path := openTest(t, opts)
	mustConfigure(t, db, StreamConfig{Name: "s", MaxEvents: 3, Overflow: PolicyDropOldest})
	mustAppend(t, db, "s", encs("a", 3, 50)...)
	mustAppend(t, db, "s", data("first drop")) // creates the history bucket: to the file
	before := db.Stats()
	for i := 0; i < 8; i++ {
		mustAppend(t, db, "s", data(fmt.Sprintf("e%d", i)))
	}
	after := db.Stats()
	if file := (after.WrittenBytes - after.JournalWrittenBytes) - (before.WrittenBytes - before.JournalWrittenBytes); file != 0 || after.JournalWrittenBytes == before.JournalWrittenBytes {
		t.Fatalf("the drops wrote %d bytes to the store file and %d to the journal: they should all be journaled",
			file, after.JournalWrittenBytes-before.JournalWrittenBytes)
	}
	// 9 drops of one entry each, one after the other: one record.
	if gaps, err := db.Gaps("s"); err != nil || len(gaps) != 1 || gaps[0].From != 1 || gaps[0].To != 9 || gaps[0].Count != 9 {
		t.Fatalf("history after 9 drops in a row: %+v (%v), want one record of seqs 1..9", gaps, err)
	}
	// The uplink takes the head before each drop: drops no longer follow
	// each other, a record each (the acks seal the open gap: a gap event
	// between each), 6 of them bounded to the last 5.
	dropApart := func(db *DB) {
		t.Helper()
		for _, e := range readQuiet(t, db, "s") {
			if !bytes.HasPrefix(e.Data, []byte("gap ")) {
				if err := db.Ack("s", e.Seq); err != nil { // and the gap events before it
					t.Fatal(err)
				}
				break
			}
		}
		mustAppend(t, db, "s", data("x"), data("y"))
	}
	for range 6 {
		dropApart(db)
	}
	wantGaps, err := db.Gaps("s")
	if err != nil {
		t.Fatal(err)
	}
	if len(wantGaps) != 5 || wantGaps[0].From <= 11 {
		t.Fatalf("history before the crash: %+v, want the last 5 of 6 drops apart", wantGaps)
	}
	for _, g := range wantGaps {
		if g.Count != 1 || g.To != g.From {
			t.Fatalf("history before the crash: %+v, want a record of one seq each", wantGaps)
		}
	}
	wantEntries, wantStats := readQuiet(t, db, "s"), streamStats(t, db, "s")
	crash(t, db)

	db2 := openAt(t, path, opts)
	if err := db2.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	gaps, err := db2.Gaps("s")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gaps, wantGaps) {
		t.Fatalf("history after replay:\n%+v\nwant\n%+v", gaps, wantGaps)
	}
	if got := readQuiet(t, db2, "s"); !reflect.DeepEqual(got, wantEntries) {
		t.Fatalf("entries after replay: %v, want %v", seqs(got), seqs(wantEntries))
	}
	if got := streamStats(t, db2, "s"); got.Drops != wantStats.Drops || got.FirstSeq != wantStats.FirstSeq {
		t.Fatalf("after replay: drops %+v first %d, want %+v %d", got.Drops, got.FirstSeq, wantStats.Drops, wantStats.FirstSeq)
	}
	// Ids carry on after the replay, past the trimmed ones.
	dropApart(db2)
	gaps, err = db2.Gaps("s")
	if err != nil {
		t.Fatal(err)
	}
	if len(gaps) != 5 || gaps[0] != wantGaps[1] || gaps[4].From <= wantGaps[4].From+1 {
		t.Fatalf("history after one more drop: %+v", gaps)
	}
}
