package rules

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/units"
)

var t0 = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

func dur(d time.Duration) units.Duration { return units.Duration(d) }

func reading(source string, at time.Duration, v float64) *event.Event {
	return &event.Event{Stream: "telemetry", Source: source, Kind: "reading", Time: t0.Add(at), Received: t0.Add(at), Attrs: map[string]any{"value": v, "unit": "C"}}
}

func mustCompile(t *testing.T, rs []Rule, tables map[string]Table) *Set {
	t.Helper()
	loaded, err := LoadTables(tables, "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Compile(rs, tables, Options{Tables: loaded})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func run(s *Set, evs ...*event.Event) *Outcome {
	o := s.Process(evs)
	o.Commit()
	return o
}

// TestMissort: a scan whose route belongs to another dock fires an alert
// naming the cause and drives the light; a right one does not.
func TestMissort(t *testing.T) {
	s := mustCompile(t, []Rule{{
		Name:  "missort",
		Match: Match{Streams: []string{"scans"}, Kinds: []string{"scan"}, Vars: map[string]string{"dock": "3"}},
		When:  `tables.routes[attrs.route] != nil && tables.routes[attrs.route] != attrs.dock`,
		Actions: []Action{
			{Alert: &Alert{Attrs: []string{"barcode", "route"}}},
			{GPIO: &GPIO{Source: "dock3-io", Output: "red", Mode: "pulse", For: dur(5 * time.Second)}},
		},
	}}, map[string]Table{"routes": {Inline: map[string]any{"R1": "3", "R2": "5"}}})
	scan := func(route, dock string) *event.Event {
		return &event.Event{Stream: "scans", Source: "dock" + dock + "-s1", Kind: "scan", Received: t0, Attrs: map[string]any{"barcode": "PKG1", "route": route, "dock": dock}}
	}
	if o := run(s, scan("R1", "3")); len(o.Derived)+len(o.Commands) != 0 || len(o.Keep) != 1 {
		t.Fatalf("right dock: %+v", o)
	}
	if o := run(s, scan("R2", "5")); len(o.Derived) != 0 {
		t.Fatal("a scan at dock 5 matched a dock-3 rule")
	}
	o := run(s, scan("R2", "3"))
	if len(o.Keep) != 1 || len(o.Derived) != 1 || len(o.Commands) != 1 {
		t.Fatalf("mis-sort: keep %d derived %d commands %d", len(o.Keep), len(o.Derived), len(o.Commands))
	}
	a := o.Derived[0]
	if a.Cause != o.Keep[0] || a.Event.Kind != KindAlert || a.Event.Stream != "alerts" || a.Event.Attrs["rule"] != "missort" || a.Event.Attrs["route"] != "R2" || a.Event.Attrs["stream"] != "scans" {
		t.Fatalf("alert %+v", a.Event)
	}
	if c := o.Commands[0]; c.Output != "red" || c.Cmd.Mode != "pulse" || c.Cmd.For != 5*time.Second {
		t.Fatalf("command %+v", c)
	}
	r := s.Rules()[0].Counters
	if r.Evaluated.Load() != 2 || r.Fired.Load() != 1 || !r.LastFired().Equal(t0) {
		t.Fatalf("counters evaluated %d fired %d last %v", r.Evaluated.Load(), r.Fired.Load(), r.LastFired())
	}
}

// TestColdChain: above 8 °C for 2m fires once (start, peak so far), the end
// alert carries start, end and peak; the cooldown holds back a second
// excursion that starts too soon. Times are the events' receive times.
func TestColdChain(t *testing.T) {
	s := mustCompile(t, []Rule{{
		Name: "excursion", Match: Match{Kinds: []string{"reading"}},
		When: `attrs.value > 8`, For: dur(2 * time.Minute), Cooldown: dur(10 * time.Minute),
		Actions: []Action{{Alert: &Alert{Peak: "value", Attrs: []string{"unit"}}}, {GPIO: &GPIO{Source: "io", Output: "buzzer", Mode: "on"}}},
	}}, nil)
	var fired []Firing
	var alerts []*event.Event
	feed := func(at time.Duration, v float64) {
		o := run(s, reading("van1-temp", at, v))
		fired = append(fired, o.Fired...)
		for _, d := range o.Derived {
			alerts = append(alerts, d.Event)
		}
	}
	feed(0, 5)
	feed(10*time.Second, 9)  // starts holding
	feed(70*time.Second, 11) // 1m: not yet
	if len(fired) != 0 {
		t.Fatalf("fired after 1m: %+v", fired)
	}
	feed(130*time.Second, 10) // 2m: fires
	feed(140*time.Second, 12)
	feed(150*time.Second, 7) // ends
	if len(fired) != 2 || fired[0].Phase != "start" || fired[1].Phase != "end" {
		t.Fatalf("firings %+v", fired)
	}
	start, end := alerts[0], alerts[1]
	if !start.Attrs["start"].(time.Time).Equal(t0.Add(10*time.Second)) || start.Attrs["peak"] != 11.0 {
		t.Fatalf("start alert %v", start.Attrs)
	}
	if !end.Attrs["end"].(time.Time).Equal(t0.Add(150*time.Second)) || end.Attrs["peak"] != 12.0 || end.Attrs["unit"] != "C" {
		t.Fatalf("end alert %v", end.Attrs)
	}
	if fired[1].Actions[1] != "gpio io/buzzer off" {
		t.Fatalf("end actions %v", fired[1].Actions)
	}
	// A second excursion 5m later holds 2m but is within the cooldown of
	// the first firing (at 130s): no firing until 130s+10m.
	feed(5*time.Minute, 9)
	feed(8*time.Minute, 9)
	if len(fired) != 2 {
		t.Fatalf("fired within the cooldown: %+v", fired[2:])
	}
	feed(130*time.Second+10*time.Minute, 9)
	if len(fired) != 3 || fired[2].Phase != "start" {
		t.Fatalf("after the cooldown: %+v", fired)
	}
	// Another source has its own stretch.
	feed(0, 0)
	if o := run(s, reading("van2-temp", 20*time.Minute, 30)); len(o.Fired) != 0 {
		t.Fatal("van2 fired at once")
	}
}

// TestColdChainSilence: a sensor that falls silent during an excursion
// ends it after the rule's silence, on the ticker: an end alert with
// reason silent whose end is the last reading, and the buzzer off. A
// stretch that ended so does not end again, and a sensor that keeps
// reporting is not silent.
func TestColdChainSilence(t *testing.T) {
	s := mustCompile(t, []Rule{{
		Name: "excursion", Match: Match{Kinds: []string{"reading"}},
		When: `attrs.value > 8`, For: dur(2 * time.Minute), Silence: dur(5 * time.Minute),
		Actions: []Action{{Alert: &Alert{Peak: "value"}}, {GPIO: &GPIO{Source: "io", Output: "buzzer", Mode: "on"}}},
	}}, nil)
	tick := func(at time.Duration) *Outcome {
		o := s.Tick(t0.Add(at))
		o.Commit()
		return o
	}
	run(s, reading("van1-temp", 0, 9), reading("van2-temp", 0, 9))
	run(s, reading("van1-temp", 3*time.Minute, 10), reading("van2-temp", 3*time.Minute, 10)) // both fire
	for at := 4 * time.Minute; at <= 7*time.Minute; at += time.Minute {
		run(s, reading("van2-temp", at, 11)) // van2 keeps reporting, van1 is silent
	}
	if o := tick(7*time.Minute + 59*time.Second); len(o.Fired) != 0 {
		t.Fatalf("ended before 5m of silence: %+v", o.Fired)
	}
	o := tick(8 * time.Minute)
	if len(o.Fired) != 1 || o.Fired[0].Source != "van1-temp" || o.Fired[0].Phase != "end" || !o.FireChanged {
		t.Fatalf("after 5m of silence: firings %+v", o.Fired)
	}
	if len(o.Derived) != 1 || o.Derived[0].Cause != nil {
		t.Fatalf("derived %+v, want one alert without a cause", o.Derived)
	}
	a := o.Derived[0].Event.Attrs
	if a["reason"] != "silent" || a["phase"] != "end" || !a["end"].(time.Time).Equal(t0.Add(3*time.Minute)) ||
		!a["start"].(time.Time).Equal(t0) || a["peak"] != 10.0 || o.Derived[0].Event.Stream != "alerts" {
		t.Fatalf("silent end alert %v (stream %s)", a, o.Derived[0].Event.Stream)
	}
	if len(o.Commands) != 1 || o.Commands[0].Cmd.Mode != "off" {
		t.Fatalf("commands %+v, want the buzzer off", o.Commands)
	}
	if o := tick(20 * time.Minute); len(o.Fired) != 1 || o.Fired[0].Source != "van2-temp" {
		t.Fatalf("later: firings %+v, want only van2's end (silent since 7m)", o.Fired)
	}
	// van1 reports again, still hot: a new stretch, which fires 2m later.
	run(s, reading("van1-temp", 21*time.Minute, 9))
	if o := run(s, reading("van1-temp", 23*time.Minute, 9)); len(o.Fired) != 1 || o.Fired[0].Phase != "start" {
		t.Fatalf("back after the silence: firings %+v", o.Fired)
	}
}

// TestUncommitted: an outcome that is not committed (its append failed)
// changes nothing, so the retry fires again.
func TestUncommitted(t *testing.T) {
	s := mustCompile(t, []Rule{{Name: "hot", When: `attrs.value > 8`, Cooldown: dur(time.Hour), Actions: []Action{{Alert: &Alert{}}}}}, nil)
	e := reading("a", 0, 9)
	if o := s.Process([]*event.Event{e}); len(o.Fired) != 1 {
		t.Fatal("did not fire")
	}
	if o := run(s, e); len(o.Fired) != 1 {
		t.Fatal("the retry did not fire: the refused batch's cooldown applied")
	}
	if o := run(s, reading("a", time.Second, 9)); len(o.Fired) != 0 {
		t.Fatal("fired within the cooldown")
	}
	if n := s.Rules()[0].Counters.Evaluated.Load(); n != 2 {
		t.Fatalf("evaluated %d, want 2 (the uncommitted one not counted)", n)
	}
}

// TestRuntimeError: a condition failing at run time (a missing attr
// compared with a number) counts an error and keeps the event.
func TestRuntimeError(t *testing.T) {
	s := mustCompile(t, []Rule{{Name: "bad", When: `attrs.value * 2 > 8`, Actions: []Action{{Drop: &Drop{}}}}}, nil)
	e := &event.Event{Stream: "t", Source: "x", Kind: "reading", Received: t0, Attrs: map[string]any{"text": "hi"}}
	o := run(s, e, reading("x", 0, 9))
	if len(o.Keep) != 1 || o.Keep[0] != e {
		t.Fatalf("kept %d", len(o.Keep))
	}
	c := s.Rules()[0].Counters
	if c.Errors.Load() != 1 || c.Dropped.Load() != 1 {
		t.Fatalf("errors %d dropped %d", c.Errors.Load(), c.Dropped.Load())
	}
}

// TestDownsampleDeadband: the forwarded readings and summaries together
// cover every reading exactly once, and each summary equals a reference
// computation over the readings of its window that were not forwarded.
func TestDownsampleDeadband(t *testing.T) {
	s := mustCompile(t, []Rule{{
		Name: "telemetry", Match: Match{Kinds: []string{"reading"}},
		Actions: []Action{
			{Deadband: &Deadband{Threshold: 1.0, MaxInterval: dur(5 * time.Minute)}},
			{Downsample: &Downsample{Interval: dur(time.Minute)}},
		},
	}}, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	v := 20.0
	ref := map[time.Time]*agg{}
	var lastFwd float64
	var lastAt time.Duration
	have := false
	var forwarded, summarized uint64
	const n = 3600
	for i := range n {
		at := time.Duration(i) * time.Second
		if rng.IntN(100) < 3 {
			v += rng.NormFloat64() * 3
		} else {
			v += rng.NormFloat64() * 0.05
		}
		fwd := !have || math.Abs(v-lastFwd) > 1.0 || at-lastAt >= 5*time.Minute
		if fwd {
			lastFwd, lastAt, have = v, at, true
		} else {
			w := t0.Add(at).Truncate(time.Minute)
			a := ref[w]
			if a == nil {
				a = &agg{min: v, max: v}
				ref[w] = a
			}
			a.min, a.max, a.sum, a.last = math.Min(a.min, v), math.Max(a.max, v), a.sum+v, v
			a.n++
		}
		o := run(s, reading("s1", at, v))
		forwarded += uint64(len(o.Keep))
		if fwd != (len(o.Keep) == 1) {
			t.Fatalf("reading %d: forwarded %v, reference says %v", i, len(o.Keep) == 1, fwd)
		}
		for _, d := range o.Derived {
			summarized += check(t, d.Event, ref)
		}
	}
	o := s.Flush(t0.Add(n * time.Second))
	o.Commit()
	for _, d := range o.Derived {
		summarized += check(t, d.Event, ref)
	}
	if forwarded+summarized != n {
		t.Fatalf("forwarded %d + summarized %d != %d readings", forwarded, summarized, n)
	}
	if forwarded > n/5 {
		t.Fatalf("forwarded %d of %d: the deadband let too much through", forwarded, n)
	}
	if len(s.Marks()) != 0 {
		t.Fatal("windows left open after Flush")
	}
	if got := s.Rules()[0].Counters.Summarized.Load(); got != summarized {
		t.Fatalf("summarized counter %d, want %d", got, summarized)
	}
}

type agg struct {
	min, max, sum, last float64
	n                   uint64
}

// check compares a summary with the reference window it covers and
// returns its count.
func check(t *testing.T, e *event.Event, ref map[time.Time]*agg) uint64 {
	t.Helper()
	from := e.Attrs["from"].(time.Time)
	a := ref[from]
	if a == nil {
		t.Fatalf("summary for %v: no reference window", from)
	}
	n := e.Attrs["count"].(uint64)
	close := func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }
	if e.Kind != KindSummary || n != a.n || !close(e.Attrs["min"].(float64), a.min) || !close(e.Attrs["max"].(float64), a.max) ||
		!close(e.Attrs["mean"].(float64), a.sum/float64(a.n)) || !close(e.Attrs["last"].(float64), a.last) || e.Attrs["unit"] != "C" {
		t.Fatalf("summary %v, reference %+v", e.Attrs, *a)
	}
	delete(ref, from)
	return n
}

// TestCompileErrors: what a bad rule is refused with.
func TestCompileErrors(t *testing.T) {
	env := Env{Streams: map[string]bool{"scans": true, "alerts": true}, Outputs: map[string][]string{"io": {"red"}}}
	tests := []struct {
		name string
		rule Rule
		want string // in the error
	}{
		{"syntax", Rule{Name: "a", When: "attrs.value >", Actions: []Action{{Drop: &Drop{}}}}, "rules[0].when: rule a: unexpected token EOF"},
		{"unknown name", Rule{Name: "a", When: "atrs.value > 1", Actions: []Action{{Drop: &Drop{}}}}, "unknown name atrs"},
		{"not bool", Rule{Name: "a", When: "1 + 2", Actions: []Action{{Drop: &Drop{}}}}, "expected bool"},
		{"too long", Rule{Name: "a", When: "true" + strings.Repeat(" && true", 300), Actions: []Action{{Drop: &Drop{}}}}, "longer than 2048 bytes"},
		{"too many nodes", Rule{Name: "a", When: "1 < 2" + strings.Repeat(" && 1 < 2", 200), Actions: []Action{{Drop: &Drop{}}}}, "exceeds maximum allowed nodes"},
		{"now is off", Rule{Name: "a", When: `now().Hour() > 8`, Actions: []Action{{Drop: &Drop{}}}}, "now"},
		{"time is the event's", Rule{Name: "a", When: `time.Hour() >= 22 || time.Hour() < 6`, Actions: []Action{{Drop: &Drop{}}}}, ""},
		{"repeat is off", Rule{Name: "a", When: `len(repeat("x", 1000000000)) > 0`, Actions: []Action{{Drop: &Drop{}}}}, "repeat"},
		{"no actions", Rule{Name: "a"}, "rules[0].actions: at least one action"},
		{"two in one", Rule{Name: "a", Actions: []Action{{Drop: &Drop{}, Alert: &Alert{}}}}, "set exactly one"},
		{"alert stream unknown", Rule{Name: "a", Actions: []Action{{Alert: &Alert{Stream: "nope"}}}}, `"nope" is not a stream`},
		{"alert to a matched stream", Rule{Name: "a", Match: Match{Streams: []string{"scans"}}, Actions: []Action{{Alert: &Alert{Stream: "scans"}}}}, "alerts go to a stream of their own"},
		{"gpio output unknown", Rule{Name: "a", Actions: []Action{{GPIO: &GPIO{Source: "io", Output: "green", Mode: "on"}}}}, `no output "green"`},
		{"pulse without for", Rule{Name: "a", Actions: []Action{{GPIO: &GPIO{Source: "io", Output: "red", Mode: "pulse"}}}}, "required for a pulse"},
		{"for without firing", Rule{Name: "a", For: dur(time.Minute), Actions: []Action{{Drop: &Drop{}}}}, "for and cooldown apply"},
		{"silence without for", Rule{Name: "a", Silence: dur(time.Minute), Actions: []Action{{Alert: &Alert{}}}}, "rules[0].silence: ends a for: stretch"},
		{"silence under a second", Rule{Name: "a", For: dur(time.Minute), Silence: dur(time.Millisecond), Actions: []Action{{Alert: &Alert{}}}}, "at least 1s"},
		{"drop and deadband", Rule{Name: "a", Actions: []Action{{Drop: &Drop{}}, {Deadband: &Deadband{Threshold: 1}}}}, "at most one drop or downsample"},
		{"bad interval", Rule{Name: "a", Actions: []Action{{Downsample: &Downsample{Interval: dur(time.Millisecond)}}}}, "out of range 1s..24h"},
		{"unknown table is nil, known compiles", Rule{Name: "a", When: `tables.nope == nil`, Actions: []Action{{Drop: &Drop{}}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := Validate([]Rule{tt.rule}, nil, env)
			if tt.want == "" {
				if len(es) > 0 {
					t.Fatal(es)
				}
				return
			}
			if len(es) == 0 || !strings.Contains(es.Error(), tt.want) {
				t.Fatalf("errors %q, want %q", es, tt.want)
			}
		})
	}
}

// TestCostBound: a condition that builds a large range runs out of its
// memory budget at run time: an error counted, the event kept.
func TestCostBound(t *testing.T) {
	s := mustCompile(t, []Rule{{Name: "heavy", When: `len(filter(1..10000000, # % 2 == 0)) > 0`, Actions: []Action{{Drop: &Drop{}}}}}, nil)
	o := run(s, reading("x", 0, 1))
	if len(o.Keep) != 1 || s.Rules()[0].Counters.Errors.Load() != 1 {
		t.Fatalf("kept %d errors %d", len(o.Keep), s.Rules()[0].Counters.Errors.Load())
	}
}

// TestMarks: an open window is marked before its first reading's commit
// and unmarked once its summary is committed; a mark found at start
// becomes a gap of reason rule-window-lost.
func TestMarks(t *testing.T) {
	s := mustCompile(t, []Rule{{Name: "ds", Actions: []Action{{Downsample: &Downsample{Interval: dur(time.Minute)}}}}}, nil)
	o := s.Process([]*event.Event{reading("s", 0, 1)})
	if !o.Opened || len(s.Marks()) != 0 || len(s.MarksWith(o)) != 1 {
		t.Fatalf("opened %v marks %v with %v", o.Opened, s.Marks(), s.MarksWith(o))
	}
	o.Commit()
	run(s, reading("s", time.Second, 2))
	ms, err := DecodeMarks(EncodeMarks(s.MarksWith(s.Process(nil))))
	if err != nil || len(ms) != 1 || ms[0].Count != 2 || ms[0].Stream != "telemetry" {
		t.Fatalf("marks %+v %v", ms, err)
	}
	gaps := LostWindows(ms, t0.Add(time.Hour))
	g, err := event.GapOf(gaps[0])
	if err != nil || g.Reason != ReasonLost || g.Count != 2 || g.To-g.From != 60 || gaps[0].Attrs["rule"] != "ds" {
		t.Fatalf("gap %+v %v", g, err)
	}
	o = s.Tick(t0.Add(time.Minute))
	if !o.Closed || len(o.Derived) != 1 {
		t.Fatalf("tick closed %v derived %d", o.Closed, len(o.Derived))
	}
	o.Commit()
	if len(s.Marks()) != 0 {
		t.Fatal("mark left after the summary")
	}
}

// TestCSVTable: a 100,000-row route table loads from CSV (header skipped)
// and a condition looks routes up in it; a short row is refused with its
// row number.
func TestCSVTable(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("route,dock\n")
	for i := range 100_000 {
		fmt.Fprintf(&b, "R%d,dock%d\n", i, i%12)
	}
	if err := os.WriteFile(filepath.Join(dir, "routes.csv"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	tables := map[string]Table{"routes": {CSV: "routes.csv", Header: true}}
	loaded, err := LoadTables(tables, dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(loaded["routes"]); n != 100_000 {
		t.Fatalf("%d rows", n)
	}
	s, err := Compile([]Rule{{Name: "missort", When: `tables.routes[attrs.route] != attrs.dock`, Actions: []Action{{Alert: &Alert{}}}}}, tables, Options{Tables: loaded})
	if err != nil {
		t.Fatal(err)
	}
	scan := func(route, dock string) *event.Event {
		return &event.Event{Stream: "scans", Kind: "scan", Received: t0, Attrs: map[string]any{"route": route, "dock": dock}}
	}
	if o := run(s, scan("R99999", "dock3"), scan("R99998", "dock3")); len(o.Fired) != 1 || o.Fired[0].Source != "" || o.Derived[0].Cause.Attrs["route"] != "R99998" {
		t.Fatalf("fired %+v", o.Fired)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.csv"), []byte("R1,dock1\nR2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadTables(map[string]Table{"bad": {CSV: "bad.csv"}}, dir)
	if err == nil || !strings.Contains(err.Error(), "tables.bad.csv: bad.csv row 2: want key,value") {
		t.Fatalf("short row: %v", err)
	}
}

// TestFireStateRestored: a for: stretch and a cooldown survive a restart
// (a new Set given the stored states): the excursion that began before
// fires at 2 minutes from its start, once; a rule whose condition changed
// starts afresh.
func TestFireStateRestored(t *testing.T) {
	rule := Rule{Name: "excursion", When: `attrs.value > 8`, For: dur(2 * time.Minute), Cooldown: dur(time.Hour),
		Actions: []Action{{Alert: &Alert{Peak: "value"}}}}
	a := mustCompile(t, []Rule{rule}, nil)
	if o := run(a, reading("van", 10*time.Second, 9)); !o.FireChanged || len(o.Fired) != 0 {
		t.Fatalf("stretch start: changed %v fired %d", o.FireChanged, len(o.Fired))
	}
	if o := run(a, reading("van", 20*time.Second, 9.5)); o.FireChanged {
		t.Fatal("a higher peak alone asked for a write")
	}
	stored, err := DecodeFireStates(EncodeFireStates(a.FireStates()))
	if err != nil || len(stored) != 1 || !stored[0].Since.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("states %+v %v", stored, err)
	}
	b, err := Compile([]Rule{rule}, nil, Options{Restore: stored})
	if err != nil {
		t.Fatal(err)
	}
	o := run(b, reading("van", 130*time.Second, 9.5))
	if len(o.Fired) != 1 || o.Fired[0].Phase != "start" || !o.Derived[0].Event.Attrs["start"].(time.Time).Equal(t0.Add(10*time.Second)) {
		t.Fatalf("after the restart: %+v", o.Fired)
	}
	run(b, reading("van", 140*time.Second, 5)) // ends
	// Restarted again within the cooldown: a new stretch does not fire.
	c, _ := Compile([]Rule{rule}, nil, Options{Restore: b.FireStates()})
	run(c, reading("van", 5*time.Minute, 9))
	if o := run(c, reading("van", 8*time.Minute, 9)); len(o.Fired) != 0 {
		t.Fatal("fired within the restored cooldown")
	}
	// A changed condition starts afresh.
	changed := rule
	changed.When = `attrs.value > 7`
	d, _ := Compile([]Rule{changed}, nil, Options{Restore: stored})
	if o := run(d, reading("van", 130*time.Second, 9.5)); len(o.Fired) != 0 {
		t.Fatal("a changed rule took the old stretch")
	}
}
