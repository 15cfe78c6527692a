package gpio

import (
	"fmt"
	"strings"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// pinIO is the part of periph's gpio.PinIO the driver uses. Every
// gpio.PinIO has it, periph's gpiotest.Pin included, which is what the
// tests and the simulation hand in.
type pinIO interface {
	Name() string
	In(pull gpio.Pull, edge gpio.Edge) error
	Read() gpio.Level
	WaitForEdge(timeout time.Duration) bool
	Out(l gpio.Level) error
	Halt() error
}

// board finds pins by name.
type board interface {
	pin(name string) (pinIO, error)
}

// openBoard makes the board a run uses: openHost on hardware, a simBoard
// when simulating, a map of fakes in tests.
type openBoard func() (board, error)

// PinNotFoundError is returned by Run when a configured pin does not exist
// on this host.
type PinNotFoundError struct {
	Pin   string
	Known []string // the pins the host has, by name
}

func (e *PinNotFoundError) Error() string {
	known := "none: is periph able to open /dev/gpiochip* or /dev/gpiomem here?"
	if len(e.Known) > 0 {
		const max = 40
		k := e.Known
		more := ""
		if len(k) > max {
			k, more = k[:max], fmt.Sprintf(", … (%d more)", len(e.Known)-max)
		}
		known = strings.Join(k, ", ") + more
	}
	return fmt.Sprintf("gpio: pin %q not found on this host (known: %s)", e.Pin, known)
}

// hostBoard is the machine's GPIO as periph's host drivers register it.
type hostBoard struct{}

// openHost initialises periph's host drivers. host.Init runs them once per
// process and returns the same state on later calls, so each Run may call it.
func openHost() (board, error) {
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("gpio: periph host init: %w", err)
	}
	return hostBoard{}, nil
}

func (hostBoard) pin(name string) (pinIO, error) {
	if p := gpioreg.ByName(name); p != nil {
		return p, nil
	}
	var known []string
	for _, p := range gpioreg.All() {
		known = append(known, p.Name())
	}
	return nil, &PinNotFoundError{Pin: name, Known: known}
}

// pinID names the physical pin behind an alias, so that "17" and "GPIO17"
// are seen to be one pin.
func pinID(p pinIO) string {
	if r, ok := p.(gpio.RealPin); ok {
		return r.Real().Name()
	}
	return p.Name()
}
