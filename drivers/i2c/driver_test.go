package i2c

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/drivers/internal/sinktest"
	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/units"
)

// buses hands out playbacks, one per open, and counts the opens.
type buses struct {
	mu     sync.Mutex
	list   []*i2ctest.Playback
	opened chan string // the bus name of each open
}

func newBuses(pbs ...*i2ctest.Playback) *buses {
	return &buses{list: pbs, opened: make(chan string, 16)}
}

func (b *buses) open(name string) (i2c.BusCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.opened <- name
	if len(b.list) == 0 {
		return nil, errors.New("no more playbacks")
	}
	pb := b.list[0]
	b.list = b.list[1:]
	return pb, nil
}

func playback(ops ...[]i2ctest.IO) *i2ctest.Playback {
	pb := &i2ctest.Playback{DontPanic: true} // a mismatch is an error, not a panic
	for _, o := range ops {
		pb.Ops = append(pb.Ops, o...)
	}
	return pb
}

// consumed checks that the driver made exactly the recorded transactions.
func consumed(t *testing.T, pb *i2ctest.Playback) {
	t.Helper()
	if err := pb.Close(); err != nil {
		t.Error(err)
	}
}

func testConfig() *Config {
	c := NewConfig()
	c.Source, c.Bus = "dock3-climate", "1"
	return c
}

func newTestDriver(t *testing.T, cfg *Config, b *buses, clk *fakeClock) *Driver {
	t.Helper()
	d, err := New(cfg, sinktest.Env(t))
	if err != nil {
		t.Fatal(err)
	}
	d.clock, d.open = clk, b.open
	return d
}

type raw struct{ P, T, H uint32 }

// checkReadings checks one poll's events against the datasheet formulas,
// within what the chip's integer compensation can differ from them: half
// its 0.01 °C step, 0.01 %RH (steps of 1/1024), 0.1 Pa (steps of 1/256 Pa).
func checkReadings(t *testing.T, evs []*event.Event, cfg *Config, at time.Time, r raw, humidity bool) {
	t.Helper()
	tC, pPa, hRH := example.compensate(int32(r.T), int32(r.P), int32(r.H))
	want := []struct {
		metric, unit string
		value, tol   float64
	}{{"temperature", "Cel", tC, 0.006}}
	if humidity {
		want = append(want, struct {
			metric, unit string
			value, tol   float64
		}{"humidity", "%RH", hRH, 0.01})
	}
	want = append(want, struct {
		metric, unit string
		value, tol   float64
	}{"pressure", "hPa", pPa / 100, 0.001})
	if len(evs) != len(want) {
		t.Fatalf("%d events, want %d", len(evs), len(want))
	}
	for i, w := range want {
		e := evs[i]
		if e.Kind != event.KindReading || e.Source != cfg.Source || e.Stream != cfg.Stream || !e.Time.Equal(at) {
			t.Errorf("event %d: %s from %s to %s at t0+%s", i, e.Kind, e.Source, e.Stream, e.Time.Sub(t0))
		}
		v, ok := e.Attrs["value"].(float64)
		if e.Attrs["metric"] != w.metric || e.Attrs["unit"] != w.unit || !ok || e.Attrs["sensor"] != cfg.Sensor {
			t.Fatalf("event %d attrs %v, want metric %s unit %s", i, e.Attrs, w.metric, w.unit)
		}
		if math.Abs(v-w.value) > w.tol {
			t.Errorf("%s = %v %s, datasheet formula gives %.4f", w.metric, v, w.unit, w.value)
		}
		if _, err := event.Normalize(e); err != nil {
			t.Errorf("event does not normalize: %v", err)
		}
	}
}

func nextN(t *testing.T, s *sinktest.Mem, n int) []*event.Event {
	t.Helper()
	var out []*event.Event
	for range n {
		out = append(out, s.Next(t))
	}
	return out
}

// TestReadingsBME280 runs periph's bmxx80 driver on recorded BME280 traffic:
// a reading at start, then one per interval.
func TestReadingsBME280(t *testing.T) {
	cfg := testConfig()
	o := cfg.Oversampling
	polls := []raw{{415148, 519888, 29000}, {414000, 530000, 31000}, {416500, 505000, 26500}}
	pb := playback(initOps(0x76, 0x60, example, o))
	for _, r := range polls {
		pb.Ops = append(pb.Ops, senseOps(0x76, true, o, r.P, r.T, r.H)...)
	}
	b := newBuses(pb)
	clk := newFakeClock(t0)
	d := newTestDriver(t, cfg, b, clk)
	sink := &sinktest.Mem{}
	stop := sinktest.Start(t, d, sink)
	for i, r := range polls {
		at := t0.Add(time.Duration(i) * cfg.Interval.D())
		if i > 0 {
			clk.step(t, at)
		}
		checkReadings(t, nextN(t, sink, 3), cfg, at, r, true)
	}
	stop()
	consumed(t, pb)
	if name := <-b.opened; name != "1" {
		t.Errorf("opened bus %q, want 1", name)
	}
	if s := d.Stats(); s.Reads != 3 || s.ReadErrors != 0 || s.Emitted != 9 {
		t.Errorf("stats %+v", s)
	}
}

// TestReadingsBMP280: no humidity register, no ctrl_hum, two quantities.
func TestReadingsBMP280(t *testing.T) {
	cfg := testConfig()
	cfg.Sensor, cfg.Address, cfg.Interval = SensorBMP280, 0x77, units.Duration(time.Minute)
	o := cfg.Oversampling
	o.Humidity = 0
	r := raw{415148, 519888, 0}
	pb := playback(initOps(0x77, 0x58, example, o), senseOps(0x77, false, o, r.P, r.T, 0))
	clk := newFakeClock(t0)
	d := newTestDriver(t, cfg, newBuses(pb), clk)
	sink := &sinktest.Mem{}
	stop := sinktest.Start(t, d, sink)
	checkReadings(t, nextN(t, sink, 2), cfg, t0, r, false)
	stop()
	consumed(t, pb)
}

// TestOversamplingOptions: the configured oversampling reaches the chip's
// registers, and a quantity turned off is not reported.
func TestOversamplingOptions(t *testing.T) {
	cfg := testConfig()
	cfg.Oversampling = Oversampling{Temperature: 1, Pressure: 0, Humidity: 16}
	r := raw{0, 519888, 29000}
	pb := playback(initOps(0x76, 0x60, example, cfg.Oversampling), senseOps(0x76, true, cfg.Oversampling, r.P, r.T, r.H))
	d := newTestDriver(t, cfg, newBuses(pb), newFakeClock(t0))
	sink := &sinktest.Mem{}
	stop := sinktest.Start(t, d, sink)
	evs := nextN(t, sink, 2)
	if evs[0].Attrs["metric"] != "temperature" || evs[1].Attrs["metric"] != "humidity" {
		t.Fatalf("metrics %v, %v", evs[0].Attrs["metric"], evs[1].Attrs["metric"])
	}
	stop()
	consumed(t, pb)
}

// TestBusError: the bus fails (the playback runs out): each failed read is
// counted and retried with backoff, the bus is reopened after three in a
// row, readings resume, and the loop never waits longer than planned.
func TestBusError(t *testing.T) {
	cfg := testConfig()
	o := cfg.Oversampling
	first := playback(initOps(0x76, 0x60, example, o), senseOps(0x76, true, o, 415148, 519888, 29000))
	r := raw{414000, 530000, 31000}
	second := playback(initOps(0x76, 0x60, example, o), senseOps(0x76, true, o, r.P, r.T, r.H))
	b := newBuses(first, second)
	clk := newFakeClock(t0)
	d := newTestDriver(t, cfg, b, clk)
	sink := &sinktest.Mem{}
	stop := sinktest.Start(t, d, sink)
	nextN(t, sink, 3)

	// Fails at 10s, retried after 0.5s, 1s; then reopened after 2s.
	for _, at := range []time.Duration{10 * time.Second, 10500 * time.Millisecond, 11500 * time.Millisecond} {
		clk.step(t, t0.Add(at))
	}
	clk.step(t, t0.Add(13500*time.Millisecond))
	checkReadings(t, nextN(t, sink, 3), cfg, t0.Add(13500*time.Millisecond), r, true)
	// Back on the interval's grid; that read fails (the playback is spent)
	// and is retried 0.5s later.
	clk.step(t, t0.Add(20*time.Second))
	clk.step(t, t0.Add(20500*time.Millisecond))
	stop()
	sink.None(t)
	if s := d.Stats(); s.Reads != 2 || s.ReadErrors < 4 || s.ReadErrors > 5 || s.Reopens != 1 {
		t.Errorf("stats %+v, want 2 reads, 4 or 5 errors (3, then the spent playback at 20s and maybe 20.5s), 1 reopen", s)
	}
	if n := len(b.opened); n != 2 {
		t.Errorf("%d opens, want 2", n)
	}
	consumed(t, first)
	consumed(t, second)
}

// TestReopenFails: while the bus cannot be opened again, attempts are
// counted and spaced out, and the loop keeps going.
func TestReopenFails(t *testing.T) {
	cfg := testConfig()
	cfg.ReopenAfter = 1
	o := cfg.Oversampling
	b := newBuses(playback(initOps(0x76, 0x60, example, o), senseOps(0x76, true, o, 415148, 519888, 29000)))
	clk := newFakeClock(t0)
	d := newTestDriver(t, cfg, b, clk)
	sink := &sinktest.Mem{}
	sinktest.Start(t, d, sink)
	nextN(t, sink, 3)
	// Read fails at 10s (bus closed), reopen fails at 10.5s, 11.5s, 13.5s, 17.5s...
	for _, at := range []time.Duration{10000, 10500, 11500, 13500, 17500, 25500} {
		clk.step(t, t0.Add(at*time.Millisecond))
	}
	for i := range 6 { // the first open and five reopen attempts
		select {
		case <-b.opened:
		case <-time.After(guard):
			t.Fatalf("%d opens, want 6", i)
		}
	}
	// The next attempt is 16s on (41.5s): the loop is still going.
	clk.step(t, t0.Add(41500*time.Millisecond))
	if s := d.Stats(); s.Reopens != 1 || s.Reads != 1 {
		t.Errorf("stats %+v, want 1 reopen, 1 read", s)
	}
}

// TestEmitRetry: while the sink refuses, readings are held and retried
// with backoff; they keep their time.
func TestEmitRetry(t *testing.T) {
	cfg := testConfig()
	o := cfg.Oversampling
	r := raw{415148, 519888, 29000}
	pb := playback(initOps(0x76, 0x60, example, o), senseOps(0x76, true, o, r.P, r.T, r.H))
	clk := newFakeClock(t0)
	d := newTestDriver(t, cfg, newBuses(pb), clk)
	sink := &sinktest.Mem{}
	sink.Hook = func(_ context.Context, call int, _ []*event.Event) error {
		if call <= 2 {
			return drivers.ErrFull
		}
		return nil
	}
	stop := sinktest.Start(t, d, sink)
	clk.step(t, t0.Add(100*time.Millisecond))
	clk.step(t, t0.Add(300*time.Millisecond))
	checkReadings(t, nextN(t, sink, 3), cfg, t0, r, true)
	stop()
	if s := d.Stats(); s.EmitRetries != 2 || s.Emitted != 3 {
		t.Errorf("stats %+v, want 2 retries, 3 emitted", s)
	}
}

func TestBusNotFound(t *testing.T) {
	d := newTestDriver(t, testConfig(), newBuses(), newFakeClock(t0))
	d.open = func(name string) (i2c.BusCloser, error) {
		return nil, &BusNotFoundError{Bus: name, Known: []string{"/dev/i2c-20 (I2C20)"}}
	}
	err := d.Run(t.Context(), &sinktest.Mem{})
	if err == nil || err.Error() != `i2c: bus "1" not found on this host (known: /dev/i2c-20 (I2C20))` {
		t.Fatalf("Run: %v", err)
	}
}

// TestBusNotFoundOnHost runs periph's host drivers: no bus 7 here.
func TestBusNotFoundOnHost(t *testing.T) {
	cfg := testConfig()
	cfg.Bus = "7"
	d, err := New(cfg, drivers.Env{})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Run(t.Context(), &sinktest.Mem{})
	var nf *BusNotFoundError
	if !errors.As(err, &nf) || nf.Bus != "7" {
		t.Fatalf("Run: %v, want a BusNotFoundError", err)
	}
	t.Log(err)
}

func TestWrongChip(t *testing.T) {
	cfg := testConfig() // bme280
	pb := playback(initOps(0x76, 0x58, example, Oversampling{Temperature: 4, Pressure: 4}))
	d := newTestDriver(t, cfg, newBuses(pb), newFakeClock(t0))
	err := d.Run(t.Context(), &sinktest.Mem{})
	if err == nil || !strings.Contains(err.Error(), "is a BMP280, not a bme280") {
		t.Fatalf("Run: %v", err)
	}
	t.Log(err)
}

func TestNoChip(t *testing.T) {
	pb := playback([]i2ctest.IO{{Addr: 0x76, W: []byte{0xD0}, R: []byte{0x00}}})
	d := newTestDriver(t, testConfig(), newBuses(pb), newFakeClock(t0))
	err := d.Run(t.Context(), &sinktest.Mem{})
	if err == nil || !strings.Contains(err.Error(), "unexpected chip id") {
		t.Fatalf("Run: %v", err)
	}
}

// TestSimulate runs the simulated sensor through periph's bmxx80 driver.
func TestSimulate(t *testing.T) {
	for _, sensor := range []string{SensorBME280, SensorBMP280} {
		t.Run(sensor, func(t *testing.T) {
			cfg := testConfig()
			cfg.Simulate, cfg.Sensor, cfg.Filter = true, sensor, 0
			d, err := New(cfg, sinktest.Env(t))
			if err != nil {
				t.Fatal(err)
			}
			clk := newFakeClock(t0)
			d.clock = clk
			sink := &sinktest.Mem{}
			sinktest.Start(t, d, sink)
			ranges := map[string][2]float64{"temperature": {20, 30}, "humidity": {30, 70}, "pressure": {990, 1020}}
			n := 3
			if sensor == SensorBMP280 {
				n = 2
			}
			for poll := range 2 {
				if poll > 0 {
					clk.step(t, t0.Add(cfg.Interval.D()))
				}
				for _, e := range nextN(t, sink, n) {
					m, _ := e.Attrs["metric"].(string)
					v, _ := e.Attrs["value"].(float64)
					if r := ranges[m]; v < r[0] || v > r[1] {
						t.Errorf("%s = %v, want %v..%v", m, v, r[0], r[1])
					}
				}
			}
		})
	}
}
