package edge

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/buffer"
	"github.com/edgegw/gateway/edge/config"
	"github.com/edgegw/gateway/event"
)

const hostile = `<script>alert(1)</script>`

// The page shows the gateway's state and every device-supplied string as
// text, never as markup; it loads nothing from anywhere.
func TestStatusPage(t *testing.T) {
	g, clk := pageGateway(t)
	g.ready = true
	ctx := context.Background()
	sink := g.observe(ctx, config.Source{Name: "scanners", Driver: "mqtt"}, nil, g.testSink())
	evs := []*event.Event{
		{Stream: "scans", Source: "dock1-scn-01", Kind: event.KindScan, Attrs: map[string]any{"barcode": "00106141410000000019", "symbology": "GS1-128"}},
		{Stream: "scans", Source: `"><img src=x onerror=alert(2)>`, Kind: event.KindScan, Attrs: map[string]any{"barcode": hostile}},
		{Stream: "telemetry", Source: "temp-01", Kind: event.KindReading, Attrs: map[string]any{"value": 4.5}},
	}
	if err := sink.Emit(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := g.db.Quarantine(ctx, buffer.QuarantineItem{Source: "x", Reason: "malformed", Time: clk.Now(), Payload: []byte("{")}); err != nil {
		t.Fatal(err)
	}
	g.setConfigState("42", "applied")
	g.startSampler() // the first sample now
	defer g.stopSampler()

	rec := get(t, g.handler(), "/")
	body := rec.Body.String()
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, body)
	}
	for k, want := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Content-Security-Policy": pageCSP,
		"X-Content-Type-Options":  "nosniff",
	} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	for _, want := range []string{
		`<meta name="viewport" content="width=device-width, initial-scale=1">`,
		`<meta http-equiv="refresh" content="10">`,
		`<h1 id="gateway">gw-page-1</h1>`,
		`v1.2.3`,
		`id="stream-scans"`, `id="stream-telemetry"`,
		`<span class="state bad">offline</span>`,
		`00106141410000000019`, `dock1-scn-01`, `GS1-128`,
		`&lt;script&gt;alert(1)&lt;/script&gt;`,
		`&#34;&gt;&lt;img src=x onerror=alert(2)&gt;`,
		`<dd id="quarantined">1</dd>`,
		`<dd id="config-version">42</dd>`,
		`<svg class="spark"`, `<polyline points="`,
		`up 1h 30m`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Without the escaped hostile text, nothing that loads or runs anything.
	rest := strings.ReplaceAll(body, `&#34;&gt;&lt;img src=x onerror=alert(2)&gt;`, "")
	for _, bad := range []string{"<script", "<img", "onerror=alert(2)>", "http://", "https://", "src=", "@import", "url("} {
		if strings.Contains(rest, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	// The scan list holds the two scans, newest first; the reading is not a scan.
	if i, j := strings.Index(body, "alert(1)"), strings.Index(body, "00106141410000000019"); i < 0 || j < 0 || i > j {
		t.Errorf("scans not newest first")
	}
	if strings.Contains(body, "temp-01") {
		t.Errorf("a reading is listed as a scan")
	}
}

func TestStatusPageNotReady(t *testing.T) {
	g, _ := pageGateway(t)
	body := get(t, g.handler(), "/").Body.String()
	if !strings.Contains(body, `id="notready"`) || !strings.Contains(body, "No scans since the gateway started.") {
		t.Fatalf("page:\n%s", body)
	}
}

func TestSparkline(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(minAgo int, depth int64) backlogSample {
		return backlogSample{At: now.Add(-time.Duration(minAgo) * time.Minute), Depth: depth}
	}
	tests := []struct {
		name       string
		samples    []backlogSample
		wantPoints string
		wantMax    int64
	}{
		{"none", nil, "", 0},
		{"one: flat from the window's start", []backlogSample{at(0, 5)}, "0.0,2.0 240.0,2.0", 5},
		{"empty backlog: along the bottom", []backlogSample{at(60, 0), at(0, 0)}, "0.0,46.0 240.0,46.0", 0},
		{"scaled to the largest", []backlogSample{at(60, 0), at(30, 100), at(0, 50)}, "0.0,46.0 120.0,2.0 240.0,24.0", 100},
		{"older than the window: left out", []backlogSample{at(90, 7), at(30, 10), at(0, 10)}, "120.0,2.0 240.0,2.0", 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSparkline(tt.samples, now, time.Hour)
			if s.Points != tt.wantPoints || (tt.wantMax != 0 && s.Max < tt.wantMax) {
				t.Fatalf("points %q max %d, want %q max %d", s.Points, s.Max, tt.wantPoints, tt.wantMax)
			}
			if s.Points != "" && !strings.HasSuffix(s.Area, ",48") {
				t.Fatalf("area %q not closed at the bottom", s.Area)
			}
		})
	}
}

func TestScanRing(t *testing.T) {
	r := newScanRing(recentScans)
	if len(r.list()) != 0 {
		t.Fatal("new ring not empty")
	}
	for i := 1; i <= 45; i++ {
		r.add(ScanNote{Barcode: fmt.Sprint(i)})
	}
	got := r.list()
	if len(got) != recentScans || got[0].Barcode != "45" || got[recentScans-1].Barcode != "26" {
		t.Fatalf("ring %v", got)
	}
}

func TestScanNoteClipsLongAndInvalidStrings(t *testing.T) {
	n := scanNoteOf(&event.Event{Source: "s\xff", Kind: event.KindScan, Attrs: map[string]any{"barcode": strings.Repeat("9", 100<<10)}})
	if len([]rune(n.Barcode)) != maxNoteLen || !strings.HasSuffix(n.Barcode, "…") {
		t.Fatalf("barcode of %d runes", len([]rune(n.Barcode)))
	}
	if n.Source != "s\uFFFD" {
		t.Fatalf("source %q", n.Source)
	}
	if n := scanNoteOf(&event.Event{Attrs: map[string]any{"barcode": int64(123)}}); n.Barcode != "123" {
		t.Fatalf("numeric barcode %q", n.Barcode)
	}
}

func TestBacklogHistory(t *testing.T) {
	h := newBacklogHistory(3)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	stats := func(names ...string) buffer.Stats {
		var st buffer.Stats
		for i, n := range names {
			st.Streams = append(st.Streams, buffer.StreamStats{Config: buffer.StreamConfig{Name: n}, Depth: int64(i + 1)})
		}
		return st
	}
	for i := 0; i < 5; i++ {
		h.sample(t0.Add(time.Duration(i)*time.Minute), stats("a", "b"))
	}
	a := h.get("a")
	if len(a) != 3 || !a[0].At.Equal(t0.Add(2*time.Minute)) || !a[2].At.Equal(t0.Add(4*time.Minute)) {
		t.Fatalf("history of a: %v", a)
	}
	h.sample(t0.Add(5*time.Minute), stats("a"))
	if len(h.get("b")) != 0 {
		t.Fatal("a stream that left is still charted")
	}
}

func TestSummariseUplink(t *testing.T) {
	started := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return started.Add(time.Duration(m) * time.Minute) }
	tests := []struct {
		name       string
		streams    []StreamStatus
		wantOnline bool
		wantSince  time.Time
		wantErr    string
	}{
		{"no streams", nil, false, started, ""},
		{"never connected", []StreamStatus{{Name: "a", UplinkError: "dial tcp: refused"}, {Name: "b"}}, false, started, "dial tcp: refused"},
		{"all online: since the last connected", []StreamStatus{{UplinkOnline: true, UplinkSince: at(3)}, {UplinkOnline: true, UplinkSince: at(5)}}, true, at(5), ""},
		{"one down: since it went down", []StreamStatus{{UplinkOnline: true, UplinkSince: at(3)}, {UplinkSince: at(9)}, {UplinkSince: at(7)}}, false, at(7), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := summariseUplink(tt.streams, started)
			if u.Online != tt.wantOnline || !u.Since.Equal(tt.wantSince) || u.LastError != tt.wantErr || u.Streams != len(tt.streams) {
				t.Fatalf("%+v", u)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"dial tcp 10.0.0.1:6650: connection refused", "dial tcp 10.0.0.1:6650: connection refused"},
		{"connect pulsar+ssl://alice:s3cret@broker:6651 failed", "connect pulsar+ssl://***@broker:6651 failed"},
		{"auth failed: token=eyJhbGciOi.abc.def", "auth failed: token=***"},
		{`{"password": "hunter2", "user": "bob"}`, `{"password": ***, "user": "bob"}`},
		{"Authorization: Bearer abc.def", "Authorization: ***"},
	}
	for _, tt := range tests {
		if got := redact(tt.in); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// The template is self-contained: no external references at all.
func TestTemplateHasNoExternalReferences(t *testing.T) {
	b, err := templateFS.ReadFile("templates/status.html")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?i)(<script|<link|<img|src=|https?://|url\()`).FindString(string(b)); m != "" {
		t.Fatalf("template references %q", m)
	}
}
