package buffer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestQuarantine(t *testing.T) {
	db, path := openTest(t, &Options{QuarantineMax: 3})
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if err := db.Quarantine(ctx, QuarantineItem{Source: "dock1", Reason: fmt.Sprint("bad ", i), Payload: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	items, err := db.QuarantineList(10)
	if err != nil || len(items) != 3 || items[0].Reason != "bad 2" || items[2].Payload[0] != 4 || items[0].Time.IsZero() {
		t.Fatalf("list = %+v, %v", items, err)
	}
	if s := db.Stats(); s.Quarantined != 3 || s.QuarantineDropped != 2 {
		t.Fatalf("stats %+v", s)
	}
	got, err := db.QuarantineReplay(items[1].ID)
	if err != nil || got.Reason != "bad 3" {
		t.Fatalf("replay = %+v, %v", got, err)
	}
	if _, err := db.QuarantineReplay(items[1].ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second replay: %v", err)
	}
	_ = db.Close()
	db = openAt(t, path, &Options{QuarantineMax: 3})
	if items, _ := db.QuarantineList(10); len(items) != 2 || db.Stats().Quarantined != 2 {
		t.Fatalf("after reopen: %+v", items)
	}
}

func TestMetaAndBoot(t *testing.T) {
	db, path := openTest(t, nil)
	if db.Boot() != 1 {
		t.Fatalf("boot = %d", db.Boot())
	}
	if _, err := db.GetMeta("lkg"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	if err := db.PutMeta("lkg", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	db = openAt(t, path, nil)
	if db.Boot() != 2 {
		t.Fatalf("boot = %d", db.Boot())
	}
	if v, err := db.GetMeta("lkg"); err != nil || string(v) != "v1" {
		t.Fatalf("GetMeta = %q, %v", v, err)
	}
	if err := db.PutMeta("lkg", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetMeta("lkg"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted key: %v", err)
	}
}

func TestCloseWaitsAndRefuses(t *testing.T) {
	db, path := openTest(t, nil)
	mustConfigure(t, db, StreamConfig{Name: "s"})
	ch := db.Notify("s")
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[uint64]bool{}
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				first, err := db.Append(context.Background(), "s", encs("c", 1, 8))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				mu.Lock()
				acked[first] = true
				mu.Unlock()
			}
		}()
	}
	for db.Stats().Streams[0].Depth < 50 {
		<-ch
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for range db.Notify("s") { // drains a pending signal, then must end
	}
	if _, err := db.Read("s", 0, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	db2 := openAt(t, path, nil)
	present := map[uint64]bool{}
	for _, e := range readAll(t, db2, "s") {
		present[e.Seq] = true
	}
	for s := range acked {
		if !present[s] {
			t.Fatalf("acknowledged seq %d missing after Close", s)
		}
	}
}

func TestSecondOpenIsLockedNotMovedAside(t *testing.T) {
	db, path := openTest(t, &Options{LockTimeout: 50 * time.Millisecond})
	mustConfigure(t, db, StreamConfig{Name: "s"})
	start := time.Now()
	_, err := Open(path, &Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("second Open hung")
	}
	if db.Stats().Recovered != 0 || len(db.Stats().Streams) != 1 {
		t.Fatal("store changed")
	}
}

func TestReadOnly(t *testing.T) {
	db, path := openTest(t, nil)
	mustConfigure(t, db, StreamConfig{Name: "s"})
	mustAppend(t, db, "s", data("x"))
	_ = db.Close()
	ro, err := Open(path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if ro.Boot() != 1 || ro.Stats().Streams[0].Depth != 1 {
		t.Fatalf("read-only view: %+v", ro.Stats())
	}
	if _, err := ro.Append(context.Background(), "s", encs("x", 1, 1)); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("append: %v", err)
	}
	if err := ro.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
}
