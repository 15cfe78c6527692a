package gpio

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// simBoard hands out periph's gpiotest pins, made on first use: any valid
// pin name exists.
type simBoard struct {
	mu   sync.Mutex
	pins map[string]*gpiotest.Pin
}

func openSim() (board, error) { return &simBoard{pins: map[string]*gpiotest.Pin{}}, nil }

func (b *simBoard) pin(name string) (pinIO, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.pins[name]
	if !ok {
		p = &gpiotest.Pin{N: name, Num: len(b.pins), EdgesChan: make(chan gpio.Level)}
		b.pins[name] = p
	}
	return p, nil
}

// simulate toggles every simulated input every 2 to 8 seconds, each change
// followed by two bounces (so the debounce shows in the logs and Stats).
func (d *Driver) simulate(ctx context.Context, ins []*inputRun) {
	var wg sync.WaitGroup
	for _, in := range ins {
		p, ok := in.pin.(*gpiotest.Pin)
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.toggle(ctx, p)
		}()
	}
	wg.Wait()
}

func (d *Driver) toggle(ctx context.Context, p *gpiotest.Pin) {
	level := p.Read()
	for {
		wait := 2*time.Second + rand.N(6*time.Second)
		select {
		case <-ctx.Done():
			return
		case <-d.clock.At(d.clock.Now().Add(wait)):
		}
		level = !level
		for _, l := range []gpio.Level{level, !level, level} {
			select {
			case p.EdgesChan <- l:
			case <-ctx.Done():
				return
			}
		}
	}
}
