package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegw/gateway/buffer"
	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/edge/config"
	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/testenv"
)

// pageClock is an injected clock the tests move.
type pageClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *pageClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *pageClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// pageConfig is a gateway config without sources whose uplink points at a
// port nothing listens on.
func pageConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
gateway: {id: gw-page-1}
buffer: {path: %q}
streams:
  - {name: scans, priority: 10, overflow: reject-new}
  - {name: telemetry, priority: 1, overflow: drop-oldest, max_events: 3}
uplink:
  service_url: pulsar://127.0.0.1:1
  admin_url: http://127.0.0.1:1
http: {listen: "127.0.0.1:0"}
`, filepath.Join(t.TempDir(), "buffer.db"))))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// pageGateway is a Gateway with its store open, as Run leaves it, but no
// pipeline: the handlers are tested without goroutines.
func pageGateway(t *testing.T) (*Gateway, *pageClock) {
	t.Helper()
	clk := &pageClock{t: time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)}
	cfg := pageConfig(t)
	g := New(cfg, Options{Logger: discardLogger(), Now: clk.Now, Build: Build{Version: "v1.2.3", Commit: "abc123", GoVersion: "go1.x"}})
	g.start = clk.Now().Add(-90 * time.Minute)
	db, err := buffer.Open(cfg.Buffer.Path, g.bufferOptions(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := configureStreams(db, cfg); err != nil {
		t.Fatal(err)
	}
	g.db = db
	g.metrics.reg.MustRegister(&bufferCollector{db: db})
	return g, clk
}

func (g *Gateway) testSink() *ingest {
	return &ingest{db: g.db, gateway: g.cfg.Gateway.ID, boot: g.db.Boot(), start: g.start, now: g.now, stats: &ingestStats{m: g.metrics}}
}

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

// metric returns the value of the sample of family name whose labels
// contain every one of match, and whether there is one.
func metric(t *testing.T, h http.Handler, name string, match ...string) (float64, bool) {
	t.Helper()
	rec := get(t, h, "/metrics")
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, m := range match {
			ok = ok && strings.Contains(line, m)
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		return v, true
	}
	return 0, false
}

func wantMetric(t *testing.T, h http.Handler, want float64, name string, match ...string) {
	t.Helper()
	got, ok := metric(t, h, name, match...)
	if !ok {
		t.Fatalf("no sample %s%v on /metrics", name, match)
	}
	if got != want {
		t.Fatalf("%s%v = %v, want %v", name, match, got, want)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	g, _ := pageGateway(t)
	h := g.handler()
	tests := []struct {
		name     string
		ready    bool
		path     string
		wantCode int
		wantBody string
	}{
		{"healthz while starting", false, "/healthz", 200, "ok\n"},
		{"readyz while starting", false, "/readyz", 503, "not ready"},
		{"healthz when ready", true, "/healthz", 200, "ok\n"},
		{"readyz when ready", true, "/readyz", 200, "ready\n"},
		{"unknown path", true, "/nope", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.mu.Lock()
			g.ready = tt.ready
			g.mu.Unlock()
			rec := get(t, h, tt.path)
			if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Fatalf("%s: %d %q, want %d %q", tt.path, rec.Code, rec.Body, tt.wantCode, tt.wantBody)
			}
		})
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/readyz", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /readyz: %d", rec.Code)
	}
}

// The whole gateway with its uplink at an address nothing listens on: it is
// ready (an offline uplink is not a reason to restart it), serves on
// loopback, and says the uplink is offline.
func TestRunReadyWithUplinkOffline(t *testing.T) {
	cfg := pageConfig(t)
	g := New(cfg, Options{Logger: discardLogger()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	testenv.Eventually(t, 30*time.Second, "the gateway ready", func() bool {
		select {
		case err := <-done:
			done <- err // for the deferred check
			t.Fatalf("Run returned early: %v", err)
		default:
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.ready
	})
	addr := g.HTTPAddr()
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("listening on %q, want loopback", addr)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/": 200, "/metrics": 200, "/status.json": 200} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
	}
	st := g.Status()
	if !st.Ready || st.Uplink.Online || st.Uplink.Streams != 2 || st.Uplink.Connected != 0 || st.Uplink.Since.IsZero() {
		t.Fatalf("status %+v", st)
	}
	h := g.handler()
	wantMetric(t, h, 0, "edge_gateway_uplink_connected", `stream="scans"`)
	wantMetric(t, h, 0, "edge_gateway_uplink_connected", `stream="telemetry"`)
	if n := len(g.metrics.history.get("scans")); n != 1 {
		t.Fatalf("%d backlog samples at start, want 1", n)
	}
}

// statsDriver is a driver with a Metrics method, as drivers/mqtt has.
type statsDriver struct{}

func (statsDriver) Run(ctx context.Context, _ drivers.Sink) error { <-ctx.Done(); return nil }
func (statsDriver) Metrics() []drivers.Metric {
	quarantined := func(reason string, v float64) drivers.Metric {
		return drivers.Metric{Name: "edge_gateway_fake_quarantined_total", Help: "Inputs quarantined, by reason.", Kind: drivers.Counter,
			Labels: []drivers.Label{{Name: "reason", Value: reason}}, Value: v}
	}
	return []drivers.Metric{
		{Name: "edge_gateway_fake_received_total", Help: "Inputs received.", Kind: drivers.Counter, Value: 7},
		{Name: "edge_gateway_fake_paused", Help: "1 while paused.", Kind: drivers.Gauge, Value: 1},
		{Name: "edge_gateway_fake_pending", Help: "Inputs not yet acknowledged.", Kind: drivers.Gauge, Value: 3},
		quarantined("malformed", 4),
		quarantined("empty", 0),
	}
}

func TestMetricsFromHooks(t *testing.T) {
	g, _ := pageGateway(t)
	h := g.handler()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := g.observe(ctx, config.Source{Name: "dock1-in", Driver: "fake"}, statsDriver{}, g.testSink())

	scan := func(bc string, redelivered bool) *event.Event {
		return &event.Event{Stream: "scans", Source: "dock1-scn-1", Kind: event.KindScan, Attrs: map[string]any{"barcode": bc},
			Redelivered: redelivered, DedupKey: []byte("key-" + bc)}
	}
	if err := sink.Emit(ctx, []*event.Event{scan("A", false), scan("B", false)}); err != nil {
		t.Fatal(err)
	}
	// A re-delivery of B, already stored: a duplicate.
	if err := sink.Emit(ctx, []*event.Event{scan("B", true), scan("C", true)}); err != nil {
		t.Fatal(err)
	}
	if err := sink.Quarantine(ctx, "site/dock1/scanner/x", []byte("{"), "malformed"); err != nil {
		t.Fatal(err)
	}
	wantMetric(t, h, 3, "edge_gateway_source_events_total", `source="dock1-in"`, `result="accepted"`)
	wantMetric(t, h, 1, "edge_gateway_source_events_total", `source="dock1-in"`, `result="duplicate"`)
	wantMetric(t, h, 1, "edge_gateway_source_events_total", `source="dock1-in"`, `result="quarantined"`)
	wantMetric(t, h, 3, "edge_gateway_buffer_events", `stream="scans"`)
	// Two appends and a quarantine, at least: each a synced transaction.
	if v, ok := metric(t, h, "edge_gateway_buffer_commit_duration_seconds_count"); !ok || v < 3 {
		t.Fatalf("buffer commits observed: %v (exported: %v), want at least 3", v, ok)
	}
	wantMetric(t, h, 1, "edge_gateway_quarantine_events")

	// The driver's own metrics, as its Metrics() lists them, per source.
	wantMetric(t, h, 7, "edge_gateway_fake_received_total", `source="dock1-in"`)
	wantMetric(t, h, 1, "edge_gateway_fake_paused", `source="dock1-in"`)
	wantMetric(t, h, 3, "edge_gateway_fake_pending", `source="dock1-in"`)
	wantMetric(t, h, 4, "edge_gateway_fake_quarantined_total", `source="dock1-in"`, `reason="malformed"`)
	wantMetric(t, h, 0, "edge_gateway_fake_quarantined_total", `source="dock1-in"`, `reason="empty"`)

	// The latest scans, newest first, without the duplicate.
	var got []string
	for _, s := range g.metrics.scans.list() {
		got = append(got, s.Barcode)
	}
	if strings.Join(got, ",") != "C,B,A" {
		t.Fatalf("latest scans %v, want C,B,A", got)
	}

	// A full reject-new stream: rejected, per source.
	if err := g.db.ConfigureStream(buffer.StreamConfig{Name: "scans", Priority: 10, MaxEvents: 3, Overflow: buffer.PolicyRejectNew}); err != nil {
		t.Fatal(err)
	}
	if err := sink.Emit(ctx, []*event.Event{scan("D", false)}); err == nil {
		t.Fatal("Emit into a full stream succeeded")
	}
	wantMetric(t, h, 1, "edge_gateway_source_events_total", `source="dock1-in"`, `result="rejected"`)
	// The driver retries the same batch while the stream stays full: one
	// refusal, counted once, per source and per stream.
	for range 3 {
		if err := sink.Emit(ctx, []*event.Event{scan("D", false)}); err == nil {
			t.Fatal("Emit into a full stream succeeded")
		}
	}
	wantMetric(t, h, 1, "edge_gateway_source_events_total", `source="dock1-in"`, `result="rejected"`)
	wantMetric(t, h, 1, "edge_gateway_ingest_events_total", `stream="scans"`, `result="rejected"`)
	wantMetric(t, h, 3, "edge_gateway_ingest_events_total", `stream="scans"`, `result="accepted"`)
	wantMetric(t, h, 1, "edge_gateway_ingest_events_total", `stream="scans"`, `result="duplicate"`)

	// Receipt latency, config state.
	g.metrics.observeReceipt("scans", 0.004)
	g.metrics.observeReceipt("scans", 0.2)
	wantMetric(t, h, 2, "edge_gateway_uplink_receipt_latency_seconds_count", `stream="scans"`)
	wantMetric(t, h, 1, "edge_gateway_uplink_receipt_latency_seconds_bucket", `stream="scans"`, `le="0.005"`)
	g.setConfigState("6", "applied")
	g.setConfigState("7", "rolled-back")
	wantMetric(t, h, 1, "edge_gateway_config_info", `version="7"`, `state="rolled-back"`)
	if _, ok := metric(t, h, "edge_gateway_config_info", `version="6"`); ok {
		t.Fatal("the previous config version is still exported")
	}
	wantMetric(t, h, 1, "edge_gateway_build_info", `version="v1.2.3"`)

	// The pipeline ends: its drivers' stats go.
	cancel()
	// context.AfterFunc runs on its own goroutine: poll.
	testenv.Eventually(t, 10*time.Second, "driver stats gone after their pipeline ended", func() bool {
		_, ok := metric(t, h, "edge_gateway_fake_received_total")
		return !ok
	})
}

func TestStatusJSON(t *testing.T) {
	g, clk := pageGateway(t)
	g.ready = true
	g.setConfigState("12", "applied")
	rec := get(t, g.handler(), "/status.json")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	var st Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Gateway != "gw-page-1" || !st.Ready || len(st.Streams) != 2 || st.Streams[0].Name != "scans" ||
		st.Config.Version != "12" || st.Config.State != "applied" || !st.Config.Since.Equal(clk.Now()) || st.Uplink.Online {
		t.Fatalf("status %+v", st)
	}
}
