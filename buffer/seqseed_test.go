package buffer

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// A gateway's new store starts its streams at the clock's microseconds, so a
// replaced store never re-uses seqs that downstream deduplication remembers.
func TestTimeSeededSeq(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "s.db")
	open := func() *DB {
		o := *DefaultOptions
		o.TimeSeededSeq = true
		o.Now = func() time.Time { return now }
		db, err := Open(path, &o)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.ConfigureStream(StreamConfig{Name: "scans", Overflow: PolicyRejectNew}); err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := open()
	first, err := db.Append(context.Background(), "scans", []Encoder{func(uint64) ([]byte, error) { return []byte("a"), nil }})
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(now.UnixMicro()); first != want {
		t.Fatalf("first seq %d, want %d", first, want)
	}
	db.Close()
	// Reopening an existing store continues from where it was, even with the
	// clock set back.
	now = now.Add(-time.Hour)
	db = open()
	defer db.Close()
	next, err := db.Append(context.Background(), "scans", []Encoder{func(uint64) ([]byte, error) { return []byte("b"), nil }})
	if err != nil {
		t.Fatal(err)
	}
	if next != first+1 {
		t.Fatalf("after reopen seq %d, want %d", next, first+1)
	}
}
