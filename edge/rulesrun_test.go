package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/edgegw/gateway/buffer"
	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/edge/rules"
	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/testenv"
	"github.com/edgegw/gateway/units"
)

// fakeOutputs records the commands a rule gives.
type fakeOutputs struct {
	mu  sync.Mutex
	got []string
}

func (f *fakeOutputs) DriveOutput(name string, c drivers.OutputCommand) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, name+" "+c.Mode+" "+c.For.String())
	return nil
}

func rulesIngest(t *testing.T, alertsMax int64, rs []rules.Rule) (*ingest, *buffer.DB, *fakeOutputs) {
	t.Helper()
	in, db := testIngest(t, 0)
	if err := db.ConfigureStream(buffer.StreamConfig{Name: "alerts", Priority: 20, MaxEvents: alertsMax, Overflow: buffer.PolicyRejectNew}); err != nil {
		t.Fatal(err)
	}
	tables := map[string]rules.Table{"routes": {Inline: map[string]any{"R1": "3", "R2": "5"}}}
	loaded, _ := rules.LoadTables(tables, "")
	set, err := rules.Compile(rs, tables, rules.Options{Tables: loaded})
	if err != nil {
		t.Fatal(err)
	}
	in.SetRules(context.Background(), set)
	out := &fakeOutputs{}
	in.outputs.Store("dock3-io", out)
	return in, db, out
}

var missortRule = rules.Rule{
	Name:  "missort",
	Match: rules.Match{Streams: []string{"scans"}, Vars: map[string]string{"dock": "3"}},
	When:  `tables.routes[attrs.route] != attrs.dock`,
	Actions: []rules.Action{
		{Alert: &rules.Alert{Attrs: []string{"barcode"}}},
		{GPIO: &rules.GPIO{Source: "dock3-io", Output: "red", Mode: "pulse", For: units.Duration(5 * time.Second)}},
	},
}

func scanAt(dock, route, code string) *event.Event {
	return &event.Event{Stream: "scans", Source: "dock" + dock + "-s1", Kind: event.KindScan, Attrs: map[string]any{"barcode": code, "route": route, "dock": dock}}
}

// A mis-sort scan and its alert are stored in one commit, the alert naming
// the scan's stream and seq; the light is driven after the commit.
func TestIngestRulesAlertInTheCausesCommit(t *testing.T) {
	in, db, out := rulesIngest(t, 0, []rules.Rule{missortRule})
	ctx := context.Background()
	if err := in.Emit(ctx, []*event.Event{scanAt("3", "R1", "OK1"), scanAt("3", "R2", "BAD1")}); err != nil {
		t.Fatal(err)
	}
	scans, alerts := read(t, db, "scans"), read(t, db, "alerts")
	if len(scans) != 2 || len(alerts) != 1 {
		t.Fatalf("scans %d alerts %d", len(scans), len(alerts))
	}
	a := alerts[0]
	if a.Kind != rules.KindAlert || a.Attrs["rule"] != "missort" || a.Attrs["stream"] != "scans" || a.Attrs["barcode"] != "BAD1" || a.Gateway != "gw-1" {
		t.Fatalf("alert %+v", a)
	}
	if fmt.Sprint(a.Attrs["seq"]) != fmt.Sprint(scans[1].Seq) {
		t.Fatalf("alert names seq %v, the scan has %d", a.Attrs["seq"], scans[1].Seq)
	}
	if strings.Join(out.got, ";") != "red pulse 5s" {
		t.Fatalf("commands %v", out.got)
	}
}

// When the alert stream is full, the cause is refused with it: neither is
// stored, the light stays off, and the retry once there is room fires.
func TestIngestRulesAlertStreamFullRefusesTheCause(t *testing.T) {
	in, db, out := rulesIngest(t, 1, []rules.Rule{missortRule})
	ctx := context.Background()
	if err := in.Emit(ctx, []*event.Event{scanAt("3", "R2", "BAD1")}); err != nil {
		t.Fatal(err)
	}
	err := in.Emit(ctx, []*event.Event{scanAt("3", "R2", "BAD2")})
	if err == nil || !strings.Contains(err.Error(), "alerts") {
		t.Fatalf("emit into a full alert stream: %v", err)
	}
	if n := len(read(t, db, "scans")); n != 1 {
		t.Fatalf("scans %d: the refused cause was stored", n)
	}
	if len(out.got) != 1 {
		t.Fatalf("commands %v: a refused batch drove the light", out.got)
	}
	rejected := func(stream string) float64 {
		var m dto.Metric
		if err := in.stats.m.ingest.WithLabelValues(stream, resultRejected).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	if v := rejected("scans"); v != 1 {
		t.Fatalf("%v scans counted rejected, want the refused cause", v)
	}
	if v := rejected("alerts"); v != 1 {
		t.Fatalf("%v alerts counted rejected, want 1", v)
	}
}

// drop keeps events out of the buffer and counts them per rule; a runtime
// error keeps the event and counts an error.
func TestIngestRulesDropAndErrors(t *testing.T) {
	in, db, _ := rulesIngest(t, 0, []rules.Rule{{
		Name: "quiet", Match: rules.Match{Streams: []string{"telemetry"}}, When: `attrs.value < 1`,
		Actions: []rules.Action{{Drop: &rules.Drop{}}},
	}})
	rd := func(v any) *event.Event {
		return &event.Event{Stream: "telemetry", Source: "s", Kind: event.KindReading, Attrs: map[string]any{"value": v}}
	}
	if err := in.Emit(context.Background(), []*event.Event{rd(0.5), rd(2.0), rd("text")}); err != nil {
		t.Fatal(err)
	}
	got := read(t, db, "telemetry")
	if len(got) != 2 || got[0].Attrs["value"] != 2.0 || got[1].Attrs["value"] != "text" {
		t.Fatalf("stored %v", got)
	}
	c := in.rules.Load().Rules()[0].Counters
	if c.Dropped.Load() != 1 || c.Errors.Load() != 1 || c.Evaluated.Load() != 3 {
		t.Fatalf("dropped %d errors %d evaluated %d", c.Dropped.Load(), c.Errors.Load(), c.Evaluated.Load())
	}
}

// A window open at a crash is found by its mark at the next start and
// recorded as a gap of reason rule-window-lost; a window flushed at a
// stop leaves no mark.
func TestIngestRulesWindowLostInACrash(t *testing.T) {
	ds := []rules.Rule{{Name: "ds", Match: rules.Match{Streams: []string{"telemetry"}}, Actions: []rules.Action{{Downsample: &rules.Downsample{Interval: units.Duration(time.Minute)}}}}}
	in, db, _ := rulesIngest(t, 0, ds)
	ctx := context.Background()
	for i := range 3 {
		if err := in.Emit(ctx, []*event.Event{{Stream: "telemetry", Source: "s", Kind: event.KindReading, Attrs: map[string]any{"value": float64(i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(read(t, db, "telemetry")); n != 0 {
		t.Fatalf("%d readings stored; the window holds them", n)
	}
	// "Crash": a new ingest over the same store, the old one never flushed.
	in2 := &ingest{db: db, gateway: "gw-1", boot: db.Boot(), start: time.Now(), now: in.now, stats: in.stats}
	if err := in2.recoverWindows(ctx); err != nil {
		t.Fatal(err)
	}
	got := read(t, db, "telemetry")
	if len(got) != 1 {
		t.Fatalf("stored %d events after recovery, want one gap", len(got))
	}
	g, err := event.GapOf(got[0])
	if err != nil || g.Reason != rules.ReasonLost || got[0].Attrs["rule"] != "ds" || g.Count < 1 {
		t.Fatalf("gap %+v %v", g, err)
	}
	if err := in2.recoverWindows(ctx); err != nil || len(read(t, db, "telemetry")) != 1 {
		t.Fatal("the gap was recorded twice")
	}
	// A stop flushes: the summary is stored, no mark is left.
	in.SetRules(ctx, nil)
	got = read(t, db, "telemetry")
	if len(got) != 2 || got[1].Kind != rules.KindSummary || fmt.Sprint(got[1].Attrs["count"]) != "3" {
		t.Fatalf("after the flush: %+v", got[len(got)-1])
	}
	b, _ := in.meta().Get(rules.MarksKey)
	if ms, _ := rules.DecodeMarks(b); len(ms) != 0 {
		t.Fatalf("marks left: %v", ms)
	}
}

// A rules-only apply swaps the rule set in place: no source, uplink or
// broker restarts, and the new rules run on the next event.
func TestApplySwapsRules(t *testing.T) {
	r := newPlanRig(t, planDoc{rules: "rules:\n  - {name: r1, actions: [{drop: {}}]}\n"})
	a0, up0, set0 := r.driver("a"), r.pipe().up, r.pipe().sink.rules.Load()
	if set0 == nil || set0.Rules()[0].Name != "r1" {
		t.Fatal("the rules did not start with the pipeline")
	}
	if err := r.reload(planDoc{rules: "rules:\n  - {name: r2, when: 'kind == \"scan\"', actions: [{drop: {}}]}\n"}); err != nil {
		t.Fatal(err)
	}
	set := r.pipe().sink.rules.Load()
	if r.driver("a") != a0 || r.pipe().up != up0 || set == set0 || set.Rules()[0].Name != "r2" {
		t.Fatal("a rules change restarted a part, or did not swap the rules")
	}
	testenv.Eventually(t, 5*time.Second, "a runs once", func() bool { return r.driver("a").(*planFake).runs.Load() == 1 })
}

// The status page, /status.json and /metrics list the rules with their
// counts and last firing.
func TestStatusPageListsRules(t *testing.T) {
	g, clk := pageGateway(t)
	g.ready = true
	if err := g.db.ConfigureStream(buffer.StreamConfig{Name: "alerts", Priority: 20}); err != nil {
		t.Fatal(err)
	}
	in := g.testSink()
	set, err := rules.Compile([]rules.Rule{
		{Name: "missort", Match: rules.Match{Kinds: []string{"scan"}}, When: `attrs.route == "R2"`, Actions: []rules.Action{{Alert: &rules.Alert{}}}},
		{Name: "quiet", Match: rules.Match{Kinds: []string{"reading"}}, Actions: []rules.Action{{Drop: &rules.Drop{}}}},
	}, nil, rules.Options{Counters: g.ruleCounters.get})
	if err != nil {
		t.Fatal(err)
	}
	in.SetRules(context.Background(), set)
	g.mu.Lock()
	g.pipe = &pipeline{sink: in}
	g.mu.Unlock()
	if err := in.Emit(context.Background(), []*event.Event{{Stream: "scans", Source: "s", Kind: event.KindScan, Attrs: map[string]any{"barcode": "B", "route": "R2"}}}); err != nil {
		t.Fatal(err)
	}
	body := get(t, g.handler(), "/").Body.String()
	for _, want := range []string{`id="rules"`, `<td>missort</td><td>1</td><td>` + clockTime(clk.Now(), clk.Now()) + `</td>`, `<td>quiet</td><td>0</td><td>never</td>`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	var st Status
	if err := json.Unmarshal(get(t, g.handler(), "/status.json").Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Rules) != 2 || st.Rules[0].Fired != 1 || !st.Rules[0].LastFired.Equal(clk.Now()) || !st.Rules[1].LastFired.IsZero() {
		t.Errorf("status.json rules: %+v", st.Rules)
	}
	if v, ok := metric(t, g.handler(), "edge_gateway_rule_firings_total", `rule="missort"`); !ok || v != 1 {
		t.Errorf("firings metric %v %v", v, ok)
	}
}

// A rule's cooldown survives a restart: the firing states are stored with
// the commit's aftermath and the next compile of the same rule takes them.
func TestRulesCooldownSurvivesRestart(t *testing.T) {
	g, _ := pageGateway(t)
	cfg := g.cfg
	cfg.Rules = []rules.Rule{{Name: "hot", Match: rules.Match{Kinds: []string{event.KindReading}}, When: `attrs.value > 8`,
		Cooldown: units.Duration(time.Hour), Actions: []rules.Action{{Alert: &rules.Alert{Stream: "scans"}}}}}
	emit := func(set *rules.Set) int {
		in := g.testSink()
		in.SetRules(context.Background(), set)
		if err := in.Emit(context.Background(), []*event.Event{{Stream: "telemetry", Source: "van", Kind: event.KindReading, Attrs: map[string]any{"value": 9.0}}}); err != nil {
			t.Fatal(err)
		}
		return len(read(t, g.db, "scans"))
	}
	set, err := g.compileRules(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := emit(set); n != 1 {
		t.Fatalf("%d alerts after the first reading", n)
	}
	restarted, err := g.compileRules(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := emit(restarted); n != 1 {
		t.Fatalf("%d alerts: the cooldown was forgotten by the restart", n)
	}
}
