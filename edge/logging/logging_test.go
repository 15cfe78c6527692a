package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injected clock: tests move it, never sleep.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// jsonLines decodes every line written by a JSON handler.
func jsonLines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestNewFormatsAndLevels(t *testing.T) {
	tests := []struct {
		name, level, format string
		wantLines           int    // of one debug, info, warn and error record
		wantPrefix          string // of the first line
	}{
		{"default", "", "", 3, "time="},
		{"debug text", "debug", "text", 4, "time="},
		{"warn json", "WARN", "json", 2, "{"},
		{"error json", "error", "json", 1, "{"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			log, err := New(&b, Options{Level: tt.level, Format: tt.format})
			if err != nil {
				t.Fatal(err)
			}
			log = log.With(ComponentKey, "test")
			log.Debug("d")
			log.Info("i")
			log.Warn("w")
			log.Error("e", "err", errors.New("boom"))
			lines := strings.Split(strings.TrimSpace(b.String()), "\n")
			if len(lines) != tt.wantLines {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), tt.wantLines, b.String())
			}
			if !strings.HasPrefix(lines[0], tt.wantPrefix) || !strings.Contains(lines[0], "test") {
				t.Fatalf("first line %q", lines[0])
			}
		})
	}
}

func TestNewRejectsUnknownLevelAndFormat(t *testing.T) {
	if _, err := New(&bytes.Buffer{}, Options{Level: "verbose"}); err == nil {
		t.Fatal("level verbose accepted")
	}
	if _, err := New(&bytes.Buffer{}, Options{Format: "xml"}); err == nil {
		t.Fatal("format xml accepted")
	}
}

// An uplink that stays down: one error line per interval per (message,
// component), each carrying how many were held back.
func TestRateLimitRepeatedErrors(t *testing.T) {
	clk := newFakeClock()
	var b bytes.Buffer
	log, err := New(&b, Options{Format: "json", RepeatEvery: 30 * time.Second, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	up := log.With(ComponentKey, "uplink")
	for i := 0; i < 100; i++ { // a retry storm within one interval
		up.Error("not forwarding yet", "err", "connection refused", "attempt", i)
		clk.Advance(100 * time.Millisecond) // 10s in all
	}
	// Another component with the same message, and another message: not limited by the first.
	log.Error("not forwarding yet", ComponentKey, "buffer")
	up.Error("forwarder stopped")
	// Info is never limited.
	for i := 0; i < 3; i++ {
		up.Info("producer connected")
	}
	lines := jsonLines(t, &b)
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 6:\n%s", len(lines), b.String())
	}
	if lines[0]["attempt"] != float64(0) || lines[0][SuppressedKey] != nil {
		t.Fatalf("first line %v", lines[0])
	}
	if lines[1]["component"] != "buffer" || lines[2]["msg"] != "forwarder stopped" {
		t.Fatalf("lines %v %v", lines[1], lines[2])
	}

	b.Reset()
	clk.Advance(19 * time.Second) // 29s after the first: still held back
	up.Error("not forwarding yet", "attempt", 100)
	if b.Len() != 0 {
		t.Fatalf("written inside the interval: %s", b.String())
	}
	clk.Advance(time.Second) // 30s: written, with the count
	up.Error("not forwarding yet", "attempt", 101)
	lines = jsonLines(t, &b)
	if len(lines) != 1 || lines[0]["attempt"] != float64(101) || lines[0][SuppressedKey] != float64(100) {
		t.Fatalf("after the interval: %v", lines)
	}

	b.Reset()
	clk.Advance(time.Hour) // a quiet spell: the next one has nothing to report
	up.Error("not forwarding yet", "attempt", 102)
	lines = jsonLines(t, &b)
	if len(lines) != 1 || lines[0][SuppressedKey] != nil {
		t.Fatalf("after a quiet spell: %v", lines)
	}
}

// The component can come from With (before or after other attrs) or from
// the record; a component inside a group does not count.
func TestRateLimitComponentSources(t *testing.T) {
	clk := newFakeClock()
	var b bytes.Buffer
	h := RateLimit(slog.NewJSONHandler(&b, nil), RateLimitOptions{Every: time.Minute, Now: clk.Now})
	log := slog.New(h)
	a := log.With("source", "dock1", ComponentKey, "mqtt")
	c := log.With(ComponentKey, "gpio").With("pin", 17)
	g := log.WithGroup("lib").With(ComponentKey, "paho") // grouped: not the record's component
	for i := 0; i < 5; i++ {
		a.Warn("source stopped; retrying")
		c.Warn("source stopped; retrying")
		log.Warn("source stopped; retrying", ComponentKey, "i2c")
		g.Warn("source stopped; retrying")
		log.Warn("source stopped; retrying") // no component: same key as g
	}
	lines := jsonLines(t, &b)
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4 (mqtt, gpio, i2c, none):\n%s", len(lines), b.String())
	}
}

// Many distinct messages do not grow the limiter without bound.
func TestRateLimitBoundedKeys(t *testing.T) {
	clk := newFakeClock()
	h := RateLimit(slog.NewTextHandler(&bytes.Buffer{}, nil), RateLimitOptions{Every: time.Second, MaxKeys: 10, Now: clk.Now})
	log := slog.New(h)
	for i := 0; i < 1000; i++ {
		log.Error("distinct " + strings.Repeat("x", i%50) + string(rune('a'+i%26)))
		if i%100 == 0 {
			clk.Advance(2 * time.Second)
		}
	}
	if n := h.(*rateLimited).lim.Len(); n > 10 {
		t.Fatalf("%d keys remembered, MaxKeys 10", n)
	}
}

// Concurrent loggers share one limit (run with -race).
func TestRateLimitConcurrent(t *testing.T) {
	clk := newFakeClock()
	var mu sync.Mutex
	var b bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return b.Write(p) })
	log := slog.New(RateLimit(slog.NewJSONHandler(w, nil), RateLimitOptions{Every: time.Minute, Now: clk.Now}))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := log.With(ComponentKey, "uplink")
			for i := 0; i < 200; i++ {
				l.Error("send failed")
			}
		}()
	}
	wg.Wait()
	clk.Advance(time.Minute)
	log.Error("send failed", ComponentKey, "uplink")
	mu.Lock()
	defer mu.Unlock()
	lines := jsonLines(t, &b)
	if len(lines) != 2 || lines[1][SuppressedKey] != float64(8*200-1) {
		t.Fatalf("lines %v", lines)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
