package cutfs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// mount mounts a cut file system over a fresh directory, or skips where
// FUSE cannot be mounted (no /dev/fuse, not root).
func mount(t *testing.T) (*FS, string) {
	t.Helper()
	Need(t)
	backing, dir := t.TempDir(), t.TempDir()
	f, err := Mount(dir, backing)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			t.Error(err)
		}
	})
	return f, backing
}

func writeAt(t *testing.T, path string, b []byte, off int64, sync bool) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := fh.Sync(); err != nil {
			t.Fatal(err)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Writes are visible at once and durable only once synced: a cut brings
// back the last synced content, its size included.
func TestCutDropsUnsynced(t *testing.T) {
	f, backing := mount(t)
	p := filepath.Join(f.Dir, "a")
	synced := bytes.Repeat([]byte("s"), 5000) // more than a page
	writeAt(t, p, synced, 0, true)
	writeAt(t, p, []byte("UNSYNCED"), 4090, false)              // across a page boundary
	writeAt(t, p, bytes.Repeat([]byte("x"), 9000), 5000, false) // extends the file
	want := append(append(append([]byte{}, synced[:4090]...), "UNSYNCED"...), synced[4098:]...)
	want = append(want, bytes.Repeat([]byte("x"), 9000)...)
	if got := mustRead(t, p); !bytes.Equal(got, want) {
		t.Fatalf("before the cut: read %d bytes, not what was written (%d)", len(got), len(want))
	}
	if st, err := os.Stat(p); err != nil || st.Size() != 14000 {
		t.Fatalf("before the cut: stat %v, %v; want size 14000", st, err)
	}
	if got := mustRead(t, filepath.Join(backing, "a")); !bytes.Equal(got, synced) {
		t.Fatalf("the backing file holds %d bytes, want the 5000 synced", len(got))
	}
	if f.Unsynced() == 0 {
		t.Fatal("Unsynced is 0 with writes pending")
	}
	f.Cut()
	if err := f.Remount(); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, p); !bytes.Equal(got, synced) {
		t.Fatalf("after the cut: read %d bytes %q…, want the 5000 synced", len(got), got[:min(len(got), 16)])
	}
	// A file created and written without a sync exists (metadata is not
	// modelled) but is empty.
	writeAt(t, filepath.Join(f.Dir, "b"), []byte("never synced"), 0, false)
	f.Cut()
	if err := f.Remount(); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, filepath.Join(f.Dir, "b")); len(got) != 0 {
		t.Fatalf("an unsynced new file holds %q after the cut", got)
	}
}

// boltChild names the bbolt file a child process of this test binary
// writes 100 keys to (NoSync when boltChildNoSync is set), then exits.
const (
	boltChild       = "CUTFS_BOLT_CHILD"
	boltChildNoSync = "CUTFS_BOLT_NOSYNC"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(boltChild); path != "" {
		if err := writeBolt(path, os.Getenv(boltChildNoSync) != ""); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func writeBolt(path string, noSync bool) error {
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		return err
	}
	defer db.Close() // closing does not sync
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
		return err
	}
	db.NoSync = noSync
	for i := range 100 {
		if err := db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("b")).Put([]byte{byte(i)}, bytes.Repeat([]byte{byte(i)}, 300))
		}); err != nil {
			return err
		}
	}
	return nil
}

// bbolt on the file system, in a child process (a process must not read a
// FUSE file through mmap that it serves itself): synced commits survive a
// cut, the last commits of a database run with NoSync do not.
func TestBoltOnCutFS(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		f, backing := mount(t)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), boltChild+"="+filepath.Join(f.Dir, "bolt.db"))
		if noSync {
			cmd.Env = append(cmd.Env, boltChildNoSync+"=1")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child: %v: %s", err, out)
		}
		f.Cut()
		// After the cut the backing file holds what was synced: open it
		// there, not through the mount.
		db, err := bolt.Open(filepath.Join(backing, "bolt.db"), 0o600, &bolt.Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("noSync %v: open after the cut: %v", noSync, err)
		}
		var n int
		if err := db.View(func(tx *bolt.Tx) error { n = tx.Bucket([]byte("b")).Stats().KeyN; return nil }); err != nil {
			t.Fatal(err)
		}
		db.Close()
		switch {
		case !noSync && n != 100:
			t.Errorf("synced commits: %d of 100 keys after the cut", n)
		case noSync && n == 100:
			// bbolt still syncs when it grows the file, so keys written
			// before the last growth survive; the last ones must not.
			t.Errorf("NoSync commits: all 100 keys survived the cut")
		}
		t.Logf("noSync %v: %d of 100 keys after the cut", noSync, n)
	}
}

// Snapshot copies what is synced while the writer goes on.
func TestSnapshot(t *testing.T) {
	f, _ := mount(t)
	p := filepath.Join(f.Dir, "a")
	writeAt(t, p, []byte("synced"), 0, true)
	writeAt(t, p, []byte("SYNCED-NOT"), 0, false)
	dst := t.TempDir()
	if err := f.Snapshot(dst); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, filepath.Join(dst, "a")); string(got) != "synced" {
		t.Fatalf("snapshot holds %q, want %q", got, "synced")
	}
	if got := mustRead(t, p); string(got) != "SYNCED-NOT" {
		t.Fatalf("the writer reads %q after the snapshot", got)
	}
}
