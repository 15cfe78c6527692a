package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/sink"
	"github.com/edgegw/gateway/test/testenv"
)

// seed creates a fresh keyspace with the sink's schema, writes evs through
// the sink's write path, and returns the Cassandra address and keyspace.
func seed(t *testing.T, evs []*event.Event) (addr, keyspace string) {
	t.Helper()
	addr = testenv.Cassandra(t)
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	keyspace = "ctlt_" + hex.EncodeToString(b)
	cfg := sink.DefaultConfig()
	cfg.Cassandra.Hosts, cfg.Cassandra.Keyspace = []string{addr}, keyspace
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := sink.Connect(cfg.Cassandra, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Query("DROP KEYSPACE IF EXISTS " + keyspace).Exec()
		s.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := sink.Migrate(ctx, s, cfg.Cassandra, "gatewayctl-test", log); err != nil {
		t.Fatal(err)
	}
	if err := sink.NewWriter(s, cfg, nil, log).Write(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	return addr, keyspace
}

// ctl runs gatewayctl with args and returns its standard output.
func ctl(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRoot(func(k string) string { return env[k] }, &out, &errb)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := root.ExecuteContext(ctx)
	if err != nil {
		t.Logf("gatewayctl %v: %v\n%s", args, err, errb.String())
	}
	return out.String(), err
}

var t0 = time.Date(2025, 6, 30, 22, 0, 0, 250_000_000, time.UTC)

func scan(gw, dock string, seq uint64, at time.Duration, barcode string) *event.Event {
	return &event.Event{Gateway: gw, Stream: "scans", Seq: seq, Source: dock + "-scanner", Kind: event.KindScan,
		Time: t0.Add(at), Received: t0.Add(at + time.Millisecond),
		Attrs: map[string]any{"barcode": barcode, "dock": dock, "scanner": "zebra-" + dock}}
}

func TestTraceCommand(t *testing.T) {
	evs := []*event.Event{
		scan("gw-1", "dock1", 1, 0, "PKG-1"),
		scan("gw-1", "dock4", 2, time.Hour, "PKG-1"),
		scan("gw-1", "dock4", 3, time.Hour+time.Second, "PKG-2"),
		scan("gw-3", "dock7", 1, 2*time.Hour+30*time.Minute, "PKG-1"), // crosses midnight UTC
		scan("gw-2", "dock2", 1, 3*time.Hour, "PKG-1"),
	}
	addr, ks := seed(t, evs)

	// Flags.
	out, err := ctl(t, nil, "--cassandra", addr, "--keyspace", ks, "trace", "PKG-1", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got []sink.Scan
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	want := []*event.Event{evs[4], evs[3], evs[1], evs[0]}
	if len(got) != len(want) {
		t.Fatalf("trace = %+v, want %d scans", got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if !g.Time.Equal(w.Time) || g.Gateway != w.Gateway || g.Dock != w.Attrs["dock"] || g.Scanner != w.Attrs["scanner"] ||
			g.Source != w.Source || g.Stream != w.Stream || g.Seq != int64(w.Seq) || g.Barcode != "PKG-1" {
			t.Errorf("trace[%d] = %+v, want %+v", i, g, w)
		}
	}

	// Environment fallbacks, and the table output: header plus one aligned
	// line per scan, newest first.
	env := map[string]string{envCassandra: addr, envKeyspace: ks}
	out, err = ctl(t, env, "trace", "PKG-1")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "TIME") {
		t.Fatalf("table output:\n%s", out)
	}
	col := strings.Index(lines[0], "GATEWAY")
	for i, l := range lines[1:] {
		if !strings.HasPrefix(l[col:], want[i].Gateway+" ") || !strings.HasPrefix(l, want[i].Time.Format(time.RFC3339Nano)) {
			t.Errorf("line %d = %q, want gateway %s at column %d", i+1, l, want[i].Gateway, col)
		}
	}

	out, err = ctl(t, env, "trace", "NO-SUCH", "-o", "json")
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Errorf("unknown barcode: %q, %v", out, err)
	}
	if _, err := ctl(t, env, "trace", "PKG-1", "-o", "yaml"); err == nil {
		t.Error("-o yaml accepted")
	}
}
