package edge

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/edge/config"
)

// An apply touches only what changed. planApply compares the running
// pipeline with the next config, section by section (the config's
// top-level YAML keys), and sectionChanges says what a change to each
// section does:
//
//   - streams: the limits are set on the buffer (ConfigureStream, done by
//     Reload before any part changes) and nothing restarts; a stream added
//     or removed, or a priority changed, restarts the uplink's forwarders;
//   - uplink: the uplink restarts (a new client and forwarders); sources
//     keep running and committing to the buffer, and the new forwarders
//     resume from it;
//   - sources: each source added, removed or changed starts, stops or
//     restarts alone; the others, the embedded broker and its devices are
//     untouched (an embedded-broker source restarts with the broker held:
//     its devices' publishes wait for the new source, connections stay);
//   - buffer: only disk_budget is read after the store opens (by the state
//     feeder, which restarts); gateway, http, log and fleet are not read by
//     the pipeline (set at start, or by the fleet agent).
//
// A section that has no entry in sectionChanges (the broker, and anything
// added to the config later) changes by a full rebuild: the whole pipeline
// stops and a new one starts, keeping only an unchanged embedded broker.
// Making one more section change in place is one entry here. A section that
// can be swapped into the running parts without restarting any adds a swap
// to the plan: rules and tables (planRules) compile the new rules and hand
// them to the ingest's SetRules; sources, uplink and broker run on.
//
// Swaps run after every restart succeeded; if a later swap fails, the ones
// done are swapped back with the previous config.
var sectionChanges = map[string]func(pl *plan, p *pipeline, next *config.Config){
	"streams": planUplink,
	"uplink":  planUplink,
	"sources": planSources,
	"buffer":  planFeed,
	"gateway": notInPipeline,
	"http":    notInPipeline,
	"log":     notInPipeline,
	"fleet":   notInPipeline,
	"rules":   planRules,
	"tables":  planRules,
}

// plan is what an apply does to go from the running pipeline to a config.
type plan struct {
	// full names the first changed section that needs a full rebuild; ""
	// when the parts below are all that change.
	full   string
	uplink bool            // restart the uplink client and its forwarders
	stop   []string        // sources to stop (removed or changed), in name order
	start  []config.Source // sources to start (added or changed), in config order
	feed   bool            // restart the state feeder
	swaps  []swap          // sections swapped in place, nothing restarted
}

// swap changes one section in the running parts, without restarting any.
type swap struct {
	section string
	do      func(g *Gateway, q *pipeline, cfg *config.Config) error
}

// swap adds a swap of section to the plan.
func (pl *plan) swap(section string, do func(g *Gateway, q *pipeline, cfg *config.Config) error) {
	pl.swaps = append(pl.swaps, swap{section, do})
}

// restarts names the parts the plan restarts, for logs and tests.
func (pl plan) restarts() []string {
	if pl.full != "" {
		return []string{"everything (" + pl.full + " changed)"}
	}
	var out []string
	if pl.uplink {
		out = append(out, "uplink")
	}
	for _, sw := range pl.swaps {
		out = append(out, sw.section+" (swapped in place)")
	}
	stopped := map[string]bool{}
	for _, n := range pl.stop {
		stopped[n] = true
	}
	for _, s := range pl.start {
		if stopped[s.Name] {
			out = append(out, "source "+s.Name)
			delete(stopped, s.Name)
		} else {
			out = append(out, "source "+s.Name+" (added)")
		}
	}
	for _, n := range pl.stop {
		if stopped[n] {
			out = append(out, "source "+n+" (removed)")
		}
	}
	return out
}

// planApply plans the apply of next over the running pipeline p.
func planApply(p *pipeline, next *config.Config) plan {
	var pl plan
	for _, sec := range changedSections(p.cfg, next) {
		if _, ok := sectionChanges[sec]; !ok {
			pl.full = sec
			return pl
		}
	}
	// Every entry runs: those backed by parts compare what the part runs,
	// which differs from p.cfg after a failed apply.
	for _, f := range sectionChanges {
		f(&pl, p, next)
	}
	slices.Sort(pl.stop)
	slices.SortFunc(pl.swaps, func(a, b swap) int { return strings.Compare(a.section, b.section) })
	return pl
}

func notInPipeline(*plan, *pipeline, *config.Config) {}

// planRules swaps the rule set in when the rules or the tables changed
// (one swap for both). A CSV table's file is read at the swap: a changed
// file under an unchanged config is read at the next swap or start.
func planRules(pl *plan, p *pipeline, next *config.Config) {
	if sameValue(p.cfg.Rules, next.Rules) && sameValue(p.cfg.Tables, next.Tables) {
		return
	}
	for _, sw := range pl.swaps {
		if sw.section == "rules" {
			return
		}
	}
	pl.swap("rules", func(g *Gateway, q *pipeline, cfg *config.Config) error {
		set, err := g.compileRules(cfg)
		if err != nil {
			return err
		}
		q.sink.SetRules(q.ctx, set)
		return nil
	})
}

func planUplink(pl *plan, p *pipeline, next *config.Config) {
	if p.upKey != uplinkKey(next) {
		pl.uplink, pl.feed = true, true
	}
}

func planFeed(pl *plan, p *pipeline, next *config.Config) {
	if p.cfg.Buffer.DiskBudget != next.Buffer.DiskBudget {
		pl.feed = true
	}
}

func planSources(pl *plan, p *pipeline, next *config.Config) {
	want := map[string]bool{}
	for _, src := range next.Sources {
		want[src.Name] = true
		sp, running := p.sources[src.Name]
		switch {
		case !running: // added, or an optional source that did not start
			pl.start = append(pl.start, src)
		case sp.key != sourceKey(src):
			pl.stop = append(pl.stop, src.Name)
			pl.start = append(pl.start, src)
		}
	}
	for name := range p.sources {
		if !want[name] {
			pl.stop = append(pl.stop, name)
		}
	}
	if len(pl.start) > 0 || len(pl.stop) > 0 {
		pl.feed = true
	}
}

// changedSections names the top-level sections of the config (by YAML key)
// whose values differ between a and b.
func changedSections(a, b *config.Config) []string {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	t := va.Type()
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if !sameValue(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, name)
		}
	}
	return out
}

// sameValue reports whether a and b are equal settings: deeply equal, or
// equal once encoded as YAML (the way the config spells them, so that
// derived fields and source positions do not count).
func sameValue(a, b any) bool {
	if reflect.DeepEqual(a, b) {
		return true
	}
	ya, err := yaml.Marshal(a)
	if err != nil {
		return false
	}
	yb, err := yaml.Marshal(b)
	return err == nil && bytes.Equal(ya, yb)
}

// canonical encodes v as YAML; a value that does not encode gets a key
// that equals no other.
func canonical(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Sprintf("unencodable %p", &b)
	}
	return string(b)
}

// sourceKey is what a source's restart depends on: its name, driver,
// optional flag and decoded driver settings.
func sourceKey(src config.Source) string {
	return canonical(struct {
		Name, Driver string
		Optional     bool
		Config       any
	}{src.Name, src.Driver, src.Optional, src.Parsed})
}

// uplinkKey is what the uplink's restart depends on: its options and the
// streams it forwards, with their priorities (limits are the buffer's).
func uplinkKey(cfg *config.Config) string {
	type stream struct {
		Name     string
		Priority int
	}
	ss := make([]stream, len(cfg.Streams))
	for i, s := range cfg.Streams {
		ss[i] = stream{s.Name, s.Priority}
	}
	return canonical(struct {
		Uplink  any
		Streams []stream
	}{cfg.Uplink, ss})
}

// derive returns a new pipeline value sharing p's parts, for an apply to
// change some of them.
func (p *pipeline) derive() *pipeline {
	q := *p
	q.sources = make(map[string]*sourcePart, len(p.sources))
	for k, v := range p.sources {
		q.sources[k] = v
	}
	return &q
}

// reconfigure applies next to the running pipeline p part by part, as pl
// says (pl.full must be empty). It returns the pipeline that runs next.
// If a part fails to start, the parts changed so far are changed back to
// what p ran, by the same means (another plan), and the pipeline that runs
// p's config again is returned with the error; if even that fails, the
// returned pipeline is nil (the caller restarts p's config in full).
func (g *Gateway) reconfigure(p *pipeline, next *config.Config, pl plan) (*pipeline, error) {
	q := p.derive()
	err := g.runPlan(q, next, pl)
	if err == nil {
		q.cfg = next
		return q, nil
	}
	back := planApply(q, p.cfg)
	if back.full != "" {
		q.stop()
		return nil, err
	}
	if err2 := g.runPlan(q, p.cfg, back); err2 != nil {
		q.stop()
		return nil, fmt.Errorf("%w; changing the parts back failed too: %v", err, err2)
	}
	return q, err
}

// runPlan changes q's parts as pl says, for cfg: sources, then the uplink,
// then the state feeder. A source is stopped before its new version
// starts, and the old forwarders before the new ones, so that two MQTT
// sessions of one client ID, or two producers of one name, never run at
// once.
func (g *Gateway) runPlan(q *pipeline, cfg *config.Config, pl plan) error {
	defer q.index()
	if len(pl.stop) > 0 || len(pl.start) > 0 {
		if err := g.restartSources(q, pl); err != nil {
			return err
		}
	}
	if pl.uplink {
		up, err := g.newUplink(cfg)
		if err != nil {
			return err
		}
		q.fwd.stop()
		q.up.Close()
		q.up, q.upKey = up, uplinkKey(cfg)
		g.startForwarders(q, cfg)
	}
	if pl.feed {
		q.feed.stop()
		g.startFeed(q, cfg)
	}
	for i, sw := range pl.swaps {
		if err := sw.do(g, q, cfg); err != nil {
			for _, done := range pl.swaps[:i] {
				if err := done.do(g, q, q.cfg); err != nil {
					g.log.Error("cannot swap back", "section", done.section, "err", err)
				}
			}
			return fmt.Errorf("%s: %w", sw.section, err)
		}
	}
	return nil
}

// restartSources stops and starts the sources pl names. When any of them is
// fed by the embedded broker, the broker is held meanwhile: its devices
// stay connected and their publishes wait until the new sources have
// attached (those a stopped source took but did not ack go to its
// successor).
func (g *Gateway) restartSources(q *pipeline, pl plan) error {
	held := false
	if q.broker != nil {
		for _, n := range pl.stop {
			held = held || q.sources[n].inbox
		}
		for _, s := range pl.start {
			held = held || usesInbox(s.Parsed)
		}
	}
	var attached []drivers.Readier
	if held {
		q.broker.Hold()
		defer func() {
			if !waitReady(q.ctx, attached, attachWait) {
				g.log.Error("embedded broker: sources not attached in time; releasing anyway", "waited", attachWait)
			}
			q.broker.Release()
		}()
	}
	for _, n := range pl.stop {
		q.sources[n].stop()
		delete(q.sources, n)
	}
	for _, src := range pl.start {
		sp, err := g.startSource(q, src)
		if err != nil {
			return err
		}
		if r, ok := sp.readier(); ok && sp.inbox {
			attached = append(attached, r)
		}
	}
	return nil
}
