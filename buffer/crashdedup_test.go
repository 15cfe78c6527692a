package buffer

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const crashDedupEnv = "BUFFER_CRASH_DEDUP_CHILD"

// crashDedupChild appends keyed records from 4 goroutines until it is
// killed. Each record's payload is "key|seq|" plus padding. After every call
// it prints "K key seq" for each record it was told is durable. Now and then a
// call also re-sends keys it already got back (CheckDup, as a broker's
// re-delivery would) and fails with "ERR" unless they come back as
// duplicates with their first seq.
func crashDedupChild(path, run string) {
	db, err := Open(path, &Options{LockTimeout: 10 * time.Second, DedupWindow: 1 << 20,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	if err := db.ConfigureStream(StreamConfig{Name: "s"}); err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	for g := 0; g < 4; g++ {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(g), uint64(time.Now().UnixNano())))
			type known struct {
				key string
				seq uint64
			}
			var mine []known
			for i := 0; ; i++ {
				var recs []Record
				var resent []known
				if len(mine) > 0 && rng.IntN(4) == 0 {
					for j := 0; j < 1+rng.IntN(2); j++ {
						k := mine[rng.IntN(len(mine))]
						resent = append(resent, k)
						recs = append(recs, Record{Enc: data("resent"), Key: []byte(k.key), CheckDup: true})
					}
				}
				for j := 0; j < 1+rng.IntN(8); j++ {
					k := fmt.Sprintf("r%s-g%d-%d-%d", run, g, i, j)
					pad := 20 + rng.IntN(200)
					recs = append(recs, Record{
						Enc: func(seq uint64) ([]byte, error) {
							b := fmt.Appendf(nil, "%s|%d|", k, seq)
							return append(b, bytes.Repeat([]byte("x"), pad)...), nil
						},
						Key:      []byte(k),
						CheckDup: rng.IntN(3) == 0, // a DUP flag with no original
					})
				}
				out, err := db.AppendRecords(context.Background(), "s", recs)
				if err != nil {
					fmt.Println("ERR", err)
					os.Exit(2)
				}
				var msg bytes.Buffer
				for j, a := range out {
					if j < len(resent) {
						if !a.Dup || a.Seq != resent[j].seq {
							fmt.Printf("ERR re-sent key %s: %+v, first seq %d\n", resent[j].key, a, resent[j].seq)
							os.Exit(2)
						}
						continue
					}
					if a.Dup {
						fmt.Printf("ERR fresh key %s reported as a duplicate of %d\n", recs[j].Key, a.Seq)
						os.Exit(2)
					}
					mine = append(mine, known{string(recs[j].Key), a.Seq})
					fmt.Fprintf(&msg, "K %s %d\n", recs[j].Key, a.Seq)
				}
				mu.Lock()
				_, _ = os.Stdout.Write(msg.Bytes())
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestCrashKillDedup kills a child that appends keyed records at random
// points; after each kill, re-appending every key the child was told is
// durable, with CheckDup, must return Dup with the seq the child was given,
// store nothing and consume no seq. Keys of calls in flight at the kill must
// be in the index exactly when their entries are in the data.
func TestCrashKillDedup(t *testing.T) {
	if os.Getenv(crashDedupEnv) != "" {
		crashDedupChild(os.Getenv("BUFFER_CRASH_PATH"), os.Getenv("BUFFER_CRASH_RUN"))
		return
	}
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	path := filepath.Join(t.TempDir(), "crash.db")
	reported := map[string]uint64{}
	deadline := time.Now().Add(10 * time.Second)
	runs := 0
	for run := 0; run < 20 && time.Now().Before(deadline); run++ {
		runs++
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKillDedup$")
		cmd.Env = append(os.Environ(), crashDedupEnv+"=1", "BUFFER_CRASH_PATH="+path, "BUFFER_CRASH_RUN="+strconv.Itoa(run))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(out)
		killAfter := 1 + rng.IntN(1500)
		seen, killed := 0, false
		for lines.Scan() {
			f := strings.Fields(lines.Text())
			switch {
			case len(f) == 3 && f[0] == "K":
				seq, _ := strconv.ParseUint(f[2], 10, 64)
				if _, dup := reported[f[1]]; dup {
					t.Fatalf("key %s reported twice", f[1])
				}
				reported[f[1]] = seq
				seen++
			case len(f) > 0 && f[0] == "ERR":
				t.Fatalf("child: %s", lines.Text())
			}
			if seen >= killAfter && !killed {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				killed = true
			}
		}
		_ = cmd.Wait()
		if !killed {
			t.Fatalf("run %d: child exited by itself", run)
		}
		verifyDedupAfterCrash(t, path, reported)
	}
	t.Logf("%d kills, %d acknowledged keys re-sent after each", runs, len(reported))
}

func verifyDedupAfterCrash(t *testing.T, path string, reported map[string]uint64) {
	t.Helper()
	db, err := Open(path, &Options{NoMoveAside: true, DedupWindow: 1 << 20, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer db.Close()
	if err := db.Check(context.Background()); err != nil {
		t.Fatalf("check after kill: %v", err)
	}
	// Every stored entry's key, from the data (nothing is ever acked).
	stored := map[string]uint64{}
	var recs []Record
	for _, e := range readAll(t, db, "s") {
		f := strings.SplitN(string(e.Data), "|", 3)
		if len(f) != 3 || f[1] != strconv.FormatUint(e.Seq, 10) {
			t.Fatalf("entry %d holds %.40q", e.Seq, e.Data)
		}
		stored[f[0]] = e.Seq
		recs = append(recs, Record{Enc: data("redelivered"), Key: []byte(f[0]), CheckDup: true})
	}
	for k, seq := range reported {
		if stored[k] != seq {
			t.Fatalf("acknowledged key %s (seq %d) stored at %d", k, seq, stored[k])
		}
	}
	before := streamStats(t, db, "s")
	if before.DedupKeys != int64(len(stored)) {
		t.Fatalf("index holds %d keys, the data %d entries", before.DedupKeys, len(stored))
	}
	for len(recs) > 0 {
		n := min(len(recs), 2000)
		out, err := db.AppendRecords(context.Background(), "s", recs[:n])
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range out {
			if k := string(recs[i].Key); !a.Dup || a.Seq != stored[k] {
				t.Fatalf("re-sent key %s: %+v, stored at seq %d", k, a, stored[k])
			}
		}
		recs = recs[n:]
	}
	after := streamStats(t, db, "s")
	if after.NextSeq != before.NextSeq || after.Depth != before.Depth || after.Dups != before.Dups+uint64(len(stored)) {
		t.Fatalf("re-sending changed the stream:\n%+v\n%+v", before, after)
	}
}
