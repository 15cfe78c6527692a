package ingest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/testenv"
	"github.com/edgegw/gateway/units"
)

// fakeClock is an injected wall clock that only moves when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// startFakeClock is startFake with the driver's clock replaced.
func startFakeClock(t *testing.T, cfg *Config, sink drivers.Sink, clk *fakeClock) (*testDriver, *fakeClient) {
	t.Helper()
	d, fc, stop := startFakeOpts(t, cfg, sink, Options{Now: clk.now})
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	return d, fc
}

// reports returns the "dropped" events in evs by source, summing counts.
func reports(t *testing.T, evs []*event.Event) (bySource map[string]int64, other []*event.Event) {
	t.Helper()
	bySource = map[string]int64{}
	for _, e := range evs {
		if e.Kind != KindDropped {
			other = append(other, e)
			continue
		}
		if e.Attrs["reason"] != ReasonRateLimited {
			t.Fatalf("report reason %v", e.Attrs["reason"])
		}
		n, _ := e.Attrs["count"].(int64)
		if n < 1 {
			t.Fatalf("report count %v", e.Attrs["count"])
		}
		bySource[e.Source] += n
		// It must be a valid envelope once the sink has stamped it.
		c := *e
		c.Gateway, c.Seq = "gw1", 1
		if _, err := event.Marshal(&c); err != nil {
			t.Fatalf("report does not encode: %v", err)
		}
	}
	return bySource, other
}

// One source above its limit loses only its excess; the others lose
// nothing; every message is acked; the drops are counted and reported.
func TestRateLimitPerSource(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	sink := &memSink{}
	cfg := fakeConfig()
	cfg.RateLimit = RateLimit{EventsPerSecond: 10, Burst: 5}
	d, fc := startFakeClock(t, cfg, sink, clk)

	total := 0
	for i := 1; i <= 20; i++ {
		fc.deliver("s/flood", scanPayload(i), 1)
		total++
		if i%5 == 0 {
			fc.deliver("s/calm", scanPayload(1000+i), 1)
			total++
		}
	}
	testenv.Eventually(t, 5*time.Second, "all acked", func() bool { return len(fc.acked()) == total })
	st := d.Stats()
	if st.RateLimited != 15 || st.Accepted != 9 || st.Acked != uint64(total) {
		t.Fatalf("stats %+v", st)
	}
	// Reports: the first at once; the rest once 10s have passed (the clock
	// is fake: move it, the 1s ticker does the rest).
	clk.add(11 * time.Second)
	testenv.Eventually(t, 5*time.Second, "all drops reported", func() bool {
		evs, _, _ := sink.Snapshot()
		by, _ := reports(t, evs)
		return by["flood"] == 15
	})
	evs, _, _ := sink.Snapshot()
	by, other := reports(t, evs)
	if len(by) != 1 {
		t.Fatalf("reports for %v, want only flood", by)
	}
	perSource := map[string]int{}
	for _, e := range other {
		perSource[e.Source]++
	}
	if perSource["flood"] != 5 || perSource["calm"] != 4 {
		t.Fatalf("events per source %v, want flood 5 (the burst), calm 4 (all)", perSource)
	}

	// A second later the bucket holds 5 again (10/s, capped at the burst).
	clk.add(time.Second)
	for i := 21; i <= 27; i++ {
		fc.deliver("s/flood", scanPayload(i), 1)
	}
	testenv.Eventually(t, 5*time.Second, "acked", func() bool { return len(fc.acked()) == total+7 })
	if st := d.Stats(); st.RateLimited != 17 || st.Accepted != 14 {
		t.Fatalf("after refill: stats %+v", st)
	}
}

// A clock that jumps backwards earns no tokens; one that jumps forwards
// refills to the burst, never beyond.
func TestRateLimitClockJumps(t *testing.T) {
	l := newLimiter(RateLimit{EventsPerSecond: 1, Burst: 2})
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	allowed := func(at time.Time, n int) int {
		k := 0
		for range n {
			if l.allow("a", "t", at) {
				k++
			}
		}
		return k
	}
	if k := allowed(t0, 5); k != 2 {
		t.Fatalf("burst: %d allowed", k)
	}
	if k := allowed(t0.Add(-time.Hour), 5); k != 0 {
		t.Fatalf("after a backward jump: %d allowed", k)
	}
	if k := allowed(t0.Add(-time.Hour+time.Second), 5); k != 1 {
		t.Fatalf("one second after the backward jump: %d allowed", k)
	}
	if k := allowed(t0.Add(24*time.Hour), 5); k != 2 {
		t.Fatalf("after a forward jump: %d allowed, want the burst", k)
	}
}

// Beyond maxTrackedSources, new sources share one bucket; full buckets are
// forgotten first.
func TestRateLimitTrackedSources(t *testing.T) {
	l := newLimiter(RateLimit{EventsPerSecond: 1, Burst: 1})
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for i := range maxTrackedSources {
		if !l.allow(fmt.Sprint(i), "t", t0) {
			t.Fatalf("source %d refused its first message", i)
		}
	}
	if !l.allow("new-1", "t", t0) || l.allow("new-2", "t", t0) {
		t.Fatal("untracked sources do not share one bucket")
	}
	if len(l.buckets) != maxTrackedSources+1 {
		t.Fatalf("%d buckets", len(l.buckets))
	}
	// A second later every bucket is full again: a new source gets its own.
	if !l.allow("new-3", "t", t0.Add(time.Second)) || !l.allow("new-4", "t", t0.Add(time.Second)) {
		t.Fatal("new sources refused after the others refilled")
	}
	if _, ok := l.buckets["new-4"]; !ok || len(l.buckets) > 3 {
		t.Fatalf("pruning: %d buckets, new-4 tracked: %v", len(l.buckets), ok)
	}
}

// A subscription may turn the driver's limit off or set its own, and a
// smaller max_payload.
func TestRateLimitPerSubscription(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	sink := &memSink{}
	cfg := fakeConfig()
	cfg.RateLimit = RateLimit{EventsPerSecond: 1, Burst: 1}
	cfg.Subscriptions = []Subscription{
		{Topic: "free/+dev", Kind: "scan", Source: "{dev}", RateLimit: &RateLimit{}},
		{Topic: "tight/+dev", Kind: "scan", Source: "{dev}", MaxPayload: 32},
	}
	d, fc := startFakeClock(t, cfg, sink, clk)
	for i := range 10 {
		fc.deliver("free/a", scanPayload(i), 1)
	}
	fc.deliver("tight/b", []byte(`{"barcode":"0123456789012345678901234567890123456789"}`), 1)
	fc.deliver("tight/b", scanPayload(1), 1) // over the limit: dropped, not parsed
	testenv.Eventually(t, 5*time.Second, "acked", func() bool { return len(fc.acked()) == 12 })
	st := d.Stats()
	if st.RateLimited != 1 || st.Accepted != 10 || st.Quarantined[ReasonOversize] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRateLimitValidate(t *testing.T) {
	for _, tc := range []struct {
		path string
		mod  func(*Config)
	}{
		{"rate_limit.events_per_second", func(c *Config) { c.RateLimit.EventsPerSecond = -1 }},
		{"rate_limit.burst", func(c *Config) { c.RateLimit.Burst = 5 }},
		{"subscriptions[0].rate_limit.burst", func(c *Config) { c.Subscriptions[0].RateLimit = &RateLimit{EventsPerSecond: 1, Burst: -1} }},
		{"subscriptions[0].max_payload", func(c *Config) { c.Subscriptions[0].MaxPayload = c.MaxPayload + 1 }},
	} {
		c := fakeConfig()
		tc.mod(c)
		var ce *units.FieldError
		if err := c.Validate(); !errors.As(err, &ce) || ce.Path != tc.path {
			t.Errorf("%s: %v", tc.path, err)
		}
	}
}
