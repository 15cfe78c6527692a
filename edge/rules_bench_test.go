package edge

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edgegw/gateway/buffer"
	"github.com/edgegw/gateway/edge/rules"
	"github.com/edgegw/gateway/event"
)

// benchRules are 20 rules, none firing on the traffic: the mis-sort check
// of one dock each and a drop of test scans. With byDock each mis-sort
// rule matches its dock's scans only (match vars: what a site's config
// does), so a scan is evaluated by 2 rules; without, every rule's
// condition is evaluated on every scan (the worst case).
func benchRules(byDock bool) []rules.Rule {
	var rs []rules.Rule
	for i := range 19 {
		m := rules.Match{Streams: []string{"scans"}, Kinds: []string{event.KindScan}}
		if byDock {
			m.Vars = map[string]string{"dock": fmt.Sprintf("dock%d", i)}
		}
		rs = append(rs, rules.Rule{
			Name:  fmt.Sprintf("missort-%02d", i),
			Match: m,
			// Distinct conditions: every one is evaluated.
			When:    fmt.Sprintf(`tables.routes[attrs.route] != nil && tables.routes[attrs.route] != attrs.dock && attrs.barcode != "%d"`, i),
			Actions: []rules.Action{{Alert: &rules.Alert{Attrs: []string{"barcode"}}}},
		})
	}
	rs = append(rs, rules.Rule{Name: "test-scans", Match: rules.Match{Streams: []string{"scans"}}, When: `attrs.barcode startsWith "TEST"`, Actions: []rules.Action{{Drop: &rules.Drop{}}}})
	return rs
}

// BenchmarkIngestRules: the ingest's throughput (4 emitters, batches of 32
// scans, each batch one commit) with the 20 rules of benchRules, against
// the same ingest without rules, in alternating rounds of the same run.
// ratio = with ÷ without (1 = the rules cost nothing).
func BenchmarkIngestRules(b *testing.B) {
	b.Run("matched=all", func(b *testing.B) { benchIngestRules(b, benchRules(false)) })
	b.Run("matched=by-dock", func(b *testing.B) { benchIngestRules(b, benchRules(true)) })
}

func benchIngestRules(b *testing.B, rs []rules.Rule) {
	mk := func(rs []rules.Rule) *ingest {
		db, err := buffer.Open(filepath.Join(b.TempDir(), "b.db"), &buffer.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CompactRatio: -1})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		for _, s := range []string{"scans", "alerts"} {
			if err := db.ConfigureStream(buffer.StreamConfig{Name: s}); err != nil {
				b.Fatal(err)
			}
		}
		in := &ingest{db: db, gateway: "gw", boot: db.Boot(), start: time.Now(), now: time.Now, stats: &ingestStats{m: newMetrics()}}
		if rs != nil {
			tables := map[string]rules.Table{"routes": {Inline: map[string]any{}}}
			for i := range 200 {
				tables["routes"].Inline[fmt.Sprintf("R%d", 100+i)] = fmt.Sprintf("dock%d", i%8)
			}
			loaded, _ := rules.LoadTables(tables, "")
			set, err := rules.Compile(rs, tables, rules.Options{Tables: loaded})
			if err != nil {
				b.Fatal(err)
			}
			in.SetRules(context.Background(), set)
		}
		return in
	}
	plain, ruled := mk(nil), mk(rs)
	const emitters, batch, rounds = 4, 32, 6
	per := max(1, b.N/(emitters*batch*rounds))
	round := func(in *ingest) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for e := range emitters {
			wg.Go(func() {
				for i := range per {
					evs := make([]*event.Event, batch)
					for j := range evs {
						evs[j] = &event.Event{Stream: "scans", Source: fmt.Sprintf("dock%d-s", e), Kind: event.KindScan,
							Attrs: map[string]any{"barcode": fmt.Sprintf("0010614141%010d", i*batch+j), "route": fmt.Sprintf("R%d", 100+(j%8)*8+e), "dock": fmt.Sprintf("dock%d", e)}}
					}
					if err := in.Emit(context.Background(), evs); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	var without, with time.Duration
	b.ResetTimer()
	for range rounds {
		without += round(plain)
		with += round(ruled)
	}
	n := float64(emitters * batch * per * rounds)
	b.ReportMetric(n/with.Seconds(), "rules-events/s")
	b.ReportMetric(n/without.Seconds(), "plain-events/s")
	b.ReportMetric(without.Seconds()/with.Seconds(), "ratio")
}
