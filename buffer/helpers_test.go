package buffer

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"
)

// testClock is an injected clock that only moves when told to.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *testClock { return &testClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testGapEncoder writes gap events as readable text.
func testGapEncoder(stream string, seq uint64, g Gap) ([]byte, error) {
	return fmt.Appendf(nil, "gap %s seq=%d %d-%d n=%d %s", stream, seq, g.From, g.To, g.Count, g.Reason), nil
}

func data(s string) Encoder { return func(uint64) ([]byte, error) { return []byte(s), nil } }

// seqData encodes the seq into the payload, so tests can check both agree.
func seqData(prefix string, size int) Encoder {
	return func(seq uint64) ([]byte, error) {
		b := fmt.Appendf(nil, "%s:%d:", prefix, seq)
		for len(b) < size {
			b = append(b, 'x')
		}
		return b, nil
	}
}

func encs(prefix string, n, size int) []Encoder {
	out := make([]Encoder, n)
	for i := range out {
		out[i] = seqData(prefix, size)
	}
	return out
}

// openTest opens a store in a temporary directory. At cleanup it checks the
// file and the counters against the data, closes, reopens and compares Stats,
// so every test also proves its state survives a restart.
func openTest(t testing.TB, opts *Options) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "buffer.db")
	return openAt(t, path, opts), path
}

func openAt(t testing.TB, path string, opts *Options) *DB {
	t.Helper()
	db, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { checkAndReopen(t, db, opts) })
	return db
}

func checkAndReopen(t testing.TB, db *DB, opts *Options) {
	t.Helper()
	db.sendMu.RLock()
	closed := db.closed
	db.sendMu.RUnlock()
	if closed { // the test closed it and checks on its own
		return
	}
	if db.broken.Load() != nil {
		_ = db.Close()
		return
	}
	if err := db.Check(context.Background()); err != nil && err != ErrClosed {
		t.Errorf("invariants: %v", err)
	}
	before := db.Stats()
	if err := db.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if t.Failed() {
		return
	}
	ro := Options{}
	if opts != nil {
		ro = *opts
	}
	ro.ReadOnly = true
	db2, err := Open(db.path, &ro)
	if err != nil {
		t.Errorf("reopen: %v", err)
		return
	}
	defer db2.Close()
	if err := db2.Check(context.Background()); err != nil {
		t.Errorf("invariants after reopen: %v", err)
	}
	after := db2.Stats()
	before.FileSize, after.FileSize = 0, 0
	before.Compactions, after.Compactions = 0, 0
	// Since-Open counters.
	before.Commits, after.Commits = 0, 0
	before.WrittenBytes, after.WrittenBytes = 0, 0
	before.Moves, after.Moves = 0, 0
	before.JournalWrittenBytes, after.JournalWrittenBytes = 0, 0
	for _, st := range [][]StreamStats{before.Streams, after.Streams} {
		for i := range st {
			st[i].OldestAge = 0 // depends on the wall clock unless injected
		}
	}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("Stats changed across reopen:\nbefore %+v\nafter  %+v", before, after)
	}
}

func mustAppend(t testing.TB, db *DB, stream string, recs ...Encoder) uint64 {
	t.Helper()
	first, err := db.Append(context.Background(), stream, recs)
	if err != nil {
		t.Fatalf("Append(%s): %v", stream, err)
	}
	return first
}

func mustConfigure(t testing.TB, db *DB, cfg StreamConfig) {
	t.Helper()
	if err := db.ConfigureStream(cfg); err != nil {
		t.Fatalf("ConfigureStream: %v", err)
	}
}

func readAll(t testing.TB, db *DB, stream string) []Entry {
	t.Helper()
	var out []Entry
	var after uint64
	for {
		es, err := db.Read(stream, after, 100)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if len(es) == 0 {
			return out
		}
		out = append(out, es...)
		after = es[len(es)-1].Seq
	}
}

// readQuiet reads the whole stream without writing gap events (Read at the
// end of a stream writes them).
func readQuiet(t testing.TB, db *DB, stream string) []Entry {
	t.Helper()
	es, err := db.read(stream, 0, 1<<30)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return es
}

func streamStats(t testing.TB, db *DB, name string) StreamStats {
	t.Helper()
	for _, s := range db.Stats().Streams {
		if s.Config.Name == name {
			return s
		}
	}
	t.Fatalf("no stats for stream %q", name)
	return StreamStats{}
}

func seqs(es []Entry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}
