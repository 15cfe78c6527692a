package firmware

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The launcher tests run this test binary as the gateway: under the name of
// a slot, with os.Args[1] == childArg it behaves as the file
// <binary>.mode says: ready, offline (ready, uplink offline), exit, hang.
const childArg = "firmware-test-child"

func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == childArg {
		os.Exit(child(os.Args[2]))
	}
	os.Exit(m.Run())
}

func child(addr string) int {
	mode, err := os.ReadFile(os.Args[0] + ".mode")
	if err != nil {
		return 1
	}
	switch strings.TrimSpace(string(mode)) {
	case "exit":
		return 1
	case "hang":
		select {}
	}
	online := strings.TrimSpace(string(mode)) == "ready"
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return 1
	}
	go func() {
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = json.NewEncoder(w).Encode(map[string]any{"ready": true, "uplink": map[string]any{"online": online, "last_error": "connection refused"}})
		}))
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	return 0
}

type launchEnv struct {
	dir      Dir
	packaged string
	addr     string
}

// newLaunchEnv makes a firmware directory whose slot a runs mode a and
// whose packaged binary runs mode packaged, with version 4 pending.
func newLaunchEnv(t *testing.T, a, packaged string, uplink bool) *launchEnv {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	d := Dir(t.TempDir())
	e := &launchEnv{dir: d, packaged: filepath.Join(string(d), "packaged")}
	for path, mode := range map[string]string{d.SlotPath(SlotA, ""): a, e.packaged: packaged} {
		if err := os.Symlink(self, path); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path+".mode", []byte(mode), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	ln.Close()
	if _, err := d.Update(func(st *State) error {
		st.Pending = &Trial{Release: Release{Slot: SlotA, Version: 4, Build: "v4"}, UplinkRequired: uplink}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return e
}

// run runs the launcher until the state satisfies until, then stops it and
// returns the final state and the launcher's exit status.
func (e *launchEnv) run(t *testing.T, until func(State) bool) (State, int) {
	t.Helper()
	l, err := NewLauncher(LauncherOptions{Dir: e.dir, Packaged: e.packaged, Args: []string{childArg, e.addr},
		StatusURL: "http://" + e.addr + "/status.json", Probation: 3 * time.Second, Settle: 300 * time.Millisecond,
		Poll: 50 * time.Millisecond, StopTimeout: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- l.Run(ctx, nil) }()
	deadline := time.Now().Add(20 * time.Second)
	var st State
	for {
		st, err = e.dir.Load()
		if err == nil && until(st) {
			break
		}
		select {
		case code := <-done:
			t.Fatalf("the launcher ended (status %d) before the state was reached: %+v", code, st)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("state not reached within 20s: %+v (%v)", st, err)
		}
	}
	cancel()
	return st, <-done
}

func TestLauncherCommits(t *testing.T) {
	e := newLaunchEnv(t, "ready", "exit", true)
	st, code := e.run(t, func(s State) bool { return s.Last.State == StateCommitted })
	if st.Current.Slot != SlotA || st.Current.Version != 4 || st.Previous == nil || st.Previous.Slot != SlotPackaged || st.Trial != nil || st.Tried != 4 {
		t.Fatalf("state after commit: %+v", st)
	}
	if code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0", code)
	}
}

func TestLauncherRollsBack(t *testing.T) {
	for _, tc := range []struct {
		mode   string
		uplink bool
		want   string
	}{
		{"exit", true, "exited in probation"},
		{"hang", false, "was not ready within 3s"},
		{"offline", true, "the uplink is not online"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			e := newLaunchEnv(t, tc.mode, "ready", tc.uplink)
			st, _ := e.run(t, func(s State) bool { return s.Last.State == StateRolledBack })
			if st.Current.Slot != SlotPackaged || st.Trial != nil || st.Pending != nil || st.Tried != 4 || !strings.Contains(st.Last.Reason, tc.want) {
				t.Fatalf("state after rollback: %+v; want reason containing %q", st, tc.want)
			}
		})
	}
}

// Without an uplink on the previous release, a new one that cannot reach
// Pulsar either is not rolled back for it.
func TestLauncherOfflineWithoutUplinkCommits(t *testing.T) {
	e := newLaunchEnv(t, "offline", "exit", false)
	st, _ := e.run(t, func(s State) bool { return s.Last.State == StateCommitted })
	if st.Current.Version != 4 {
		t.Fatalf("state: %+v", st)
	}
}

// A release started in probation maxTrialStarts times (the launcher killed
// each time) is rolled back at the next start, before it runs again.
func TestLauncherInterruptedTrial(t *testing.T) {
	e := newLaunchEnv(t, "hang", "ready", true)
	if _, err := e.dir.Update(func(st *State) error {
		st.Trial, st.Pending = st.Pending, nil
		st.Trial.Attempts = maxTrialStarts
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	st, _ := e.run(t, func(s State) bool { return s.Last.State == StateRolledBack })
	if want := fmt.Sprintf("stopped %d times", maxTrialStarts); !strings.Contains(st.Last.Reason, want) {
		t.Fatalf("reason %q, want %q", st.Last.Reason, want)
	}
}

// A package upgrade that replaces the packaged binary wins over the release
// in the slots: the packaged binary runs, older releases stay stale.
func TestLauncherPackageUpgrade(t *testing.T) {
	e := newLaunchEnv(t, "ready", "ready", false)
	st, _ := e.run(t, func(s State) bool { return s.Last.State == StateCommitted })
	if st.Current.Slot != SlotA {
		t.Fatalf("state: %+v", st)
	}
	// The package installs another binary (here: another file, same mode).
	if err := os.Remove(e.packaged); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.packaged, []byte("#!/bin/sh\nexec sleep 1000\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	st, _ = e.run(t, func(s State) bool { return s.Current.Slot == SlotPackaged })
	if st.Tried != 4 || st.Previous != nil || !strings.Contains(st.Last.Reason, "package upgrade") {
		t.Fatalf("state after the package upgrade: %+v", st)
	}
}
