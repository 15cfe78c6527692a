package buffer

import (
	"context"
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
