package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/sink"
)

func TestEventsCommand(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	ev := func(gw, stream string, seq uint64, ago time.Duration) *event.Event {
		return &event.Event{Gateway: gw, Stream: stream, Seq: seq, Source: "door-1", Kind: event.KindGPIO,
			Time: now.Add(-ago), Attrs: map[string]any{"pin": "GPIO17", "level": seq%2 == 0}}
	}
	evs := []*event.Event{
		ev("gw-1", "io", 1, 50*time.Hour), // too old for --since 26h
		ev("gw-1", "io", 2, 25*time.Hour), // yesterday's partition
		ev("gw-1", "io", 3, 2*time.Hour),
		ev("gw-1", "telemetry", 1, time.Hour),
		ev("gw-2", "io", 1, time.Hour), // another gateway
	}
	addr, ks := seed(t, evs)
	args := []string{"--cassandra", addr, "--keyspace", ks, "events", "--gateway", "gw-1"}

	out, err := ctl(t, nil, append(args, "--since", "26h", "-o", "json")...)
	if err != nil {
		t.Fatal(err)
	}
	var got []sink.EventRow
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	want := []*event.Event{evs[3], evs[2], evs[1]}
	if len(got) != len(want) {
		t.Fatalf("events = %+v, want %d", got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if !g.Time.Equal(w.Time) || g.Gateway != "gw-1" || g.Stream != w.Stream || g.Seq != int64(w.Seq) ||
			g.Kind != w.Kind || g.Attrs["pin"] != "GPIO17" {
			t.Errorf("events[%d] = %+v, want %+v", i, g, w)
		}
	}

	since := now.Add(-90 * time.Minute).Format(time.RFC3339)
	out, err = ctl(t, nil, append(args, "--since", since, "--limit", "5")...)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "TIME") || !strings.Contains(lines[1], "telemetry") ||
		!strings.Contains(lines[1], "level=false pin=GPIO17") {
		t.Errorf("table output:\n%s", out)
	}

	out, err = ctl(t, nil, append(args, "--since", "60h", "--limit", "1", "-o", "json")...)
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || len(got) != 1 || got[0].Stream != "telemetry" {
		t.Errorf("--limit 1: %q, %v", out, err)
	}
	if _, err := ctl(t, nil, "--cassandra", addr, "events", "--since", "1h"); err == nil {
		t.Error("events without --gateway accepted")
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"1h":                        now.Add(-time.Hour),
		"90m":                       now.Add(-90 * time.Minute),
		"2d":                        now.Add(-48 * time.Hour),
		"2025-04-30T10:00:00Z":      time.Date(2025, 4, 30, 10, 0, 0, 0, time.UTC),
		"2025-04-30T10:00:00+02:00": time.Date(2025, 4, 30, 8, 0, 0, 0, time.UTC),
	} {
		got, err := parseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "yesterday", "-1h", "2025-04-30"} {
		if _, err := parseSince(in, now); err == nil {
			t.Errorf("parseSince(%q) accepted", in)
		}
	}
}
