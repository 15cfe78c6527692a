package rules

import (
	"fmt"
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
			When:    fmt.Sprintf(`attrs.route == "R%d" && tables.routes[attrs.route] != attrs.dock`, 100+i),
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
			Attrs: map[string]any{"barcode": fmt.Sprintf("0010614141%010d", j), "route": fmt.Sprintf("R%d", 300+j), "dock": "dock1"}}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i += len(evs) {
		s.Process(evs).Commit()
	}
}
