package buffer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// An alert names its cause's seq, written in the same transaction; a batch
// refused by a later stream leaves no trace in the earlier one, and the
// appends that shared its group commit still land.
func TestAppendBatch(t *testing.T) {
	db, _ := openTest(t, &Options{GapEncoder: testGapEncoder})
	mustConfigure(t, db, StreamConfig{Name: "scans", Overflow: PolicyDropOldest})
	mustConfigure(t, db, StreamConfig{Name: "alerts", MaxEvents: 2, Overflow: PolicyRejectNew})
	mustAppend(t, db, "scans", data("s0"))

	var cause uint64
	batch := func(name string) []Batch {
		return []Batch{
			{Stream: "scans", Records: []Record{{Enc: func(seq uint64) ([]byte, error) {
				cause = seq
				return []byte(name), nil
			}}}},
			{Stream: "alerts", Records: []Record{{Enc: func(uint64) ([]byte, error) {
				return []byte(fmt.Sprintf("alert for %d", cause)), nil
			}}}},
		}
	}
	for _, name := range []string{"s1", "s2"} {
		res, err := db.AppendBatch(context.Background(), batch(name))
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 2 || len(res[0]) != 1 || len(res[1]) != 1 || res[0][0].Seq != cause {
			t.Fatalf("result %+v, cause %d", res, cause)
		}
	}
	if got := string(readAll(t, db, "alerts")[1].Data); got != "alert for 3" {
		t.Fatalf("second alert = %q", got)
	}

	// alerts is full: the third batch is refused whole, while appends
	// committed alongside it are stored.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 0 {
				_, errs[i] = db.AppendBatch(context.Background(), batch("s3"))
				return
			}
			_, errs[i] = db.Append(context.Background(), "scans", []Encoder{data(fmt.Sprintf("p%d", i))})
		}()
	}
	wg.Wait()
	if !errors.Is(errs[0], ErrStreamFull) {
		t.Fatalf("batch into a full stream: %v", errs[0])
	}
	for _, err := range errs[1:] {
		if err != nil {
			t.Fatalf("an append sharing the commit failed: %v", err)
		}
	}
	var got []string
	for _, e := range readAll(t, db, "scans") {
		got = append(got, string(e.Data))
	}
	if len(got) != 3+7 || got[0] != "s0" || got[1] != "s1" || got[2] != "s2" {
		t.Fatalf("scans = %v", got)
	}
	for _, s := range got {
		if s == "s3" {
			t.Fatalf("the refused batch left its scan: %v", got)
		}
	}
	if n := len(readAll(t, db, "alerts")); n != 2 {
		t.Fatalf("alerts = %d", n)
	}
	if res, err := db.AppendBatch(context.Background(), []Batch{{Stream: "scans"}}); err != nil || len(res) != 1 || len(res[0]) != 0 {
		t.Fatalf("empty batch: %v %v", res, err)
	}
	checkAndReopen(t, db, &Options{GapEncoder: testGapEncoder})
}
