package ingest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/testenv"
	"github.com/edgegw/gateway/units"
	"github.com/fxamacker/cbor/v2"
)

// run feeds counters (one source, one committed batch each) to a tracker
// of the given width and returns the gaps, as "from-to/count".
func runCounters(t *testing.T, bits uint, cs ...uint64) []string {
	t.Helper()
	u := &deviceCounters{trackers: []*counterTracker{newCounterTracker(bits, 100)}}
	var out []string
	for _, c := range cs {
		tx := &counterTxn{dc: u}
		if g := tx.observe(0, "dev", c, false); g != nil {
			if err := g.Validate(); err != nil {
				t.Fatalf("counter %d: invalid gap %+v: %v", c, *g, err)
			}
			out = append(out, fmt.Sprintf("%d-%d/%d", g.From, g.To, g.Count))
		}
		tx.commit(&Ingest{log: testLogger()})
	}
	return out
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestCounterTracker(t *testing.T) {
	const m32 = 1<<32 - 1
	cases := []struct {
		name string
		bits uint
		cs   []uint64
		want []string
	}{
		{"in order", 32, seq(1, 10), nil},
		{"first is a baseline", 32, []uint64{500, 501}, nil},
		{"jump", 32, append(seq(1, 10), seq(20, 25)...), []string{"11-19/9"}},
		{"two jumps", 32, []uint64{1, 3, 4, 10}, []string{"2-2/1", "5-9/5"}},
		{"restart to 1", 32, append(seq(1, 100), seq(1, 5)...), nil},
		{"restart to 0", 32, append(seq(1, 100), seq(0, 5)...), nil},
		{"restart, then a jump", 32, append(seq(1, 100), 1, 2, 9), []string{"3-8/6"}},
		{"redelivered duplicate", 32, append(seq(1, 10), 10, 10, 11), nil},
		{"redelivered older", 32, append(seq(1, 10), 8, 9, 10, 11), nil},
		{"far below: restart, first messages lost", 32, append(seq(2000, 2010), 5, 6, 8), []string{"7-7/1"}},
		{"far below by more than half the range", 32, []uint64{3_000_000_000, 5, 6}, nil},
		{"wrap 32, in order", 32, []uint64{m32 - 1, m32, 0, 1, 2}, nil},
		{"wrap 32, with loss", 32, []uint64{m32 - 2, m32 - 1, 3, 4}, []string{"4294967295-4294967298/4"}},
		{"wrap 16, in order", 16, []uint64{65533, 65534, 65535, 0, 1, 2}, nil},
		{"wrap 16, with loss", 16, []uint64{65529, 65530, 3}, []string{"65531-65538/8"}},
		{"16 bit restart far from the top", 16, []uint64{40000, 40001, 2, 3}, nil},
		{"16 bit jump", 16, []uint64{100, 200}, []string{"101-199/99"}},
		{"64 bit", 64, []uint64{1<<63 + 5, 1<<63 + 9, 1}, []string{"9223372036854775814-9223372036854775816/3"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := runCounters(t, c.bits, c.cs...); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("gaps %q, want %q", got, c.want)
			}
		})
	}
}

// A random walk of restarts, wraps, redeliveries and jumps never yields an
// invalid gap, nor one near the counter's range.
func TestCounterTrackerNeverHuge(t *testing.T) {
	for _, bits := range []uint{16, 32, 64} {
		tr := newCounterTracker(bits, 10)
		mask := tr.mask()
		r := rand.New(rand.NewPCG(1, uint64(bits)))
		st, ok := counterState{}, false
		c := uint64(0)
		for range 200000 {
			switch r.IntN(10) {
			case 0:
				c = uint64(r.IntN(3)) // restart
			case 1:
				c = r.Uint64() & mask // anything
			case 2:
				c = (c - uint64(r.IntN(50))) & mask // redelivery
			case 3:
				c = (c + uint64(r.IntN(5000))) & mask // jump, maybe across a wrap
			default:
				c = (c + 1) & mask
			}
			var g *event.Gap
			st, g, _ = tr.next(st, ok, c, r.IntN(2) == 0)
			ok = true
			if g == nil {
				continue
			}
			if err := g.Validate(); err != nil {
				t.Fatalf("bits %d: %v", bits, err)
			}
			if g.Count != g.To-g.From+1 || g.Count >= mask/2 {
				t.Fatalf("bits %d: gap %+v", bits, *g)
			}
		}
	}
}

// The pre-restart messages of a source, redelivered after its restart was
// committed, do not read as a jump.
func TestCounterRedeliveredAcrossRestart(t *testing.T) {
	tr := newCounterTracker(32, 10)
	st, _, _ := tr.next(counterState{}, false, 1000, false)
	st, _, reset := tr.next(st, true, 1, false)
	if !reset {
		t.Fatal("1 after 1000 is not a restart")
	}
	st, _, _ = tr.next(st, true, 2, false)
	st, g, _ := tr.next(st, true, 999, true)
	if g != nil {
		t.Fatalf("redelivered 999 after the restart: gap %+v", *g)
	}
	if _, g, _ = tr.next(st, true, 3, false); g != nil {
		t.Fatalf("3 after 2: gap %+v", *g)
	}
	if _, g, _ = tr.next(st, true, 999, false); g == nil { // not DUP: a real jump
		t.Fatal("999 (not DUP) after 2: no gap")
	}
}

// State advances only on commit: the same message in two batches, the first
// never committed, gives the gap once per batch, and once committed, never.
func TestCounterTxnOnlyCommitted(t *testing.T) {
	u := &deviceCounters{trackers: []*counterTracker{newCounterTracker(32, 10)}}
	d := &Ingest{log: testLogger()}
	tx := &counterTxn{dc: u}
	tx.observe(0, "dev", 10, false)
	tx.commit(d)
	lost := &counterTxn{dc: u}
	if g := lost.observe(0, "dev", 20, false); g == nil || g.Count != 9 {
		t.Fatalf("first try: gap %v", g)
	}
	// lost is never committed (ctx ended); the broker redelivers 20.
	again := &counterTxn{dc: u}
	if g := again.observe(0, "dev", 20, true); g == nil || g.From != 11 || g.To != 19 {
		t.Fatalf("redelivery of the uncommitted batch: gap %v", g)
	}
	again.commit(d)
	ackLost := &counterTxn{dc: u}
	if g := ackLost.observe(0, "dev", 20, true); g != nil {
		t.Fatalf("redelivery of a committed message: gap %+v", *g)
	}
	// Within one batch, messages chain.
	b := &counterTxn{dc: u}
	for _, c := range []uint64{21, 22, 25} {
		g := b.observe(0, "dev", c, false)
		if (g != nil) != (c == 25) {
			t.Fatalf("counter %d: gap %v", c, g)
		}
	}
}

func TestCounterTrackerBound(t *testing.T) {
	const limit = 64
	u := &deviceCounters{trackers: []*counterTracker{newCounterTracker(32, limit)}}
	d := &Ingest{log: testLogger()}
	for i := range 10 * limit {
		tx := &counterTxn{dc: u}
		tx.observe(0, fmt.Sprintf("dev%d", i), 1, false)
		tx.observe(0, "busy", uint64(i+1), false) // seen every time: never evicted
		tx.commit(d)
		if n := len(u.trackers[0].state); n > limit {
			t.Fatalf("%d sources tracked, limit %d", n, limit)
		}
	}
	if u.trackers[0].state["busy"] == nil {
		t.Fatal("the most recently seen source was evicted")
	}
	if u.trackers[0].state[fmt.Sprintf("dev%d", 10*limit-1)] == nil {
		t.Fatal("the newest source is not tracked")
	}
	// A forgotten source starts again from a baseline: no gap.
	tx := &counterTxn{dc: u}
	if g := tx.observe(0, "dev0", 100, false); g != nil {
		t.Fatalf("evicted source: gap %+v", *g)
	}
}

func TestReadCounter(t *testing.T) {
	js := func(p string) counterConfig { return counterConfig{path: p, format: FormatJSON, bits: 32} }
	cb, _ := cbor.Marshal(map[string]any{"meta": map[string]any{"seq": uint64(77)}})
	cases := []struct {
		payload string
		c       counterConfig
		want    uint64
		ok      bool
	}{
		{`{"seq":5}`, js("seq"), 5, true},
		{`{"seq":"6"}`, js("seq"), 6, true},
		{`{"m":{"seq":7}}`, js("m.seq"), 7, true},
		{`{"seq":-1}`, js("seq"), 0, false},
		{`{"seq":1.5}`, js("seq"), 0, false},
		{`{"seq":4294967296}`, js("seq"), 0, false},
		{`{"seq":65536}`, counterConfig{path: "seq", format: FormatJSON, bits: 16}, 0, false},
		{`{"other":1}`, js("seq"), 0, false},
		{`not json`, js("seq"), 0, false},
		{string(cb), counterConfig{path: "meta.seq", format: FormatCBOR, bits: 64}, 77, true},
	}
	for _, c := range cases {
		got, ok := c.c.read([]byte(c.payload))
		if got != c.want || ok != c.ok {
			t.Errorf("read(%q, %s) = %d, %v; want %d, %v", c.payload, c.c.path, got, ok, c.want, c.ok)
		}
	}
}

func TestCounterValidate(t *testing.T) {
	for _, c := range []struct {
		path string
		f    func(*Config)
	}{
		{"subscriptions[0].fields.counter_bits", func(c *Config) { c.Subscriptions[0].Fields = FieldMap{Counter: "seq", CounterBits: 8} }},
		{"subscriptions[0].fields.counter_bits", func(c *Config) { c.Subscriptions[0].Fields = FieldMap{CounterBits: 16} }},
		{"subscriptions[0].fields.counter", func(c *Config) { c.Subscriptions[0].Fields = FieldMap{Counter: "a..b"} }},
		{"subscriptions[0].fields.counter", func(c *Config) {
			c.Subscriptions[0].Format = FormatText
			c.Subscriptions[0].Fields = FieldMap{Counter: "seq"}
		}},
		{"subscriptions[0].fields.attrs", func(c *Config) { c.Subscriptions[0].Fields = FieldMap{Counter: "seq", Attrs: []string{"counter"}} }},
	} {
		cfg := fakeConfig()
		c.f(cfg)
		err := cfg.Validate()
		if err == nil || !containsPath(err, c.path) {
			t.Errorf("%s: Validate = %v", c.path, err)
		}
	}
	cfg := fakeConfig()
	cfg.Subscriptions[0].Fields = FieldMap{Counter: "meta.seq", CounterBits: 16}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func containsPath(err error, path string) bool {
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		if ce, ok := e.(*units.FieldError); ok && ce.Path == path {
			return true
		}
	}
	return false
}

// startFakeRuns is a driver over fake clients whose Run the test starts
// (each Run sends its client on the channel).
func startFakeRuns(t *testing.T, cfg *Config) (*testDriver, chan *fakeClient) {
	t.Helper()
	d := newTestDriver(t, cfg, Options{})
	return d, d.clients
}

func counterPayload(bc string, n uint64) []byte {
	return fmt.Appendf(nil, `{"barcode":%q,"n":%d}`, bc, n)
}

// Through the driver: the gap event precedes its event in the same batch,
// carries the event's source and stream; a batch whose commit never
// completes is redelivered and reports the gap once; a redelivery after
// the commit reports nothing.
func TestCounterGapsInPipeline(t *testing.T) {
	cfg := fakeConfig()
	cfg.AckWindow = 0
	cfg.Subscriptions[0].Fields.Counter = "n"
	var mu sync.Mutex
	block := false // Emit blocks until ctx ends
	entered := make(chan struct{})
	sink := &memSink{Hook: func(ctx context.Context, _ int, evs []*event.Event) error {
		mu.Lock()
		b := block
		mu.Unlock()
		if b {
			if len(evs) != 2 || evs[0].Kind != event.KindGap {
				t.Errorf("blocked batch: %d events", len(evs))
			}
			close(entered)
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}}
	d, clients := startFakeRuns(t, cfg)
	run := func() (*fakeClient, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx, sink) }()
		fc := <-clients
		stop := sync.OnceFunc(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v", err)
			}
		})
		t.Cleanup(stop)
		return fc, stop
	}
	fc, stop := run()
	for i := uint64(1); i <= 3; i++ {
		fc.deliver("s/a", counterPayload(fmt.Sprint("A", i), i), 1)
	}
	testenv.Eventually(t, 5*time.Second, "3 acked", func() bool { return len(fc.acked()) == 3 })
	mu.Lock()
	block = true
	mu.Unlock()
	fc.deliver("s/a", counterPayload("A7", 7), 1) // 4..6 lost
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the batch with 7 did not reach Emit")
	}
	stop() // Emit never returned: nothing acked, the broker redelivers
	if a := fc.acked(); len(a) != 3 {
		t.Fatalf("acked %v", a)
	}
	mu.Lock()
	block = false
	mu.Unlock()
	fc, stop = run()
	fc.deliver("s/a", counterPayload("A7", 7), 1) // redelivered
	testenv.Eventually(t, 5*time.Second, "7 acked", func() bool { return len(fc.acked()) == 1 })
	fc.inlet.Deliver(Message{Topic: "s/a", Payload: counterPayload("A7", 7), QoS: 1, Dup: true, Ack: func() {}}) // its ack was lost: again
	fc.deliver("s/a", counterPayload("A8", 8), 1)
	testenv.Eventually(t, 5*time.Second, "8 acked", func() bool { return len(fc.acked()) == 2 })
	stop()
	evs, _, _ := sink.Snapshot()
	var got []string
	for _, e := range evs {
		if e.Kind == event.KindGap {
			g, err := event.GapOf(e)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("gap %s %s %d-%d/%d %s", e.Stream, e.Source, g.From, g.To, g.Count, g.Reason))
			continue
		}
		got = append(got, fmt.Sprintf("%v %v", e.Attrs["barcode"], e.Attrs["counter"]))
	}
	want := []string{"A1 1", "A2 2", "A3 3", "gap scans a 4-6/3 device-counter", "A7 7", "A7 7", "A8 8"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events\n%q\nwant\n%q", got, want)
	}
	if st := d.Stats(); st.DeviceGaps != 1 || st.DeviceLost != 3 {
		t.Fatalf("stats: %d gaps, %d lost", st.DeviceGaps, st.DeviceLost)
	}
}

// The counter is read while parsing, from the payload parse decodes, also
// for a message that is quarantined (it is not lost); a payload the strict
// decoder refuses, or too large for its subscription, is read leniently.
func TestCounterReadWhileParsing(t *testing.T) {
	s := mustSub(t, Subscription{Topic: "s/+dev", Kind: "scan", Source: "{dev}", Fields: FieldMap{Counter: "n"}})
	for _, c := range []struct {
		payload string
		reason  string // "" an event
		want    uint64
		ok      bool
	}{
		{`{"barcode":"A","n":5}`, "", 5, true},
		{`{"n":6}`, ReasonMissingField, 6, true},
		{`{"barcode":"A","n":7,"n":7}`, ReasonMalformed, 7, true},
		{`{"barcode":"A","n":8} {}`, ReasonMalformed, 8, true},
		{`[1]`, ReasonNotObject, 0, false},
		{`{"barcode":"A"}`, "", 0, false},
	} {
		r := s.parseMsg("s/a", "a", map[string]string{"dev": "a"}, []byte(c.payload), recv, DeviceTimeConfig{})
		reason := ""
		if r.bad != nil {
			reason = r.bad.reason
		}
		if reason != c.reason || r.counter != c.want || r.hasCounter != c.ok {
			t.Errorf("%s: reason %q counter %d %v; want %q %d %v", c.payload, reason, r.counter, r.hasCounter, c.reason, c.want, c.ok)
		}
		if r.ev != nil && c.ok && r.ev.Attrs["counter"] != int64(c.want) {
			t.Errorf("%s: attrs[counter] = %v", c.payload, r.ev.Attrs["counter"])
		}
	}
	// Through the Ingest: the pending item carries the subscription and
	// source, and the counter of a payload over the subscription's limit.
	cfg := NewConfig()
	cfg.Subscriptions = []Subscription{
		{Topic: "x/y", Kind: "scan"},
		{Topic: "s/+dev", Kind: "scan", Source: "{dev}", Fields: FieldMap{Counter: "n"}, MaxPayload: 16},
	}
	in := newTestDriver(t, cfg, Options{}).Ingest
	p := in.parse(&item{msg: Message{Topic: "s/b", Payload: []byte(`{"barcode":"long enough","n":9}`)}, recv: recv})
	if p.bad == nil || p.bad.reason != ReasonOversize || p.sub != 1 || p.source != "b" || !p.hasCounter || p.counter != 9 {
		t.Fatalf("oversize for its subscription: %+v", p)
	}
	if p := in.parse(&item{msg: Message{Topic: "z", Payload: []byte(`{}`)}, recv: recv}); p.sub != -1 {
		t.Fatalf("unsubscribed: sub %d", p.sub)
	}
}
