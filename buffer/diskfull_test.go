package buffer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// mountTmpfs mounts a small tmpfs so that a real file system fills up.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): disk-full test needs root or CAP_SYS_ADMIN", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func TestDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "8m")
	path := filepath.Join(dir, "buffer.db")
	db, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustConfigure(t, db, StreamConfig{Name: "s"})
	for i := 0; i < 20; i++ {
		mustAppend(t, db, "s", encs("before", 50, 200)...)
	}
	want := readAll(t, db, "s")

	// Fill the file system.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := filler.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling: %v", err)
			}
			break
		}
	}
	_ = filler.Close()

	var appendErr error
	for i := 0; i < 1000 && appendErr == nil; i++ {
		var first uint64
		first, appendErr = db.Append(context.Background(), "s", encs("full", 50, 200))
		if appendErr == nil {
			want = append(want, readAll(t, db, "s")[len(want):]...)
			_ = first
		}
	}
	if !errors.Is(appendErr, ErrDiskFull) {
		t.Fatalf("append on a full disk: %v, want ErrDiskFull", appendErr)
	}
	t.Logf("full disk: %v", appendErr)
	if err := db.Check(context.Background()); err != nil {
		t.Fatalf("store damaged by the full disk: %v", err)
	}
	compareEntriesExact(t, readAll(t, db, "s"), want)

	// Space returns: appends work again and continue the seqs.
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	first := mustAppend(t, db, "s", encs("after", 50, 200)...)
	if first != want[len(want)-1].Seq+1 {
		t.Fatalf("after space returned first seq %d, want %d", first, want[len(want)-1].Seq+1)
	}
	want = readAll(t, db, "s")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(path, &Options{NoMoveAside: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if err := db2.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	compareEntriesExact(t, readAll(t, db2, "s"), want)
}

func compareEntriesExact(t *testing.T, got, want []Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Seq != want[i].Seq || string(got[i].Data) != string(want[i].Data) {
			t.Fatalf("entry %d: seq %d, want %d (or data differs)", i, got[i].Seq, want[i].Seq)
		}
	}
}
