package buffer

import (
	"context"
	bolt "go.etcd.io/bbolt"
	"reflect"
	"testing"
)

func TestCompactKeepsEverything(t *testing.T) {
	clk := newClock()
	db, _ := openTest(t, &Options{Now: clk.Now, CompactMinSize: 1 << 20})
	mustConfigure(t, db, StreamConfig{Name: "a"})
	mustConfigure(t, db, StreamConfig{Name: "b", MaxEvents: 100, Overflow: PolicyDropOldest})
	for i := 0; i < 100; i++ {
		mustAppend(t, db, "a", encs("a", 20, 1000)...)
		mustAppend(t, db, "b", encs("b", 2, 100)...)
	}
	if err := db.Ack("a", 1990); err != nil {
		t.Fatal(err)
	}
	if err := db.Quarantine(context.Background(), QuarantineItem{Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	_ = db.PutMeta("k", []byte("v"))
	wantA, wantB := readAll(t, db, "a"), readAll(t, db, "b")
	wantStats := db.Stats()
	gapsB, _ := db.Gaps("b")
	if !db.needsCompaction() {
		t.Fatalf("file of %d bytes with 10 live entries not due for compaction", wantStats.FileSize)
	}
	if err := db.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := db.Stats()
	if got.FileSize*4 > wantStats.FileSize || got.Compactions != 1 {
		t.Fatalf("file %d -> %d bytes", wantStats.FileSize, got.FileSize)
	}
	got.FileSize, wantStats.FileSize, got.Compactions = 0, 0, 0
	got.WrittenBytes, wantStats.WrittenBytes = 0, 0
	if !reflect.DeepEqual(got, wantStats) {
		t.Fatalf("stats changed:\n%+v\n%+v", wantStats, got)
	}
	if !reflect.DeepEqual(readAll(t, db, "a"), wantA) || !reflect.DeepEqual(readAll(t, db, "b"), wantB) {
		t.Fatal("entries changed")
	}
	if g, _ := db.Gaps("b"); !reflect.DeepEqual(g, gapsB) {
		t.Fatal("gaps changed")
	}
	if v, _ := db.GetMeta("k"); string(v) != "v" {
		t.Fatal("meta lost")
	}
	if q, _ := db.QuarantineList(10); len(q) != 1 {
		t.Fatal("quarantine lost")
	}
	if db.needsCompaction() {
		t.Fatal("still due after compaction")
	}
	if first := mustAppend(t, db, "a", data("x")); first != 2001 {
		t.Fatalf("seq after compaction %d", first)
	}
	if err := db.Quarantine(context.Background(), QuarantineItem{Reason: "r2"}); err != nil {
		t.Fatal(err)
	}
	if q, _ := db.QuarantineList(10); len(q) != 2 || q[1].ID != 2 {
		t.Fatalf("quarantine ids after compaction: %+v", q)
	}
}

// TestCompactPacks: issue 14 item 7, a compaction of a 117.7 MB store gave a
// 128.9 MB file. The compacted file must hold no more than its live data
// needs in packed pages: every key/value with bbolt's 16-byte element
// header, on pages with a 16-byte header that lose less than one element
// each at their end, plus 2% for branches and 32 pages for bucket roots,
// meta and freelist (pages filled to bbolt's default 50% would need about
// twice that); and compacting a compact file must not grow it.
func TestCompactPacks(t *testing.T) {
	db, _ := openTest(t, &Options{CompactRatio: -1})
	mustConfigure(t, db, StreamConfig{Name: "a"})
	mustConfigure(t, db, StreamConfig{Name: "b"})
	recs := encs("e", 1000, 200)
	for i := 0; i < 30; i++ {
		mustAppend(t, db, "a", recs...)
		mustAppend(t, db, "b", recs[:100]...)
	}
	if err := db.Ack("a", 10_000); err != nil { // a hole at the head
		t.Fatal(err)
	}
	var prev int64
	for i := 0; i < 3; i++ {
		if err := db.Compact(context.Background()); err != nil {
			t.Fatal(err)
		}
		var kv, maxElem, pageSize int64
		err := db.view(func(v *viewTx) error {
			pageSize = int64(v.tx.DB().Info().PageSize)
			var walk func(b *bolt.Bucket) error
			walk = func(b *bolt.Bucket) error {
				return b.ForEach(func(k, v []byte) error {
					kv += 16 + int64(len(k)+len(v))
					maxElem = max(maxElem, 16+int64(len(k)+len(v)))
					if v == nil {
						kv += 16 // bucket header
						return walk(b.Bucket(k))
					}
					return nil
				})
			}
			return v.tx.ForEach(func(name []byte, b *bolt.Bucket) error {
				kv += 16 + int64(len(name)) + 16
				return walk(b)
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		need := kv*pageSize/(pageSize-16-maxElem)*102/100 + 32*pageSize
		size := db.Stats().FileSize
		if i > 0 && size > prev {
			t.Fatalf("compacting a compact file grew it from %d to %d bytes", prev, size)
		}
		prev = size
		t.Logf("compaction %d: file %d bytes, live key/values %d bytes, bound %d", i+1, size, kv, need)
		if size > need {
			t.Fatalf("compacted file is %d bytes, its live data needs at most %d", size, need)
		}
	}
}
