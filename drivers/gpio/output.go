package gpio

import (
	"context"
	"log/slog"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/edgegw/gateway/drivers"
	iclock "github.com/edgegw/gateway/drivers/internal/clock"
	"github.com/edgegw/gateway/internal/loglimit"
)

// State is what the outputs follow: the gateway's view of itself.
type State = drivers.State

// SetState gives the driver the gateway's current state. Outputs are
// evaluated at once and then every second (so that "offline for 5m" turns on
// without a new call). Call it whenever the state changes; it never blocks
// and is safe from any goroutine, before, during and between runs. Until the
// first call every output is off.
func (d *Driver) SetState(s State) {
	d.mu.Lock()
	d.state, d.known = s, true
	d.mu.Unlock()
	select {
	case d.stateCh <- struct{}{}:
	default:
	}
}

func (d *Driver) currentState() (State, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state, d.known
}

// outputRun is one output during one Run.
type outputRun struct {
	cfg  Output
	pin  pinIO
	on   bool
	seen time.Time // when the signal was first seen holding; zero: not holding
}

func (o *outputRun) level(on bool) gpio.Level { return gpio.Level(on != o.cfg.ActiveLow) }

// evaluate reports whether an output with rule r is on at now. seen is when
// the driver first saw the signal hold in its current stretch; it is
// updated.
func evaluate(r Rule, s State, known bool, now time.Time, seen *time.Time) bool {
	var holds bool
	var since time.Time
	switch r.Signal {
	case SignalUplinkOffline:
		holds, since = known && !s.UplinkOnline, s.UplinkOfflineSince
	case SignalBufferAbove:
		holds = known && s.BufferFill > r.Threshold
	}
	if !holds {
		*seen = time.Time{}
		return false
	}
	if seen.IsZero() {
		*seen = now
	}
	if since.IsZero() {
		since = *seen
	}
	return now.Sub(since) >= r.After.D()
}

// outputs drives the output pins from the state, on every SetState and
// every evalEvery, and the outputs with signal rules from their commands,
// on every DriveOutput and when a pulse ends or a blink turns.
func (d *Driver) outputs(ctx context.Context, outs []*outputRun) {
	start := d.clock.Now()
	tick := d.clock.At(start.Add(d.evalEvery))
	for {
		s, known := d.currentState()
		now := d.clock.Now()
		var next time.Time // the next turn of a commanded output
		for _, o := range outs {
			if o.cfg.When.Signal == SignalRules {
				c, ok := d.command(o.cfg.name())
				on, at := commanded(c, ok, now)
				level := slog.LevelInfo
				if c.cmd.Mode == drivers.OutputBlink {
					level = slog.LevelDebug
				}
				d.drive(ctx, o, on, level)
				if !at.IsZero() && (next.IsZero() || at.Before(next)) {
					next = at
				}
				continue
			}
			d.drive(ctx, o, evaluate(o.cfg.When, s, known, now, &o.seen), slog.LevelInfo)
		}
		var turn <-chan time.Time
		if !next.IsZero() {
			turn = d.clock.At(next)
		}
		select {
		case <-ctx.Done():
			return
		case <-d.stateCh:
		case <-d.cmdCh:
		case <-turn:
		case <-tick:
			tick = d.clock.At(iclock.NextTick(start, d.evalEvery, d.clock.Now()))
		}
	}
}

// drive switches o, logging a switch at level (a blink's turns at debug: a
// log line per turn would wear the SD card).
func (d *Driver) drive(ctx context.Context, o *outputRun, on bool, level slog.Level) {
	if on == o.on {
		return
	}
	if err := o.pin.Out(o.level(on)); err != nil {
		d.stats.outputErrors.Add(1)
		if ok, held := d.limit.Allow("out:"+o.cfg.Pin, d.clock.Now()); ok {
			d.log.Error("cannot drive output; will retry", "output", o.cfg.name(), "pin", o.cfg.Pin, "err", err, loglimit.Held(held))
		}
		return
	}
	o.on = on
	d.log.Log(ctx, level, "output switched", "output", o.cfg.name(), "pin", o.cfg.Pin, "on", on, "signal", o.cfg.When.Signal)
}
