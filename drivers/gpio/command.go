package gpio

import (
	"fmt"
	"time"

	"github.com/edgegw/gateway/drivers"
)

// SignalRules marks an output driven by the gateway's rules (DriveOutput)
// rather than by its state.
const SignalRules = "rules"

// command is the last command of an output with signal rules.
type command struct {
	cmd drivers.OutputCommand
	at  time.Time // when it was given
}

var _ drivers.OutputDriver = (*Driver)(nil)

// DriveOutput gives the output named name (its name, or its pin when it has
// none; its signal must be rules) a command that replaces its previous one.
// It never blocks and is safe from any goroutine, before, during and
// between runs; a command given before Run is applied when Run starts.
func (d *Driver) DriveOutput(name string, cmd drivers.OutputCommand) error {
	found := false
	for _, o := range d.cfg.Outputs {
		if o.name() == name && o.When.Signal == SignalRules {
			found = true
			break
		}
	}
	if !found {
		return fmt.Errorf("gpio: no output %q with signal %s", name, SignalRules)
	}
	d.mu.Lock()
	if d.cmds == nil {
		d.cmds = map[string]command{}
	}
	d.cmds[name] = command{cmd: cmd, at: d.clock.Now()}
	d.mu.Unlock()
	if cmd.Mode == drivers.OutputBlink {
		d.log.Info("output blinking", "output", name, "period", cmd.Period, "for", cmd.For)
	}
	select {
	case d.cmdCh <- struct{}{}:
	default:
	}
	return nil
}

func (d *Driver) command(name string) (command, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.cmds[name]
	return c, ok
}

// CommandOutputs names the outputs with signal rules (drivers.OutputNamer).
func (c *Config) CommandOutputs() []string {
	var out []string
	for _, o := range c.Outputs {
		if o.When.Signal == SignalRules {
			out = append(out, o.name())
		}
	}
	return out
}

// commanded reports whether an output under command c (ok: there is one)
// is on at now, and when that next changes (zero: not by itself).
func commanded(c command, ok bool, now time.Time) (on bool, next time.Time) {
	if !ok {
		return false, time.Time{}
	}
	end := time.Time{}
	if c.cmd.For > 0 {
		end = c.at.Add(c.cmd.For)
	}
	switch c.cmd.Mode {
	case drivers.OutputOn:
		return true, time.Time{}
	case drivers.OutputPulse:
		if now.Before(end) {
			return true, end
		}
		return false, time.Time{}
	case drivers.OutputBlink:
		if !end.IsZero() && !now.Before(end) || c.cmd.Period <= 0 {
			return false, time.Time{}
		}
		k := now.Sub(c.at) / c.cmd.Period
		next = c.at.Add((k + 1) * c.cmd.Period)
		if !end.IsZero() && next.After(end) {
			next = end
		}
		return k%2 == 0, next
	}
	return false, time.Time{}
}
