package buffer

import (
	"bufio"
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

const crashEnv = "BUFFER_CRASH_CHILD"

// crashChild appends (and in "compact" mode also acks and compacts) until it
// is killed, printing "ACK first n" after each Append returned, "ACKING upTo"
// before each Ack, and "COMPACT start|end" around each compaction. In
// "journal" mode the journal is small and moved into the file every few
// commits (and by a ticker), so that kills land during moves too; it
// prints "MOVES n" as moves happen.
func crashChild(path, mode, run string) {
	opts := &Options{LockTimeout: 10 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mode == "journal" {
		opts.JournalSize, opts.MoveInterval, opts.SweepInterval = 64<<10, 5*time.Millisecond, 5*time.Millisecond
	}
	db, err := Open(path, opts)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	if err := db.ConfigureStream(StreamConfig{Name: "s"}); err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
		mu.Unlock()
	}
	for g := 0; g < 4; g++ {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(g), uint64(time.Now().UnixNano())))
			for {
				recs := make([]Encoder, 1+rng.IntN(20))
				for i := range recs {
					recs[i] = seqData("r"+run, 40+rng.IntN(200))
				}
				first, err := db.Append(context.Background(), "s", recs)
				if err != nil {
					say("ERR %v", err)
					os.Exit(2)
				}
				say("ACK %d %d", first, len(recs))
			}
		}()
	}
	if mode == "journal" {
		var seen uint64
		for {
			if n := db.Stats().Moves; n != seen {
				seen = n
				say("MOVES %d", n)
			}
			time.Sleep(time.Millisecond) // polling a counter, not synchronising
		}
	}
	if mode == "compact" {
		for {
			st := db.Stats().Streams[0]
			if st.Depth > 2000 {
				upTo := st.FirstSeq + uint64(st.Depth) - 1000
				say("ACKING %d", upTo)
				if err := db.Ack("s", upTo); err != nil {
					say("ERR %v", err)
					os.Exit(2)
				}
			}
			say("COMPACT start")
			if err := db.Compact(context.Background()); err != nil {
				say("ERR %v", err)
				os.Exit(2)
			}
			say("COMPACT end")
		}
	}
	select {}
}

func TestCrashKill(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		crashChild(os.Getenv("BUFFER_CRASH_PATH"), os.Getenv("BUFFER_CRASH_MODE"), os.Getenv("BUFFER_CRASH_RUN"))
		return
	}
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	path := filepath.Join(t.TempDir(), "crash.db")
	const kills = 60
	deadline := time.Now().Add(50 * time.Second)
	acked := map[uint64]int{} // seq -> run that was told it is durable
	var maxAcked, ackFloor uint64
	midCompaction, moves := 0, 0
	runs := 0
	for run := 0; run < kills && time.Now().Before(deadline); run++ {
		runs++
		mode := "append"
		switch run % 3 {
		case 1:
			mode = "journal"
		case 2:
			mode = "compact"
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKill$")
		cmd.Env = append(os.Environ(), crashEnv+"=1", "BUFFER_CRASH_PATH="+path,
			"BUFFER_CRASH_MODE="+mode, "BUFFER_CRASH_RUN="+strconv.Itoa(run))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		prevMax := maxAcked
		lines := bufio.NewScanner(out)
		killAfter := 1 + rng.IntN(300)
		seen, compacting, runMoves := 0, false, 0
		killed := false
		for lines.Scan() {
			f := strings.Fields(lines.Text())
			switch {
			case len(f) == 3 && f[0] == "ACK":
				first, _ := strconv.ParseUint(f[1], 10, 64)
				n, _ := strconv.ParseUint(f[2], 10, 64)
				for s := first; s < first+n; s++ {
					if prev, dup := acked[s]; dup {
						t.Fatalf("seq %d acknowledged in run %d and again in run %d", s, prev, run)
					}
					if s <= prevMax {
						t.Fatalf("run %d got seq %d, not above %d from earlier runs", run, s, prevMax)
					}
					acked[s] = run
					maxAcked = max(maxAcked, s)
				}
				seen++
			case len(f) == 2 && f[0] == "ACKING":
				up, _ := strconv.ParseUint(f[1], 10, 64)
				ackFloor = max(ackFloor, up)
			case len(f) == 2 && f[0] == "MOVES":
				n, _ := strconv.Atoi(f[1])
				runMoves = n
			case len(f) == 2 && f[0] == "COMPACT":
				compacting = f[1] == "start"
			case len(f) > 0 && f[0] == "ERR":
				t.Fatalf("child: %s", lines.Text())
			}
			if seen >= killAfter && !killed {
				if mode == "compact" && rng.IntN(2) == 0 && !compacting {
					continue // prefer to kill while a compaction runs
				}
				if compacting {
					midCompaction++
				}
				_ = cmd.Process.Signal(syscall.SIGKILL)
				killed = true
			}
		}
		_ = cmd.Wait()
		moves += runMoves
		if !killed {
			t.Fatalf("run %d: child exited by itself", run)
		}
		verifyAfterCrash(t, path, acked, ackFloor, maxAcked)
	}
	if runs < 50 {
		t.Fatalf("only %d kills within the time limit", runs)
	}
	t.Logf("%d kills, %d during a compaction, %d moves of the journal in the journal-mode runs, %d acknowledged seqs verified", runs, midCompaction, moves, len(acked))
	if moves == 0 {
		t.Fatal("no journal moved into the file in the journal-mode runs: kills during moves were not tested")
	}
}

func verifyAfterCrash(t *testing.T, path string, acked map[uint64]int, ackFloor, maxAcked uint64) {
	t.Helper()
	db, err := Open(path, &Options{NoMoveAside: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer db.Close()
	if _, err := os.Stat(path + compactSuffix); !os.IsNotExist(err) {
		t.Fatalf("interrupted compaction file left behind: %v", err)
	}
	if err := db.Check(context.Background()); err != nil {
		t.Fatalf("check after kill: %v", err)
	}
	st := db.Stats().Streams[0]
	if st.NextSeq <= maxAcked {
		t.Fatalf("next seq %d would reuse acknowledged seq %d", st.NextSeq, maxAcked)
	}
	present := map[uint64]string{}
	var after uint64
	for {
		es, err := db.Read("s", after, 5000)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			present[e.Seq] = string(e.Data)
		}
		after = es[len(es)-1].Seq
	}
	for seq, run := range acked {
		if seq <= ackFloor {
			continue // possibly acked (removed) by a compaction child
		}
		d, ok := present[seq]
		if !ok {
			t.Fatalf("acknowledged seq %d (run %d) missing after kill", seq, run)
		}
		if want := fmt.Sprintf("r%d:%d:", run, seq); !strings.HasPrefix(d, want) {
			t.Fatalf("seq %d holds %.20q, want prefix %q (seq reused?)", seq, d, want)
		}
	}
}
