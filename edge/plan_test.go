package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/edge/config"
	"github.com/edgegw/gateway/test/harness"
	"github.com/edgegw/gateway/test/testenv"
)

// planFake is a driver that counts its builds and runs per label.
type planFakeConfig struct {
	Label   string `yaml:"label"`
	Setting int    `yaml:"setting"`
	Fail    bool   `yaml:"fail"` // New fails
}

type planFake struct {
	label string
	runs  atomic.Int32
}

func (d *planFake) Run(ctx context.Context, _ drivers.Sink) error {
	d.runs.Add(1)
	<-ctx.Done()
	return nil
}

func (d *planFake) Ready() bool { return true }

var planFakes = struct {
	sync.Mutex
	builds map[string]int
}{builds: map[string]int{}}

func init() {
	drivers.Register("planfake", drivers.Registration{
		NewConfig: func() any { return &planFakeConfig{} },
		New: func(cfg any, _ drivers.Env) (drivers.Driver, error) {
			c := cfg.(*planFakeConfig)
			if c.Fail {
				return nil, errors.New("planfake: told to fail")
			}
			planFakes.Lock()
			planFakes.builds[c.Label]++
			planFakes.Unlock()
			return &planFake{label: c.Label}, nil
		},
	})
}

func planFakeBuilds(label string) int {
	planFakes.Lock()
	defer planFakes.Unlock()
	return planFakes.builds[label]
}

// planRig runs an in-process gateway (no Pulsar needed: the uplink points
// at a closed port) and reloads it with variations of one document.
type planRig struct {
	t   *testing.T
	g   *Gateway
	dir string
	pfx string // label prefix, unique per test
}

type planDoc struct {
	maxEvents   int64
	sendTimeout string
	aSetting    int
	extra       string // more sources
	broker      string // a broker: section and its source, or ""
	rules       string // a rules: section, or ""
}

func (r *planRig) doc(d planDoc) *config.Config {
	r.t.Helper()
	if d.sendTimeout == "" {
		d.sendTimeout = "30s"
	}
	y := fmt.Sprintf(`gateway:
  id: plan-gw
buffer:
  path: %s
streams:
  - name: scans
    max_events: %d
uplink:
  service_url: pulsar://127.0.0.1:1
  require_dedup: false
  send_timeout: %s
http:
  listen: "off"
sources:
  - name: a
    driver: planfake
    planfake: {label: %s-a, setting: %d}
  - name: b
    driver: planfake
    planfake: {label: %s-b}
%s%s%s`, filepath.Join(r.dir, "b.db"), d.maxEvents, d.sendTimeout, r.pfx, d.aSetting, r.pfx, d.extra, d.broker, d.rules)
	c, err := config.Parse([]byte(y))
	if err != nil {
		r.t.Fatalf("%v\n%s", err, y)
	}
	return c
}

func newPlanRig(t *testing.T, d planDoc) *planRig {
	r := &planRig{t: t, dir: t.TempDir(), pfx: fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())}
	r.g = New(r.doc(d), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	testenv.Eventually(t, 10*time.Second, "gateway ready", func() bool { return r.g.Status().Ready })
	return r
}

func (r *planRig) pipe() *pipeline {
	r.g.mu.Lock()
	defer r.g.mu.Unlock()
	return r.g.pipe
}

// driver returns the running driver of source name.
func (r *planRig) driver(name string) drivers.Driver {
	sp, ok := r.pipe().sources[name]
	if !ok {
		return nil
	}
	return sp.d
}

func (r *planRig) reload(d planDoc) error {
	return r.g.Reload(context.Background(), r.doc(d))
}

func (r *planRig) builds(source string) int { return planFakeBuilds(r.pfx + "-" + source) }

func TestApplyRestartsOnlyWhatChanged(t *testing.T) {
	r := newPlanRig(t, planDoc{maxEvents: 1000})
	p0 := r.pipe()
	a0, b0 := r.driver("a").(*planFake), r.driver("b").(*planFake)
	testenv.Eventually(t, 10*time.Second, "both sources run", func() bool { return a0.runs.Load() == 1 && b0.runs.Load() == 1 })
	if r.builds("a") != 1 || r.builds("b") != 1 {
		t.Fatalf("builds at start: a %d, b %d", r.builds("a"), r.builds("b"))
	}

	// A stream limit: the buffer's stream is reconfigured, nothing restarts.
	if err := r.reload(planDoc{maxEvents: 5}); err != nil {
		t.Fatal(err)
	}
	p1 := r.pipe()
	if p1.up != p0.up || p1.fwd != p0.fwd || r.driver("a") != a0 || r.driver("b") != b0 {
		t.Fatal("a stream limit change restarted a part")
	}
	if got := streamMaxEvents(r.g, "scans"); got != 5 {
		t.Fatalf("scans max_events in the buffer: %d, want 5", got)
	}

	// An uplink option: only the uplink restarts.
	if err := r.reload(planDoc{maxEvents: 5, sendTimeout: "7s"}); err != nil {
		t.Fatal(err)
	}
	p2 := r.pipe()
	if p2.up == p1.up || p2.fwd == p1.fwd {
		t.Fatal("an uplink change did not restart the uplink")
	}
	if got := p2.up.Options().SendTimeout.D(); got != 7*time.Second {
		t.Fatalf("uplink send_timeout %s", got)
	}
	if r.driver("a") != a0 || r.driver("b") != b0 || a0.runs.Load() != 1 || b0.runs.Load() != 1 || r.builds("a") != 1 || r.builds("b") != 1 {
		t.Fatal("an uplink change restarted a source")
	}

	// One source's settings: only that source restarts.
	if err := r.reload(planDoc{maxEvents: 5, sendTimeout: "7s", aSetting: 1}); err != nil {
		t.Fatal(err)
	}
	p3 := r.pipe()
	a1 := r.driver("a").(*planFake)
	if a1 == a0 || r.builds("a") != 2 {
		t.Fatalf("source a not restarted (builds %d)", r.builds("a"))
	}
	testenv.Eventually(t, 10*time.Second, "the new a runs", func() bool { return a1.runs.Load() == 1 })
	if r.driver("b") != b0 || b0.runs.Load() != 1 || r.builds("b") != 1 {
		t.Fatal("a change to source a restarted source b")
	}
	if p3.up != p2.up || p3.fwd != p2.fwd {
		t.Fatal("a change to source a restarted the uplink")
	}

	// The same document again: nothing restarts.
	if err := r.reload(planDoc{maxEvents: 5, sendTimeout: "7s", aSetting: 1}); err != nil {
		t.Fatal(err)
	}
	if r.driver("a") != a1 || r.driver("b") != b0 || r.pipe().up != p3.up {
		t.Fatal("an unchanged document restarted a part")
	}

	// A source that fails to start: the apply fails, the parts it changed
	// are changed back, the untouched ones still are.
	err := r.reload(planDoc{maxEvents: 5, sendTimeout: "7s", aSetting: 2,
		extra: "  - name: c\n    driver: planfake\n    planfake: {label: " + r.pfx + "-c, fail: true}\n"})
	if err == nil || !strings.Contains(err.Error(), "told to fail") {
		t.Fatalf("reload with a failing source: %v", err)
	}
	a2 := r.driver("a").(*planFake)
	if a2 == a1 || r.driver("c") != nil || r.driver("b") != b0 || b0.runs.Load() != 1 {
		t.Fatal("after the failed apply: a not restored, c running, or b restarted")
	}
	r.g.mu.Lock()
	running := r.g.cfg
	r.g.mu.Unlock()
	if got := running.Sources[0].Parsed.(*planFakeConfig).Setting; got != 1 {
		t.Fatalf("running config after the failed apply has a.setting %d, want 1", got)
	}
	if got := r.pipe().sources["a"].cfg.Parsed.(*planFakeConfig).Setting; got != 1 {
		t.Fatalf("source a runs with setting %d after the failed apply, want 1", got)
	}

	// A section no part takes in place (here the broker): a full rebuild.
	port := harness.FreePort(t)
	if err := r.reload(planDoc{maxEvents: 5, sendTimeout: "7s", aSetting: 1,
		broker: fmt.Sprintf("broker:\n  listen: 127.0.0.1:%d\n  allow_anonymous: true\n", port)}); err != nil {
		t.Fatal(err)
	}
	if r.driver("a") == a2 || r.driver("b") == b0 || r.pipe().up == p3.up {
		t.Fatal("a broker change did not rebuild the pipeline")
	}
}

// A change to one source leaves the embedded broker and the sources it
// feeds running.
func TestApplySourceChangeKeepsBroker(t *testing.T) {
	port := harness.FreePort(t)
	broker := fmt.Sprintf(`broker:
  listen: 127.0.0.1:%d
  allow_anonymous: true
`, port)
	scanner := `  - name: scanner
    driver: mqtt
    mqtt:
      brokers: [embedded]
      subscriptions:
        - topic: dock/+dock/scan
          kind: scan
`
	r := newPlanRig(t, planDoc{extra: scanner, broker: broker})
	p0 := r.pipe()
	sc := r.driver("scanner")
	if sc == nil || p0.broker == nil {
		t.Fatal("no scanner or no broker")
	}
	if err := r.reload(planDoc{extra: scanner, broker: broker, aSetting: 3}); err != nil {
		t.Fatal(err)
	}
	p1 := r.pipe()
	if p1.broker != p0.broker || r.driver("scanner") != sc {
		t.Fatal("a change to source a restarted the broker or the scanner")
	}
	if r.driver("a") == p0.sources["a"].d {
		t.Fatal("source a not restarted")
	}
	if ok, why := (fleetRuntime{r.g}).Healthy(); !ok {
		t.Fatalf("not healthy after the apply: %s", why)
	}
}

func TestPlanSections(t *testing.T) {
	r := &planRig{t: t, dir: "/nonexistent", pfx: "x"}
	base := r.doc(planDoc{})
	p := &pipeline{cfg: base, upKey: uplinkKey(base), sources: map[string]*sourcePart{}}
	for _, s := range base.Sources {
		p.sources[s.Name] = &sourcePart{cfg: s, key: sourceKey(s)}
	}
	for _, tc := range []struct {
		name string
		doc  planDoc
		want string
	}{
		{"same", planDoc{}, ""},
		{"stream limit", planDoc{maxEvents: 9}, ""},
		{"uplink", planDoc{sendTimeout: "1s"}, "uplink"},
		{"one source", planDoc{aSetting: 4}, "source a"},
		{"added source", planDoc{extra: "  - name: c\n    driver: planfake\n    planfake: {label: c}\n"}, "source c (added)"},
		{"rules", planDoc{rules: "rules:\n  - {name: r1, actions: [{drop: {}}]}\n"}, "rules (swapped in place)"},
		{"broker", planDoc{broker: "broker:\n  listen: 127.0.0.1:1883\n  allow_anonymous: true\n"}, "everything (broker changed)"},
	} {
		if tc.doc.broker != "" && !config.EmbeddedBrokerBuilt {
			continue // this build refuses a broker: section at load
		}
		got := strings.Join(planApply(p, r.doc(tc.doc)).restarts(), ", ")
		if got != tc.want {
			t.Errorf("%s: restarts %q, want %q", tc.name, got, tc.want)
		}
	}
}

func streamMaxEvents(g *Gateway, stream string) int64 {
	g.mu.Lock()
	db := g.db
	g.mu.Unlock()
	for _, s := range db.Stats().Streams {
		if s.Config.Name == stream {
			return s.Config.MaxEvents
		}
	}
	return -1
}

// A section that swaps in place (here the streams, through a test entry)
// restarts nothing; a swap that fails changes back what the apply changed.
func TestApplySwapsInPlace(t *testing.T) {
	var swapped []int64
	fail := false
	prev := sectionChanges["streams"]
	sectionChanges["streams"] = func(pl *plan, p *pipeline, next *config.Config) {
		prev(pl, p, next)
		if p.cfg.Streams[0].MaxEvents != next.Streams[0].MaxEvents {
			pl.swap("streams", func(_ *Gateway, q *pipeline, cfg *config.Config) error {
				if fail && cfg.Streams[0].MaxEvents == 7 {
					return errors.New("swap refused")
				}
				swapped = append(swapped, cfg.Streams[0].MaxEvents)
				return nil
			})
		}
	}
	t.Cleanup(func() { sectionChanges["streams"] = prev })

	r := newPlanRig(t, planDoc{maxEvents: 1})
	a0, up0 := r.driver("a"), r.pipe().up
	if err := r.reload(planDoc{maxEvents: 5}); err != nil {
		t.Fatal(err)
	}
	if r.driver("a") != a0 || r.pipe().up != up0 || fmt.Sprint(swapped) != "[5]" {
		t.Fatalf("swap: restarted a part, or swapped %v", swapped)
	}
	fail = true
	err := r.reload(planDoc{maxEvents: 7, aSetting: 9})
	if err == nil || !strings.Contains(err.Error(), "streams: swap refused") {
		t.Fatalf("failing swap: %v", err)
	}
	if got := r.pipe().sources["a"].cfg.Parsed.(*planFakeConfig).Setting; got != 0 || r.driver("a") == a0 {
		t.Fatalf("source a runs setting %d after the failed swap, want it restarted back to 0", got)
	}
	if got := streamMaxEvents(r.g, "scans"); got != 5 {
		t.Fatalf("scans max_events %d after the failed apply, want 5", got)
	}
}
