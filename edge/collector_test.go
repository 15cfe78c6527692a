package edge

import (
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/edgegw/gateway/drivers"
)

// metricsDriver is a driver whose Metrics() returns what list returns.
type metricsDriver struct{ list func() []drivers.Metric }

func (d metricsDriver) Metrics() []drivers.Metric { return d.list() }

func fixedMetrics(ms ...drivers.Metric) metricsDriver {
	return metricsDriver{list: func() []drivers.Metric { return ms }}
}

func testDriverMetrics(t *testing.T) (*driverMetrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s := newDriverMetrics(reg)
	s.log = slog.New(slog.DiscardHandler)
	return s, reg
}

// series gathers g and returns `name{label="value",…} value` for each
// counter and gauge series, sorted, and the Gather error.
func series(t *testing.T, g prometheus.Gatherer) ([]string, error) {
	t.Helper()
	mfs, err := g.Gather()
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			var v float64
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v = m.GetGauge().GetValue()
			default:
				continue
			}
			out = append(out, mf.GetName()+"{"+strings.Join(ls, ",")+"} "+strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	slices.Sort(out)
	return out, err
}

func wantSeries(t *testing.T, g prometheus.Gatherer, want ...string) {
	t.Helper()
	got, err := series(t, g)
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("series\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDriverMetricsPerSource(t *testing.T) {
	s, reg := testDriverMetrics(t)
	n := 0
	counting := metricsDriver{list: func() []drivers.Metric {
		n++
		return []drivers.Metric{{Name: "edge_gateway_fake_reads_total", Help: "Reads.", Kind: drivers.Counter, Value: float64(n)}}
	}}
	rmA := s.add("a", "fake", counting)
	rmB := s.add("b", "fake", fixedMetrics(drivers.Metric{Name: "edge_gateway_fake_reads_total", Help: "Reads.", Kind: drivers.Counter, Value: 5}))
	// The first call (at add) described the set; each scrape calls again.
	wantSeries(t, reg, `edge_gateway_fake_reads_total{source="a"} 2`, `edge_gateway_fake_reads_total{source="b"} 5`)
	rmA()
	wantSeries(t, reg, `edge_gateway_fake_reads_total{source="b"} 5`)
	rmB()
	wantSeries(t, reg)
	// A driver without Metrics exports nothing.
	rm := s.add("c", "fake", struct{}{})
	rm()
	if len(s.running) != 0 {
		t.Fatal("a driver without Metrics was registered")
	}
	wantSeries(t, reg)
}

// Only the latest registration of a source is removed by its remove func;
// a new driver for a source replaces the old one's metrics (a reload).
func TestDriverMetricsRemoveOnlyOwn(t *testing.T) {
	s, reg := testDriverMetrics(t)
	metric := func(v float64) metricsDriver {
		return fixedMetrics(drivers.Metric{Name: "edge_gateway_fake_reads_total", Help: "Reads.", Kind: drivers.Counter, Value: v})
	}
	rm1 := s.add("src", "fake", metric(1))
	rm2 := s.add("src", "fake", metric(2))
	wantSeries(t, reg, `edge_gateway_fake_reads_total{source="src"} 2`)
	rm1()
	wantSeries(t, reg, `edge_gateway_fake_reads_total{source="src"} 2`)
	rm2()
	wantSeries(t, reg)
	if len(s.running) != 0 {
		t.Fatal("not removed")
	}
}

// The registry checks a driver's metrics when the driver starts: one it
// refuses is not exported at all, and the others are unaffected.
func TestDriverMetricsChecked(t *testing.T) {
	reads := drivers.Metric{Name: "edge_gateway_fake_reads_total", Help: "Reads.", Kind: drivers.Counter, Value: 1}
	for name, bad := range map[string]drivers.Metric{
		"invalid name":       {Name: "edge-gateway-fake", Help: "x", Kind: drivers.Gauge},
		"no kind":            {Name: "edge_gateway_fake_x", Help: "x"},
		"reserved label":     {Name: "edge_gateway_fake_x", Help: "x", Kind: drivers.Gauge, Labels: []drivers.Label{{Name: "source", Value: "y"}}},
		"clash: other help":  {Name: "edge_gateway_ingest_events_total", Help: "Other help.", Kind: drivers.Counter},
		"clash: other label": {Name: "edge_gateway_fake_reads_total", Help: "Reads.", Kind: drivers.Counter, Labels: []drivers.Label{{Name: "pin", Value: "1"}}},
		"relisted otherwise": {Name: "edge_gateway_fake_reads_total", Help: "Reads, again.", Kind: drivers.Counter},
	} {
		t.Run(name, func(t *testing.T) {
			s, reg := testDriverMetrics(t)
			ingest := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edge_gateway_ingest_events_total", Help: "Ingest."}, []string{"stream", "result"})
			reg.MustRegister(ingest)
			s.add("good", "fake", fixedMetrics(reads))
			var rm func()
			if name == "relisted otherwise" {
				rm = s.add("bad", "fake", fixedMetrics(reads, bad))
			} else {
				rm = s.add("bad", "fake", fixedMetrics(bad))
			}
			defer rm()
			if s.running["bad"] != nil {
				t.Fatal("registered")
			}
			wantSeries(t, reg, `edge_gateway_fake_reads_total{source="good"} 1`)
		})
	}
}

// A driver that lists a metric later that its first call did not, or lists
// one otherwise, breaks its contract: Gather reports it; the rest is still
// gathered (and served: the handler uses promhttp.ContinueOnError).
func TestDriverMetricsContract(t *testing.T) {
	s, reg := testDriverMetrics(t)
	calls := 0
	d := metricsDriver{list: func() []drivers.Metric {
		calls++
		ms := []drivers.Metric{{Name: "edge_gateway_fake_reads_total", Help: "Reads.", Kind: drivers.Counter, Value: 3}}
		if calls > 1 {
			ms = append(ms,
				drivers.Metric{Name: "edge_gateway_fake_new_total", Help: "New.", Kind: drivers.Counter, Value: 1},
				drivers.Metric{Name: "edge_gateway_fake_reads_total", Help: "Reads.", Kind: drivers.Gauge, Value: 4})
		}
		return ms
	}}
	defer s.add("src", "fake", d)()
	got, err := series(t, reg)
	if err == nil || !strings.Contains(err.Error(), "edge_gateway_fake_new_total") || !strings.Contains(err.Error(), "differ from its first listing") {
		t.Fatalf("gather error %v, want both violations", err)
	}
	if want := []string{`edge_gateway_fake_reads_total{source="src"} 3`}; !slices.Equal(got, want) {
		t.Fatalf("gathered %q, want %q", got, want)
	}
}
