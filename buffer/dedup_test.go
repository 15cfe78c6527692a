package buffer

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// key returns a 16-byte key, like the caller's digest of topic and payload.
func key(s string) []byte {
	k := make([]byte, 16)
	copy(k, s)
	return k
}

func rec(k string, check bool) Record {
	r := Record{Enc: seqData("k"+k, 12), CheckDup: check}
	if k != "" {
		r.Key = key(k)
	}
	return r
}

func mustAppendRecords(t testing.TB, db *DB, stream string, recs ...Record) []Appended {
	t.Helper()
	out, err := db.AppendRecords(context.Background(), stream, recs)
	if err != nil {
		t.Fatalf("AppendRecords(%s): %v", stream, err)
	}
	if len(out) != len(recs) {
		t.Fatalf("AppendRecords: %d results for %d records", len(out), len(recs))
	}
	return out
}

func wantAppended(t testing.TB, got []Appended, want ...Appended) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("AppendRecords = %+v, want %+v", got, want)
	}
}

func TestAppendRecordsDup(t *testing.T) {
	db, _ := openTest(t, nil)
	mustConfigure(t, db, StreamConfig{Name: "s"})
	wantAppended(t, mustAppendRecords(t, db, "s", rec("a", false), rec("b", true), rec("c", false)),
		Appended{1, false}, Appended{2, false}, Appended{3, false})
	before := streamStats(t, db, "s")
	commits := db.commits.Load()

	// A re-delivery: not stored, original seq.
	wantAppended(t, mustAppendRecords(t, db, "s", rec("b", true)), Appended{2, true})
	if db.commits.Load() == commits {
		t.Fatal("a call of duplicates returned without a commit")
	}
	after := streamStats(t, db, "s")
	if after.NextSeq != 4 || after.Depth != 3 || after.Bytes != before.Bytes || after.Dups != 1 || after.DedupKeys != 3 {
		t.Fatalf("after a duplicate: %+v", after)
	}
	if got := seqs(readAll(t, db, "s")); !reflect.DeepEqual(got, []uint64{1, 2, 3}) {
		t.Fatalf("entries %v", got)
	}

	// The same key without CheckDup is a new event; a later check finds the
	// latest one.
	wantAppended(t, mustAppendRecords(t, db, "s", rec("b", false)), Appended{4, false})
	wantAppended(t, mustAppendRecords(t, db, "s", rec("b", true)), Appended{4, true})

	// Within one call: a key stored earlier in the call is found, unkeyed
	// records and misses get the next seqs, duplicates take none.
	wantAppended(t, mustAppendRecords(t, db, "s", rec("a", true), rec("e", true), rec("e", true), rec("", false), rec("f", false), rec("e", true)),
		Appended{1, true}, Appended{5, false}, Appended{5, true}, Appended{6, false}, Appended{7, false}, Appended{5, true})
	es := readAll(t, db, "s")
	if got := seqs(es); !reflect.DeepEqual(got, []uint64{1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("entries %v", got)
	}
	if !strings.HasPrefix(string(es[4].Data), "ke:5:") || !strings.HasPrefix(string(es[6].Data), "kf:7:") {
		t.Fatalf("entries %+v", es)
	}

	// Acked entries stay in the window.
	if err := db.Ack("s", 7); err != nil {
		t.Fatal(err)
	}
	wantAppended(t, mustAppendRecords(t, db, "s", rec("c", true), rec("f", true)), Appended{3, true}, Appended{7, true})
	if st := streamStats(t, db, "s"); st.Dups != 7 || st.DedupKeys != 6 || st.NextSeq != 8 || st.Depth != 0 {
		t.Fatalf("stats %+v", st)
	}

	ctx := context.Background()
	for name, r := range map[string]Record{
		"no encoder":      {Key: key("x")},
		"check, no key":   {Enc: data("x"), CheckDup: true},
		"key too long":    {Enc: data("x"), Key: bytes.Repeat([]byte("k"), MaxKeySize+1)},
		"empty key check": {Enc: data("x"), Key: []byte{}, CheckDup: true},
	} {
		if _, err := db.AppendRecords(ctx, "s", []Record{r}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := db.AppendRecords(ctx, "nope", []Record{rec("a", true)}); !errors.Is(err, ErrUnknownStream) {
		t.Fatalf("unknown stream: %v", err)
	}
	if out, err := db.AppendRecords(ctx, "s", nil); out != nil || err != nil {
		t.Fatalf("no records: %v %v", out, err)
	}
	if st := streamStats(t, db, "s"); st.NextSeq != 8 || st.Dups != 7 {
		t.Fatalf("failed calls changed the stream: %+v", st)
	}
}

// A failed call remembers nothing, and its duplicates are not counted.
func TestAppendRecordsAllOrNothing(t *testing.T) {
	db, _ := openTest(t, &Options{Now: newClock().Now})
	mustConfigure(t, db, StreamConfig{Name: "s", MaxEvents: 3})
	wantAppended(t, mustAppendRecords(t, db, "s", rec("a", false)), Appended{1, false})
	before := streamStats(t, db, "s")
	_, err := db.AppendRecords(context.Background(), "s", []Record{rec("a", true), rec("b", false), rec("c", false), rec("d", false)})
	if !errors.Is(err, ErrStreamFull) {
		t.Fatalf("over MaxEvents: %v", err)
	}
	boom := errors.New("boom")
	_, err = db.AppendRecords(context.Background(), "s", []Record{rec("a", true), rec("b", false),
		{Enc: func(uint64) ([]byte, error) { return nil, boom }, Key: key("c")}})
	if !errors.Is(err, boom) {
		t.Fatalf("encoder error: %v", err)
	}
	if after := streamStats(t, db, "s"); !reflect.DeepEqual(before, after) {
		t.Fatalf("failed calls changed the stream:\n%+v\n%+v", before, after)
	}
	// Nothing of b was remembered; a is: the duplicate takes no room.
	wantAppended(t, mustAppendRecords(t, db, "s", rec("b", true), rec("a", true), rec("c", true)),
		Appended{2, false}, Appended{1, true}, Appended{3, false})
}

// queueBehindBlocker occupies the committer with an Append whose encoder
// blocks, so that the calls queued next share one transaction. It returns
// the release function.
func queueBehindBlocker(t *testing.T, db *DB, wg *sync.WaitGroup) func() {
	release, entered := make(chan struct{}), make(chan struct{})
	blocker := func(uint64) ([]byte, error) { close(entered); <-release; return []byte("blocker"), nil }
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := db.Append(context.Background(), "other", []Encoder{blocker}); err != nil {
			t.Error(err)
		}
	}()
	<-entered
	return func() { close(release) }
}

func waitQueued(db *DB, n int) {
	for len(db.reqs) != n {
		runtime.Gosched()
	}
}

// A re-delivery arriving while its original is still in an uncommitted batch
// of the same group commit is found, and is answered after that commit.
func TestAppendRecordsDupInSameGroupCommit(t *testing.T) {
	db, _ := openTest(t, nil)
	mustConfigure(t, db, StreamConfig{Name: "s"})
	mustConfigure(t, db, StreamConfig{Name: "other"})
	mustAppend(t, db, "s", data("x"))
	var wg sync.WaitGroup
	release := queueBehindBlocker(t, db, &wg)
	before := db.commits.Load()
	var orig, redel, failed []Appended
	var failErr error
	boom := errors.New("boom")
	calls := []func(){
		func() { orig = mustAppendRecords(t, db, "s", rec("u", false), rec("k", false)) },
		// A call that fails in the same transaction remembers nothing.
		func() {
			failed, failErr = db.AppendRecords(context.Background(), "s", []Record{rec("f", false),
				{Enc: func(uint64) ([]byte, error) { return nil, boom }}})
		},
		func() { redel = mustAppendRecords(t, db, "s", rec("k", true), rec("f", true)) },
	}
	for i, call := range calls {
		wg.Add(1)
		go func() { defer wg.Done(); call() }()
		waitQueued(db, i+1) // in this order
	}
	release()
	wg.Wait()
	if got := db.commits.Load() - before; got != 2 {
		t.Fatalf("%d commits, want 2 (the blocker, then the three calls together)", got)
	}
	wantAppended(t, orig, Appended{2, false}, Appended{3, false})
	if !errors.Is(failErr, boom) || failed != nil {
		t.Fatalf("failing call: %v %v", failed, failErr)
	}
	wantAppended(t, redel, Appended{3, true}, Appended{4, false})
	if got := seqs(readAll(t, db, "s")); !reflect.DeepEqual(got, []uint64{1, 2, 3, 4}) {
		t.Fatalf("entries %v", got)
	}
}

// Concurrent deliveries of the same keys, all checked: each key is stored
// once and every caller learns the same seq for it.
func TestAppendRecordsConcurrentExactlyOnce(t *testing.T) {
	db, _ := openTest(t, nil)
	mustConfigure(t, db, StreamConfig{Name: "s"})
	const callers, keys = 8, 200
	got := make([]map[string]uint64, callers)
	var wg sync.WaitGroup
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[c] = map[string]uint64{}
			for i := 0; i < keys; i += 4 {
				var recs []Record
				for j := i; j < i+4; j++ {
					k := fmt.Sprint((j + c*7) % keys)
					recs = append(recs, Record{Enc: data("v" + k), Key: key(k), CheckDup: true})
				}
				out, err := db.AppendRecords(context.Background(), "s", recs)
				if err != nil {
					t.Error(err)
					return
				}
				for j, a := range out {
					got[c][string(recs[j].Key)] = a.Seq
				}
			}
		}()
	}
	wg.Wait()
	es := readAll(t, db, "s")
	if len(es) != keys {
		t.Fatalf("%d entries stored for %d keys", len(es), keys)
	}
	bySeq := map[uint64]string{}
	for _, e := range es {
		bySeq[e.Seq] = string(e.Data)
	}
	for c := range got {
		for k, seq := range got[c] {
			if want := "v" + strings.TrimRight(k, "\x00"); bySeq[seq] != want || got[0][k] != seq {
				t.Fatalf("caller %d: key %q -> seq %d holding %q (caller 0: %d)", c, k, seq, bySeq[seq], got[0][k])
			}
		}
	}
	if st := streamStats(t, db, "s"); st.Dups != callers*keys-keys || st.DedupKeys != keys {
		t.Fatalf("stats %+v", st)
	}
}

func TestDedupWindow(t *testing.T) {
	opts := &Options{DedupWindow: 10}
	db, path := openTest(t, opts)
	mustConfigure(t, db, StreamConfig{Name: "s"})
	mustConfigure(t, db, StreamConfig{Name: "t"})
	for i := 1; i <= 11; i++ { // k1..k11 at seqs 1..11
		mustAppendRecords(t, db, "s", rec(fmt.Sprint("k", i), false))
		mustAppendRecords(t, db, "t", rec("", false)) // unkeyed: not in any window
	}
	if st := streamStats(t, db, "s"); st.DedupKeys != 10 {
		t.Fatalf("window holds %d keys", st.DedupKeys)
	}
	// k2 was appended 10 keyed appends ago: still known; k1, 11 ago, is not.
	wantAppended(t, mustAppendRecords(t, db, "s", rec("k2", true), rec("k1", true)), Appended{2, true}, Appended{12, false})
	// k2 is now the oldest key and is pruned by the next keyed append.
	mustAppendRecords(t, db, "s", rec("k12", false)) // 13
	wantAppended(t, mustAppendRecords(t, db, "s", rec("k2", true)), Appended{14, false})

	// Windows are per stream: t's keys do not push out s's.
	for i := 0; i < 20; i++ {
		mustAppendRecords(t, db, "t", rec(fmt.Sprint("t", i), false))
	}
	wantAppended(t, mustAppendRecords(t, db, "s", rec("k11", true)), Appended{11, true})

	// A key stored again is not forgotten when its older FIFO entry goes.
	mustAppendRecords(t, db, "s", rec("again", false)) // 15
	for i := 0; i < 5; i++ {
		mustAppendRecords(t, db, "s", rec(fmt.Sprint("x", i), false)) // 16..20
	}
	mustAppendRecords(t, db, "s", rec("again", false)) // 21
	for i := 0; i < 9; i++ {
		mustAppendRecords(t, db, "s", rec(fmt.Sprint("y", i), false)) // 22..30: the entry of seq 15 is pruned
	}
	wantAppended(t, mustAppendRecords(t, db, "s", rec("again", true)), Appended{21, true})
	mustAppendRecords(t, db, "s", rec("z", false)) // 31: the entry of seq 21 is pruned
	wantAppended(t, mustAppendRecords(t, db, "s", rec("again", true)), Appended{32, false})

	// A smaller window applies from the stream's next keyed append.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	opts2 := &Options{DedupWindow: 3}
	db = openAt(t, path, opts2)
	if st := streamStats(t, db, "s"); st.DedupKeys != 10 {
		t.Fatalf("reopen changed the window: %+v", st)
	}
	wantAppended(t, mustAppendRecords(t, db, "s", rec("y6", true)), Appended{28, true})
	mustAppendRecords(t, db, "s", rec("w", false)) // 33
	if st := streamStats(t, db, "s"); st.DedupKeys != 3 {
		t.Fatalf("window after lowering holds %d keys", st.DedupKeys)
	}
	wantAppended(t, mustAppendRecords(t, db, "s", rec("z", true), rec("again", true), rec("y8", true)),
		Appended{31, true}, Appended{32, true}, Appended{34, false})
}

func TestDedupDisabled(t *testing.T) {
	db, path := openTest(t, &Options{DedupWindow: 5})
	mustConfigure(t, db, StreamConfig{Name: "s"})
	mustAppendRecords(t, db, "s", rec("a", false))
	_ = db.Close()
	db = openAt(t, path, &Options{DedupWindow: -1})
	wantAppended(t, mustAppendRecords(t, db, "s", rec("a", true), rec("b", false), rec("b", true)),
		Appended{2, false}, Appended{3, false}, Appended{4, false})
	if st := streamStats(t, db, "s"); st.DedupKeys != 1 || st.Dups != 0 {
		t.Fatalf("disabled window changed: %+v", st)
	}
}

func TestDedupSurvivesReopenAndCompact(t *testing.T) {
	clk := newClock()
	opts := &Options{Now: clk.Now, CompactMinSize: 1 << 20, DedupWindow: 1000}
	db, path := openTest(t, opts)
	mustConfigure(t, db, StreamConfig{Name: "s"})
	want := map[string]uint64{}
	for i := 0; i < 100; i++ {
		recs := make([]Record, 20)
		for j := range recs {
			recs[j] = Record{Enc: seqData("p", 1000), Key: key(fmt.Sprint(i*20 + j))}
		}
		for j, a := range mustAppendRecords(t, db, "s", recs...) {
			want[string(recs[j].Key)] = a.Seq
		}
	}
	if err := db.Ack("s", 2000); err != nil {
		t.Fatal(err)
	}
	// The file shows the ack once the journal is moved into it.
	if err := db.moveJournal(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !db.needsCompaction() {
		t.Fatalf("not due for compaction")
	}
	if err := db.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := db.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	dupsBefore := streamStats(t, db, "s").Dups
	var recs []Record
	for i := 1000; i < 2000; i++ {
		recs = append(recs, Record{Enc: data("dup"), Key: key(fmt.Sprint(i)), CheckDup: true})
	}
	for i, a := range mustAppendRecords(t, db, "s", recs...) {
		if w := want[string(recs[i].Key)]; !a.Dup || a.Seq != w {
			t.Fatalf("after compaction: key %d: %+v, want seq %d", i+1000, a, w)
		}
	}
	if st := streamStats(t, db, "s"); st.NextSeq != 2001 || st.Dups != dupsBefore+1000 {
		t.Fatalf("after compaction %+v", st)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, opts)
	if st := streamStats(t, db, "s"); st.Dups != dupsBefore+1000 || st.DedupKeys != 1000 {
		t.Fatalf("counters after reopen %+v", st)
	}
	for i, a := range mustAppendRecords(t, db, "s", recs...) {
		if w := want[string(recs[i].Key)]; !a.Dup || a.Seq != w {
			t.Fatalf("after reopen: key %d: %+v, want seq %d", i+1000, a, w)
		}
	}
	// The first 1,000 keys were pushed out of the window of 1,000.
	wantAppended(t, mustAppendRecords(t, db, "s", Record{Enc: data("new"), Key: key("999"), CheckDup: true}), Appended{2001, false})
}

// openFixture copies testdata/<name>.gz to a temporary file.
func openFixture(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "buffer.db")
	f, err := os.Open(filepath.Join("testdata", name+".gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fileFormat returns the format of the file at path, through db if it is
// open there, and whether any stream still has a format-2 key bucket.
func fileFormat(t *testing.T, db *DB, path string) (v uint32, keyBuckets bool) {
	t.Helper()
	f := func(tx *bolt.Tx) error {
		v = binary.BigEndian.Uint32(tx.Bucket(bktMeta).Get(keyFormat))
		if root := tx.Bucket(bktDedup); root != nil {
			_ = root.ForEachBucket(func(k []byte) error {
				keyBuckets = keyBuckets || root.Bucket(k).Bucket(bktDedupKeys) != nil
				return nil
			})
		} else if v >= 2 {
			t.Errorf("format %d without a dedup bucket", v)
		}
		return nil
	}
	if db != nil {
		if err := db.view(func(vt *viewTx) error { return f(vt.tx) }); err != nil {
			t.Fatal(err)
		}
		return v, keyBuckets
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_ = b.View(f)
	return v, keyBuckets
}

// upgradeFixture opens a fixture read-only (it must open as it is, pass
// Check and stay untouched), then writable (it must be upgraded with its
// content intact), and returns the writable store and the read-only stats.
func upgradeFixture(t *testing.T, name string, format uint32) (*DB, Stats) {
	t.Helper()
	path := openFixture(t, name)
	if v, _ := fileFormat(t, nil, path); v != format {
		t.Fatalf("fixture has format %d", v)
	}
	ro, err := Open(path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open of format %d: %v", format, err)
	}
	if err := ro.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := ro.Stats()
	wantEntries := map[string][]Entry{}
	for _, s := range want.Streams {
		wantEntries[s.Config.Name] = readAll(t, ro, s.Config.Name)
	}
	_ = ro.Close()
	if v, _ := fileFormat(t, nil, path); v != format {
		t.Fatalf("read-only open changed the format to %d", v)
	}

	db := openAt(t, path, nil)
	if v, keys := fileFormat(t, db, path); v != formatVersion || keys {
		t.Fatalf("after upgrade: format %d, format-2 key buckets left: %v", v, keys)
	}
	got := db.Stats()
	if got.Boot != want.Boot+1 {
		t.Fatalf("boot %d", got.Boot)
	}
	got.Boot, got.FileSize, want.FileSize = want.Boot, 0, 0
	got.WrittenBytes, want.WrittenBytes = 0, 0 // since Open: the upgrade writes
	for i := range got.Streams {
		got.Streams[i].OldestAge, want.Streams[i].OldestAge = 0, 0
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("stats changed by the upgrade:\n%+v\n%+v", want, got)
	}
	for name, es := range wantEntries {
		if got := readAll(t, db, name); !reflect.DeepEqual(got, es) {
			t.Fatalf("entries of %s changed by the upgrade", name)
		}
	}
	if err := db.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db, want
}

// A store written by the format-1 code (testdata/format1.db.gz, made by that
// code) opens read-only as it is and is upgraded by a writable Open.
func TestFormat1Upgrade(t *testing.T) {
	db, want := upgradeFixture(t, "format1.db", 1)
	if len(want.Streams) != 2 || want.Streams[0].NextSeq != 13 || want.Streams[0].Depth != 7 || want.Quarantined != 1 {
		t.Fatalf("fixture content: %+v", want)
	}
	if v, err := db.GetMeta("lkg"); err != nil || string(v) != "v1" {
		t.Fatalf("meta %q %v", v, err)
	}
	if gaps, _ := db.Gaps("telemetry"); len(gaps) != 2 {
		t.Fatalf("gaps %+v", gaps)
	}
	wantAppended(t, mustAppendRecords(t, db, "scans", rec("a", true)), Appended{13, false})
	wantAppended(t, mustAppendRecords(t, db, "scans", rec("a", true)), Appended{13, true})
	if first := mustAppend(t, db, "telemetry", data("x")); first != 11 {
		t.Fatalf("telemetry seq %d", first)
	}
}

// A store written by the format-2 code (testdata/format2.db.gz: keys k0..k7
// at seqs 1..8, k3 again at 9, k8 at 10, with a window of 5, seqs 1..4
// acked) keeps its window across the upgrade that drops its key buckets.
func TestFormat2Upgrade(t *testing.T) {
	db, want := upgradeFixture(t, "format2.db", 2)
	if s := want.Streams[0]; s.Config.Name != "scans" || s.NextSeq != 11 || s.DedupKeys != 5 || s.Dups != 1 || s.AckedSeq != 4 {
		t.Fatalf("fixture content: %+v", want)
	}
	wantAppended(t, mustAppendRecords(t, db, "scans", rec("k5", true), rec("k6", true), rec("k7", true), rec("k3", true), rec("k8", true), rec("k4", true), rec("k0", true)),
		Appended{6, true}, Appended{7, true}, Appended{8, true}, Appended{9, true}, Appended{10, true}, Appended{11, false}, Appended{12, false})
}

// A commit that fails after keyed appends (here: the file would exceed
// MaxFileSize) leaves no trace in the in-memory index: duplicates of the
// records committed before are still found, keys of the failed commit are not.
func TestDedupAfterFailedCommit(t *testing.T) {
	db, _ := openTest(t, &Options{MaxFileSize: 1 << 20})
	mustConfigure(t, db, StreamConfig{Name: "s"})
	wantAppended(t, mustAppendRecords(t, db, "s", rec("k", false)), Appended{1, false})
	wantAppended(t, mustAppendRecords(t, db, "s", rec("k", true)), Appended{1, true}) // loads the index
	big := Record{Enc: func(uint64) ([]byte, error) { return make([]byte, 2<<20), nil }, Key: key("big")}
	_, err := db.AppendRecords(context.Background(), "s", []Record{rec("k", false), rec("l", false), big})
	if !errors.Is(err, ErrDiskBudget) {
		t.Fatalf("over MaxFileSize: %v", err)
	}
	wantAppended(t, mustAppendRecords(t, db, "s", rec("k", true), rec("l", true), rec("big", true)),
		Appended{1, true}, Appended{2, false}, Appended{3, false})
}
