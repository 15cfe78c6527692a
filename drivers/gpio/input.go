package gpio

import (
	"context"
	"fmt"
	"time"

	"periph.io/x/conn/v3/gpio"

	iclock "github.com/edgegw/gateway/drivers/internal/clock"
	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/internal/loglimit"
)

// sample is the logical level of an input seen at t.
type sample struct {
	t     time.Time
	level bool
}

// inputRun is one input during one Run.
type inputRun struct {
	cfg     Input
	path    string // "inputs[1]", for logs
	pin     pinIO
	phys    gpio.Edge // what the hardware was asked for; NoEdge: polling
	edgeErr error     // why edge detection is not used
	initial gpio.Level
	deb     debouncer
	samples chan sample // pump/poller -> logic; unbuffered
	lost    int64       // events dropped since the last one queued
}

func (in *inputRun) logical(l gpio.Level) bool { return bool(l) != in.cfg.ActiveLow }

// setup configures the pin: edge detection if the pin has it, else
// sampling every Poll.
func (in *inputRun) setup() error {
	pull := pulls[in.cfg.Pull]
	mode := edgeModes[in.cfg.Edge]
	in.phys = mode.physical(in.cfg.ActiveLow)
	if err := in.pin.In(pull, in.phys); err != nil {
		in.phys, in.edgeErr = gpio.NoEdge, err
		if err2 := in.pin.In(pull, gpio.NoEdge); err2 != nil {
			return fmt.Errorf("gpio: %s: pin %s as input: %w (with edge detection: %v)", in.path, in.cfg.Pin, err2, err)
		}
	}
	in.initial = in.pin.Read()
	in.deb = debouncer{mode: mode, window: in.cfg.debounce(), level: in.logical(in.initial)}
	in.samples = make(chan sample)
	return nil
}

// pump waits for the hardware's edges and timestamps them. A single-edge
// mode's level is the one the edge leads to (the pin may already have
// moved on when it is read); mode both reads it.
func (d *Driver) pump(ctx context.Context, in *inputRun) {
	for ctx.Err() == nil {
		if !in.pin.WaitForEdge(d.waitTimeout) {
			continue
		}
		t := d.clock.Now()
		var l gpio.Level
		switch in.phys {
		case gpio.RisingEdge:
			l = gpio.High
		case gpio.FallingEdge:
			l = gpio.Low
		default:
			l = in.pin.Read()
		}
		select {
		case in.samples <- sample{t: t, level: in.logical(l)}:
		case <-ctx.Done():
			return
		}
	}
}

// poller samples a pin without edge detection and reports level changes.
func (d *Driver) poller(ctx context.Context, in *inputRun) {
	prev := in.initial
	period := in.cfg.poll()
	start := d.clock.Now()
	next := start.Add(period)
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.clock.At(next):
		}
		t := d.clock.Now()
		next = iclock.NextTick(start, period, t)
		l := in.pin.Read()
		if l == prev {
			continue
		}
		prev = l
		select {
		case in.samples <- sample{t: t, level: in.logical(l)}:
		case <-ctx.Done():
			return
		}
	}
}

// logic debounces an input's samples, counts pulses and queues events.
func (d *Driver) logic(ctx context.Context, in *inputRun, q *queue) {
	var (
		settleC  <-chan time.Time
		settleAt time.Time
		countC   <-chan time.Time
		count    int64
	)
	interval := in.cfg.countInterval()
	start := d.clock.Now()
	prevEnd, countAt := start, start.Add(interval)
	if interval > 0 {
		countC = d.clock.At(countAt)
	}
	accept := func(tr transition) {
		d.stats.edges.Add(1)
		count++
		if !in.cfg.CountOnly {
			d.queue(q, in, d.edgeEvent(in, tr))
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-in.samples:
			tr, v := in.deb.edge(s.t, s.level)
			switch v {
			case accepted:
				accept(tr)
			case bounce:
				d.stats.bounces.Add(1)
			case glitch:
				d.stats.glitches.Add(1)
			}
		case <-settleC:
			settleC = nil
			if tr, ok := in.deb.settle(d.clock.Now(), in.logical(in.pin.Read())); ok {
				accept(tr)
			}
		case <-countC:
			d.queue(q, in, d.countEvent(in, count, prevEnd, countAt))
			count = 0
			prevEnd = countAt
			countAt = iclock.NextTick(start, interval, d.clock.Now())
			countC = d.clock.At(countAt)
		}
		if at, ok := in.deb.settleAt(); ok {
			if settleC == nil || !at.Equal(settleAt) {
				settleAt, settleC = at, d.clock.At(at)
			}
		} else {
			settleC = nil
		}
	}
}

func (d *Driver) edgeEvent(in *inputRun, tr transition) *event.Event {
	attrs := map[string]any{
		"pin":   in.cfg.Pin,
		"level": tr.level,
		"edge":  edgeName(tr.level),
	}
	if !tr.prev.IsZero() {
		attrs["since_prev_ms"] = tr.t.Sub(tr.prev).Milliseconds()
	}
	return &event.Event{Stream: in.cfg.stream(), Source: in.cfg.Source, Kind: event.KindGPIO, Time: tr.t, Attrs: attrs}
}

// countEvent is the pulse-count reading for the interval (from, to].
func (d *Driver) countEvent(in *inputRun, n int64, from, to time.Time) *event.Event {
	secs := to.Sub(from).Seconds()
	return &event.Event{
		Stream: in.cfg.stream(), Source: in.cfg.Source, Kind: event.KindReading, Time: to,
		Attrs: map[string]any{
			"pin":        in.cfg.Pin,
			"metric":     "pulse_count",
			"value":      n,
			"unit":       "{pulses}",
			"count":      n,
			"interval_s": secs,
			"rate_hz":    float64(n) / secs,
		},
	}
}

// queue hands an event to the emitter. A full queue drops it; the count of
// dropped events rides on the input's next queued event as "dropped".
func (d *Driver) queue(q *queue, in *inputRun, e *event.Event) {
	if in.lost > 0 {
		e.Attrs["dropped"] = in.lost
	}
	if !q.push(e) {
		in.lost++
		d.stats.dropped.Add(1)
		if ok, held := d.limit.Allow("dropped", d.clock.Now()); ok {
			d.log.Error("event queue full; dropping events", "source", in.cfg.Source, "pin", in.cfg.Pin, loglimit.Held(held))
		}
		return
	}
	in.lost = 0
}
