package i2c

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/host/v3"
)

// openBus opens an I²C bus by name: openHostBus on hardware, a simulated
// sensor's bus when simulating, an i2ctest.Playback in tests. The sensor
// driver (periph's bmxx80) runs on top of whichever it returns.
type openBus func(name string) (i2c.BusCloser, error)

// BusNotFoundError is returned by Run when the configured bus does not
// exist on this host.
type BusNotFoundError struct {
	Bus   string
	Known []string // the buses the host has: name (aliases)
}

func (e *BusNotFoundError) Error() string {
	known := "none: is the I²C interface enabled, and may this process open /dev/i2c-*?"
	if len(e.Known) > 0 {
		known = strings.Join(e.Known, ", ")
	}
	name := strconv.Quote(e.Bus)
	if e.Bus == "" {
		name = "(default)"
	}
	return fmt.Sprintf("i2c: bus %s not found on this host (known: %s)", name, known)
}

// openHostBus initialises periph's host drivers (host.Init runs them once per
// process and returns the same state on later calls) and opens the bus.
func openHostBus(name string) (i2c.BusCloser, error) {
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("i2c: periph host init: %w", err)
	}
	refs := i2creg.All()
	var known []string
	found := name == "" && len(refs) > 0
	for _, r := range refs {
		desc := r.Name
		if len(r.Aliases) > 0 {
			desc += " (" + strings.Join(r.Aliases, ", ") + ")"
		}
		known = append(known, desc)
		if r.Name == name || slices.Contains(r.Aliases, name) || (r.Number >= 0 && strconv.Itoa(r.Number) == name) {
			found = true
		}
	}
	if !found {
		return nil, &BusNotFoundError{Bus: name, Known: known}
	}
	b, err := i2creg.Open(name)
	if err != nil {
		return nil, fmt.Errorf("i2c: open bus %q: %w", name, err)
	}
	return b, nil
}
