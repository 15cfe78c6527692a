package gpio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/edgegw/gateway/drivers"
	iclock "github.com/edgegw/gateway/drivers/internal/clock"
	"github.com/edgegw/gateway/internal/loglimit"
)

func init() {
	drivers.RegisterConfig("gpio", NewConfig, func(c *Config, env drivers.Env) (drivers.Driver, error) { return New(c, env) })
}

// Driver watches the input pins and drives the output pins of one source.
type Driver struct {
	cfg   Config
	log   *slog.Logger
	clock iclock.Clock
	open  openBoard
	// waitTimeout bounds each WaitForEdge, so that a cancelled run ends
	// within it on hardware that ignores Halt.
	waitTimeout time.Duration
	evalEvery   time.Duration // outputs are re-evaluated this often
	queueMax    int
	limit       *loglimit.Limiter[string]

	running atomic.Bool
	stats   counters

	mu      sync.Mutex
	state   State
	known   bool
	stateCh chan struct{}      // cap 1: SetState was called
	cmds    map[string]command // by output name: the last DriveOutput
	cmdCh   chan struct{}      // cap 1: DriveOutput was called
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
	d := &Driver{
		cfg:         *cfg,
		log:         log,
		clock:       iclock.Real{},
		open:        openHost,
		waitTimeout: 500 * time.Millisecond,
		evalEvery:   time.Second,
		queueMax:    queueMax,
		limit:       loglimit.New[string](time.Minute, 0),
		stateCh:     make(chan struct{}, 1),
		cmdCh:       make(chan struct{}, 1),
	}
	if cfg.Simulate {
		d.open = openSim
	}
	return d, nil
}

// Run opens the pins, then watches and drives them until ctx ends; it
// returns nil then. It returns an error when a pin cannot be had (a
// *PinNotFoundError when the host has no such pin), without retrying: the
// gateway decides. Events that the sink has not committed when ctx ends are
// counted in Stats.Unsent. Run is not to be called twice at once.
func (d *Driver) Run(ctx context.Context, sink drivers.Sink) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("gpio: Run called while running")
	}
	defer d.running.Store(false)

	b, err := d.open()
	if err != nil {
		return err
	}
	ins, outs, err := d.setup(b)
	if err != nil {
		return err
	}
	d.log.Info("gpio started", "inputs", len(ins), "outputs", len(outs), "simulate", d.cfg.Simulate)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	q := newQueue(d.queueMax)
	var wg sync.WaitGroup
	start := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	start(func() { d.emitter(ctx, q, sink) })
	for _, in := range ins {
		start(func() { d.logic(ctx, in, q) })
		if in.phys == gpio.NoEdge {
			d.log.Warn("pin has no edge detection; polling it", "pin", in.cfg.Pin, "every", in.cfg.poll(), "err", in.edgeErr)
			start(func() { d.poller(ctx, in) })
		} else {
			start(func() { d.pump(ctx, in) })
		}
	}
	if len(outs) > 0 {
		start(func() { d.outputs(ctx, outs) })
	}
	if d.cfg.Simulate {
		start(func() { d.simulate(ctx, ins) })
	}

	<-ctx.Done()
	for _, in := range ins {
		_ = in.pin.Halt() // interrupts WaitForEdge where the host supports it
	}
	wg.Wait()
	d.teardown(ins, outs)
	if n := q.len(); n > 0 {
		d.stats.unsent.Add(int64(n))
		d.log.Warn("stopped with events the sink had not committed", "events", n)
	}
	return nil
}

// setup resolves and configures every pin; on error it leaves what it
// configured as it found it as far as it can.
func (d *Driver) setup(b board) ([]*inputRun, []*outputRun, error) {
	var ins []*inputRun
	var outs []*outputRun
	used := map[string]string{} // pinID -> config path
	get := func(path, name string) (pinIO, error) {
		p, err := b.pin(name)
		if err != nil {
			return nil, err
		}
		id := pinID(p)
		if prev, dup := used[id]; dup {
			return nil, fmt.Errorf("gpio: %s.pin %q is the same pin (%s) as %s.pin", path, name, id, prev)
		}
		used[id] = path
		return p, nil
	}
	for i, c := range d.cfg.Inputs {
		path := fmt.Sprintf("inputs[%d]", i)
		p, err := get(path, c.Pin)
		if err == nil {
			in := &inputRun{cfg: c, path: path, pin: p}
			if err = in.setup(); err == nil {
				ins = append(ins, in)
				continue
			}
		}
		d.teardown(ins, outs)
		return nil, nil, err
	}
	for i, c := range d.cfg.Outputs {
		path := fmt.Sprintf("outputs[%d]", i)
		p, err := get(path, c.Pin)
		if err == nil {
			o := &outputRun{cfg: c, pin: p}
			if err = p.Out(o.level(false)); err == nil {
				outs = append(outs, o)
				continue
			}
			err = fmt.Errorf("gpio: %s: pin %s as output: %w", path, c.Pin, err)
		}
		d.teardown(ins, outs)
		return nil, nil, err
	}
	return ins, outs, nil
}

// teardown turns edge detection off and the outputs off.
func (d *Driver) teardown(ins []*inputRun, outs []*outputRun) {
	for _, in := range ins {
		_ = in.pin.In(pulls[in.cfg.Pull], gpio.NoEdge)
	}
	for _, o := range outs {
		if err := o.pin.Out(o.level(false)); err != nil {
			d.log.Warn("cannot turn output off", "output", o.cfg.name(), "pin", o.cfg.Pin, "err", err)
		}
	}
}

// Stats are the driver's counters since New.
type Stats struct {
	Edges        int64 // accepted edges, all inputs
	Bounces      int64 // edges ignored inside a debounce window
	Glitches     int64 // edges after which the level had not changed (edge: both)
	Emitted      int64 // events the sink committed
	EmitRetries  int64 // failed Emit calls, each retried after a backoff
	Dropped      int64 // events dropped because the queue (4096) was full
	Unsent       int64 // events still queued when a run ended
	OutputErrors int64 // failed writes to an output pin (retried)
}

type counters struct {
	edges, bounces, glitches, emitted, emitRetries, dropped, unsent, outputErrors atomic.Int64
}

// Stats returns the counters.
func (d *Driver) Stats() Stats {
	c := &d.stats
	return Stats{
		Edges: c.edges.Load(), Bounces: c.bounces.Load(), Glitches: c.glitches.Load(),
		Emitted: c.emitted.Load(), EmitRetries: c.emitRetries.Load(), Dropped: c.dropped.Load(),
		Unsent: c.unsent.Load(), OutputErrors: c.outputErrors.Load(),
	}
}
