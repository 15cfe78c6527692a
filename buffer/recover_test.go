package buffer

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// badFiles builds damaged stores from a good one.
var badFiles = map[string]func(t *testing.T, path string){
	"garbage": func(t *testing.T, path string) {
		if err := os.WriteFile(path, []byte(strings.Repeat("not a bbolt file ", 1000)), 0o600); err != nil {
			t.Fatal(err)
		}
	},
	"tiny-garbage": func(t *testing.T, path string) {
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	},
	"truncated": func(t *testing.T, path string) {
		fi, _ := os.Stat(path)
		if err := os.Truncate(path, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
	},
	"zeroed-meta": func(t *testing.T, path string) {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(make([]byte, 8192), 0); err != nil {
			t.Fatal(err)
		}
	},
	"no-meta-bucket": func(t *testing.T, path string) {
		b, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if err := b.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bktMeta) }); err != nil {
			t.Fatal(err)
		}
	},
	"broken-marker": func(t *testing.T, path string) {
		if err := os.WriteFile(path+brokenSuffix, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	},
}

func makeStore(t *testing.T, path string) {
	db, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.ConfigureStream(StreamConfig{Name: "s"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := db.Append(context.Background(), "s", encs("x", 10, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestBadFileIsMovedAside(t *testing.T) {
	for name, damage := range badFiles {
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			path := filepath.Join(t.TempDir(), "buffer.db")
			makeStore(t, path)
			damage(t, path)
			db := openAt(t, path, &Options{Now: clk.Now, GapEncoder: testGapEncoder})
			moved, _ := filepath.Glob(path + ".bad-*")
			// The journal of the bad file goes with it.
			if len(moved) != 2 || moved[1] != moved[0]+journalSuffix {
				t.Fatalf("moved-aside files: %v", moved)
			}
			if fi, err := os.Stat(moved[0]); err != nil || fi.Size() == 0 {
				t.Fatalf("bad file not kept: %v", err)
			}
			if _, err := os.Stat(path + brokenSuffix); !os.IsNotExist(err) {
				t.Fatalf("marker left behind: %v", err)
			}
			st := db.Stats()
			if st.Recovered != 1 || len(st.Streams) != 0 {
				t.Fatalf("stats %+v", st)
			}
			if gaps, err := db.Gaps(""); err != nil || len(gaps) != 1 || gaps[0].Reason != ReasonCorrupt {
				t.Fatalf("store gaps %+v %v", gaps, err)
			}
			mustConfigure(t, db, StreamConfig{Name: "s"})
			base := uint64(clk.Now().UnixMicro())
			es := readAll(t, db, "s")
			if len(es) != 1 || es[0].Seq != base || !strings.Contains(string(es[0].Data), "corrupt") {
				t.Fatalf("first entries %+v, want the corrupt gap event at seq %d", es, base)
			}
			if first := mustAppend(t, db, "s", data("x")); first != base+1 {
				t.Fatalf("first seq on fresh store %d, want %d", first, base+1)
			}
			if gaps, _ := db.Gaps("s"); len(gaps) != 1 || gaps[0].To != base-1 {
				t.Fatalf("stream gaps %+v", gaps)
			}
		})
	}
}

func TestBadFileNoMoveAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	makeStore(t, path)
	badFiles["garbage"](t, path)
	if _, err := Open(path, &Options{NoMoveAside: true}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v", err)
	}
	if _, err := Open(path, &Options{ReadOnly: true}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read-only err = %v", err)
	}
	if moved, _ := filepath.Glob(path + ".bad-*"); len(moved) != 0 {
		t.Fatalf("moved: %v", moved)
	}
}

func TestNewerFormatIsNotMovedAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	makeStore(t, path)
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bktMeta).Put(keyFormat, binary.BigEndian.AppendUint32(nil, formatVersion+1))
	})
	_ = b.Close()
	if _, err := Open(path, nil); !errors.Is(err, ErrFormatVersion) {
		t.Fatalf("err = %v", err)
	}
	if moved, _ := filepath.Glob(path + ".bad-*"); len(moved) != 0 {
		t.Fatalf("moved: %v", moved)
	}
}

func TestBrokenStoreRefusesWritesAndIsReplacedAtNextOpen(t *testing.T) {
	db, path := openTest(t, nil)
	mustConfigure(t, db, StreamConfig{Name: "s"})
	db.markBroken(ErrCorrupt)
	if _, err := db.Append(context.Background(), "s", encs("x", 1, 1)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("append on broken store: %v", err)
	}
	_ = db.Close()
	db2 := openAt(t, path, nil)
	if db2.Stats().Recovered != 1 {
		t.Fatal("broken store not replaced")
	}
}

func TestFilePermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	db := openAt(t, filepath.Join(dir, "buffer.db"), nil)
	for p, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, db.Path(): 0o600} {
		if fi, err := os.Stat(p); err != nil || fi.Mode() != want {
			t.Fatalf("%s: mode %v, want %v (%v)", p, fi.Mode(), want, err)
		}
	}
}

func TestStartupDoesNotReadData(t *testing.T) {
	db, path := openTest(t, &Options{})
	mustConfigure(t, db, StreamConfig{Name: "a"})
	mustConfigure(t, db, StreamConfig{Name: "b"})
	for i := 0; i < 50; i++ {
		mustAppend(t, db, "a", encs("a", 200, 100)...)
		mustAppend(t, db, "b", encs("b", 200, 100)...)
	}
	_ = db.Ack("a", 500)
	want := db.Stats()
	_ = db.Close()
	start := time.Now()
	db2, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("open with 20k-event backlog took %v", time.Since(start))
	if n := db2.dataTouches.Load(); n != 0 {
		t.Fatalf("Open looked up data buckets %d times", n)
	}
	got := db2.Stats()
	for i := range got.Streams {
		if g, w := got.Streams[i], want.Streams[i]; g.Depth != w.Depth || g.Bytes != w.Bytes || g.NextSeq != w.NextSeq || g.Oldest != w.Oldest {
			t.Fatalf("stats after open %+v, want %+v", g, w)
		}
	}
	_ = db2.Close()
}
