package rules

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/edgegw/gateway/event"
)

// bench20 are 20 rules that all see every scan, none firing.
func bench20() ([]Rule, map[string]Table) {
	var rs []Rule
	for i := range 19 {
		rs = append(rs, Rule{
			Name:    fmt.Sprintf("missort-%02d", i),
			Match:   Match{Streams: []string{"scans"}, Kinds: []string{"scan"}},
			When:    fmt.Sprintf(`tables.routes[attrs.route] != nil && tables.routes[attrs.route] != attrs.dock && attrs.barcode != "%d"`, i),
			Actions: []Action{{Alert: &Alert{Attrs: []string{"barcode"}}}},
		})
	}
	rs = append(rs, Rule{Name: "test-scans", Match: Match{Streams: []string{"scans"}}, When: `attrs.barcode startsWith "TEST"`, Actions: []Action{{Drop: &Drop{}}}})
	tables := map[string]Table{"routes": {Inline: map[string]any{}}}
	for i := range 200 {
		tables["routes"].Inline[fmt.Sprintf("R%d", 100+i)] = fmt.Sprintf("dock%d", i%8)
	}
	return rs, tables
}

// BenchmarkProcess: the CPU cost of 20 rules per event (batches of 32,
// committed), in ns per event.
func BenchmarkProcess(b *testing.B) {
	rs, tables := bench20()
	loaded, _ := LoadTables(tables, "")
	s, err := Compile(rs, tables, Options{Tables: loaded})
	if err != nil {
		b.Fatal(err)
	}
	evs := make([]*event.Event, 32)
	for j := range evs {
		evs[j] = &event.Event{Stream: "scans", Source: "dock1-s", Kind: "scan", Received: time.Now(),
			Attrs: map[string]any{"barcode": fmt.Sprintf("0010614141%010d", j), "route": fmt.Sprintf("R%d", 101+(j%8)*8), "dock": "dock1"}}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i += len(evs) {
		s.Process(evs).Commit()
	}
}

// BenchmarkDownsampleBytes: the bytes a 1 Hz temperature sensor puts on
// the uplink in an hour (encoded event envelopes, as stored and sent), with
// the vehicle config's telemetry rule (deadband 0.5, at least every 10m,
// 1m summaries) against without it. The readings drift slowly with noise
// and two step changes, like a cargo sensor with the doors opened twice.
func BenchmarkDownsampleBytes(b *testing.B) {
	rule := []Rule{{Name: "telemetry", Match: Match{Kinds: []string{"reading"}}, Actions: []Action{
		{Deadband: &Deadband{Threshold: 0.5, MaxInterval: dur(10 * time.Minute)}},
		{Downsample: &Downsample{Interval: dur(time.Minute)}},
	}}}
	var raw, down, kept, summaries int
	for range b.N {
		s, err := Compile(rule, nil, Options{})
		if err != nil {
			b.Fatal(err)
		}
		raw, down, kept, summaries = 0, 0, 0, 0
		seq := uint64(0)
		size := func(e *event.Event) int {
			seq++
			e.Gateway, e.Seq, e.Boot, e.Mono = "van-0417", seq, 3, seq*1e9
			if e.Time.IsZero() {
				e.Time = e.Received
			}
			enc, err := event.Marshal(e)
			if err != nil {
				b.Fatal(err)
			}
			return len(enc)
		}
		for i := range 3600 {
			at := time.Duration(i) * time.Second
			v := 4 + 0.3*math.Sin(float64(i)/600) + 0.05*math.Sin(float64(i)*1.7)
			if (i >= 1200 && i < 1500) || (i >= 2400 && i < 2520) {
				v += 3 // doors open
			}
			v = math.Round(v*100) / 100
			mk := func() *event.Event {
				return &event.Event{Stream: "telemetry", Source: "cargo-temp", Kind: "reading", Received: t0.Add(at),
					Attrs: map[string]any{"value": v, "unit": "Cel", "metric": "temperature", "device": "cargo-temp"}}
			}
			raw += size(mk())
			o := s.Process([]*event.Event{mk()})
			for _, e := range o.Keep {
				down += size(e)
				kept++
			}
			for _, d := range o.Derived {
				down += size(d.Event)
				summaries++
			}
			o.Commit()
		}
		o := s.Flush(t0.Add(time.Hour))
		for _, d := range o.Derived {
			down += size(d.Event)
			summaries++
		}
	}
	b.ReportMetric(float64(raw), "raw-bytes/h")
	b.ReportMetric(float64(down), "downsampled-bytes/h")
	b.ReportMetric(float64(down)/float64(raw), "ratio")
	b.ReportMetric(float64(kept), "readings-kept/h")
	b.ReportMetric(float64(summaries), "summaries/h")
}
