package i2c

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/bmxx80"

	"github.com/edgegw/gateway/drivers"
	iclock "github.com/edgegw/gateway/drivers/internal/clock"
	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/internal/backoff"
	"github.com/edgegw/gateway/internal/loglimit"
)

func init() {
	drivers.RegisterConfig("i2c", NewConfig, func(c *Config, env drivers.Env) (drivers.Driver, error) { return New(c, env) })
}

const (
	retryMin   = 500 * time.Millisecond // first retry after a failed read
	retryMax   = 30 * time.Second       // retries back off to max(interval, this)
	backoffMin = 100 * time.Millisecond // Emit retries
	backoffMax = 5 * time.Second
	pendingMax = 64 // readings held while the sink refuses them
)

// Driver polls one BME280/BMP280.
type Driver struct {
	cfg   Config
	log   *slog.Logger
	clock iclock.Clock
	open  openBus
	limit *loglimit.Limiter[string]

	running atomic.Bool
	stats   counters
}

var _ drivers.Driver = (*Driver)(nil)

// New returns a driver for cfg. It opens nothing: Run does.
func New(cfg *Config, env drivers.Env) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Driver{cfg: *cfg, log: log, clock: iclock.Real{}, open: openHostBus, limit: loglimit.New[string](time.Minute, 0)}
	if cfg.Simulate {
		d.open = simBus(cfg)
	}
	return d, nil
}

// sensor is a bus and the bmxx80 device on it.
type sensor struct {
	bus i2c.BusCloser
	dev *bmxx80.Dev
}

func (s *sensor) close() {
	_ = s.dev.Halt()
	_ = s.bus.Close()
}

// connect opens the bus and initialises the sensor (chip ID, calibration,
// configuration), checking that it is the configured kind.
func (d *Driver) connect() (*sensor, error) {
	bus, err := d.open(d.cfg.Bus)
	if err != nil {
		return nil, err
	}
	opts := d.cfg.opts()
	dev, err := bmxx80.NewI2C(bus, d.cfg.Address, &opts)
	if err != nil {
		_ = bus.Close()
		return nil, fmt.Errorf("i2c: %s at %#x on bus %q: %w", d.cfg.Sensor, d.cfg.Address, d.cfg.Bus, err)
	}
	chip, _, _ := strings.Cut(dev.String(), "{")
	if !strings.EqualFold(chip, d.cfg.Sensor) {
		_ = dev.Halt()
		_ = bus.Close()
		return nil, fmt.Errorf("i2c: the sensor at %#x on bus %q is a %s, not a %s", d.cfg.Address, d.cfg.Bus, chip, d.cfg.Sensor)
	}
	return &sensor{bus: bus, dev: dev}, nil
}

// Run opens the bus and the sensor, then reads it every interval until ctx
// ends; it returns nil then. It returns an error when the bus or the sensor
// cannot be had at the start (a *BusNotFoundError when the host has no such
// bus), without retrying: the gateway decides. Later failures are retried:
// a failed read is counted, logged (at most once a minute) and retried with
// backoff, and after ReopenAfter failures in a row the bus is reopened.
func (d *Driver) Run(ctx context.Context, sink drivers.Sink) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("i2c: Run called while running")
	}
	defer d.running.Store(false)
	s, err := d.connect()
	if err != nil {
		return err
	}
	d.log.Info("i2c started", "sensor", d.cfg.Sensor, "bus", d.cfg.Bus, "address", fmt.Sprintf("%#x", d.cfg.Address),
		"interval", d.cfg.Interval, "simulate", d.cfg.Simulate)
	p := &poller{d: d, s: s, sink: sink,
		retry: backoff.Backoff{Min: retryMin, Max: max(d.cfg.Interval.D(), retryMax)},
		emits: backoff.Backoff{Min: backoffMin, Max: backoffMax}}
	defer func() {
		if p.s != nil {
			p.s.close()
		}
		if n := len(p.pending); n > 0 {
			d.stats.unsent.Add(int64(n))
			d.log.Warn("stopped with readings the sink had not committed", "events", n)
		}
	}()
	p.run(ctx)
	return nil
}

// poller is the state of one Run's loop.
type poller struct {
	d        *Driver
	s        *sensor // nil while the bus is closed
	sink     drivers.Sink
	failures int             // consecutive failed reads
	retry    backoff.Backoff // of reads: from retryMin, doubling, up to max(interval, retryMax)
	retryIn  time.Duration   // the wait before the next read, after a failure
	pending  []*event.Event
	lost     int64           // readings dropped since the last one queued
	emits    backoff.Backoff // of Emit retries
}

func (p *poller) run(ctx context.Context) {
	d := p.d
	start := d.clock.Now()
	pollAt, emitAt := start, time.Time{}
	for {
		next := pollAt
		if len(p.pending) > 0 && emitAt.Before(next) {
			next = emitAt
		}
		select {
		case <-ctx.Done():
			return
		case <-d.clock.At(next):
		}
		now := d.clock.Now()
		if !now.Before(pollAt) {
			if p.read(now) {
				pollAt = iclock.NextTick(start, d.cfg.Interval.D(), now)
			} else {
				pollAt = now.Add(p.retryIn)
			}
		}
		if len(p.pending) > 0 && !now.Before(emitAt) {
			emitAt = p.emit(ctx)
		}
	}
}

// read takes one reading and queues its events; false if it failed.
func (p *poller) read(now time.Time) bool {
	d := p.d
	var err error
	if p.s == nil {
		if p.s, err = d.connect(); err != nil {
			p.fail("reopen", err, now)
			return false
		}
		d.log.Info("bus reopened", "bus", d.cfg.Bus)
	}
	var env physic.Env
	if err = p.s.dev.Sense(&env); err != nil {
		p.fail("read", err, now)
		if p.failures >= d.cfg.ReopenAfter && p.failures%d.cfg.ReopenAfter == 0 {
			p.s.close()
			p.s = nil
			d.stats.reopens.Add(1)
		}
		return false
	}
	p.failures = 0
	p.retry.Reset()
	d.stats.reads.Add(1)
	p.queue(d.readings(&env, d.clock.Now()))
	return true
}

func (p *poller) fail(what string, err error, now time.Time) {
	p.failures++
	p.retryIn = p.retry.Next()
	p.d.stats.readErrors.Add(1)
	if ok, held := p.d.limit.Allow(what, now); ok {
		p.d.log.Warn("sensor "+what+" failed; retrying", "err", err, "failures_in_a_row", p.failures,
			"retry_in", p.retryIn, loglimit.Held(held))
	}
}

// queue adds readings to the pending ones, dropping the oldest past
// pendingMax; the next queued reading carries the number dropped.
func (p *poller) queue(evs []*event.Event) {
	if p.lost > 0 && len(evs) > 0 {
		evs[0].Attrs["dropped"] = p.lost
		p.lost = 0
	}
	p.pending = append(p.pending, evs...)
	if over := len(p.pending) - pendingMax; over > 0 {
		p.pending = append(p.pending[:0], p.pending[over:]...)
		p.lost += int64(over)
		p.d.stats.dropped.Add(int64(over))
		if ok, held := p.d.limit.Allow("dropped", p.d.clock.Now()); ok {
			p.d.log.Error("sink refuses readings for long; dropping the oldest", "dropped", over, loglimit.Held(held))
		}
	}
}

// emit hands the pending readings to the sink; on failure it returns when to
// try again.
func (p *poller) emit(ctx context.Context) time.Time {
	d := p.d
	err := p.sink.Emit(ctx, p.pending)
	if err == nil {
		d.stats.emitted.Add(int64(len(p.pending)))
		p.pending = nil
		p.emits.Reset()
		return time.Time{}
	}
	if ctx.Err() != nil {
		return time.Time{}
	}
	d.stats.emitRetries.Add(1)
	wait := p.emits.Next()
	if ok, held := d.limit.Allow("emit", d.clock.Now()); ok {
		msg := "sink refused readings; retrying"
		if errors.Is(err, drivers.ErrFull) {
			msg = "stream full; holding readings and retrying"
		}
		d.log.Warn(msg, "err", err, "pending", len(p.pending), "retry_in", wait, loglimit.Held(held))
	}
	return d.clock.Now().Add(wait)
}

// Stats are the driver's counters since New.
type Stats struct {
	Reads       int64 // successful readings
	ReadErrors  int64 // failed reads (and failed reopens), each retried
	Reopens     int64 // times the bus was closed to be reopened
	Emitted     int64 // events the sink committed
	EmitRetries int64 // failed Emit calls, each retried after a backoff
	Dropped     int64 // events dropped because too many were pending
	Unsent      int64 // events pending when a run ended
}

type counters struct {
	reads, readErrors, reopens, emitted, emitRetries, dropped, unsent atomic.Int64
}

// Stats returns the counters.
func (d *Driver) Stats() Stats {
	c := &d.stats
	return Stats{
		Reads: c.reads.Load(), ReadErrors: c.readErrors.Load(), Reopens: c.reopens.Load(),
		Emitted: c.emitted.Load(), EmitRetries: c.emitRetries.Load(), Dropped: c.dropped.Load(),
		Unsent: c.unsent.Load(),
	}
}
