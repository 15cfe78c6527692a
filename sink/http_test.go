package sink

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := New(DefaultConfig(), Options{Registerer: reg, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	s.m.incConsumed()
	s.m.addRows(TableEvents, 3)
	srv := httptest.NewServer(s.Handler(reg))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not started") {
		t.Errorf("healthz before Run = %d %q", code, body)
	}
	s.phase.Store("running")
	if code, body := get("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("healthz running = %d %q", code, body)
	}
	code, body := get("/metrics")
	for _, want := range []string{
		"edge_sink_messages_consumed_total 1", `edge_sink_rows_written_total{table="events"} 3`,
		"edge_sink_write_latency_seconds_bucket", "edge_sink_messages_acked_total 0",
	} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("metrics (%d) lack %q", code, want)
		}
	}
	if st := s.Stats(); st.Consumed != 1 || st.RowsWritten != 3 {
		t.Errorf("stats = %+v", st)
	}
}
