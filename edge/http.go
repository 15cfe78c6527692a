package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgegw/gateway/edge/config"
)

// serveHTTP serves the status page, health, metrics and status.json on addr
// (loopback by default; "" or "off": no server) and starts the backlog
// sampler the page's charts use.
func (g *Gateway) serveHTTP(cfg config.HTTP) error {
	addr := cfg.Listen
	if addr == "" || addr == "off" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http.listen %s: %w", addr, err)
	}
	h := g.handler()
	if cfg.Pprof {
		h = withPprof(h)
		g.log.Warn("profiling endpoints on at /debug/pprof/ (http.pprof): keep http.listen on loopback", "component", "http")
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	g.mu.Lock()
	g.http, g.ln = srv, ln
	g.mu.Unlock()
	g.startSampler()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("http server stopped", "component", "http", "err", err)
		}
	}()
	g.log.Info("http listening", "component", "http", "addr", ln.Addr().String())
	return nil
}

// handler routes the gateway's HTTP endpoints:
//
//	GET /             the status page (HTML, refreshes itself)
//	GET /healthz      200 while the process serves HTTP
//	GET /readyz       200 once the store is open and ingest runs (an
//	                  offline uplink does not make the gateway unready)
//	GET /metrics      Prometheus metrics, the Pulsar client's included
//	GET /status.json  Status as JSON
func (g *Gateway) handler() http.Handler {
	g.metrics.registerOnce.Do(func() {
		g.metrics.reg.MustRegister(uplinkCollector{g: g})
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", g.serveStatusPage)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if ok, why := g.readiness(); !ok {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /metrics", g.serveMetrics)
	mux.HandleFunc("GET /status.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(g.Status())
	})
	return mux
}

// withPprof adds Go's profiling endpoints under /debug/pprof/ to h.
func withPprof(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// serveMetrics gathers the gateway's registry and the running uplink
// client's (pulsar_client_*; it changes when a reload builds a new one).
func (g *Gateway) serveMetrics(w http.ResponseWriter, r *http.Request) {
	gs := prometheus.Gatherers{g.metrics.reg}
	g.mu.Lock()
	pipe := g.pipe
	g.mu.Unlock()
	if pipe != nil && pipe.up != nil {
		gs = append(gs, pipe.up.PulsarMetrics())
	}
	promhttp.HandlerFor(gs, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}).ServeHTTP(w, r)
}

// HTTPAddr is the address the status server listens on ("" when off).
func (g *Gateway) HTTPAddr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln == nil {
		return ""
	}
	return g.ln.Addr().String()
}

func (g *Gateway) stopHTTP() {
	g.stopSampler()
	g.mu.Lock()
	srv := g.http
	g.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}
