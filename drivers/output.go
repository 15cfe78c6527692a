package drivers

import "time"

// Output modes of an OutputCommand.
const (
	OutputOn    = "on"    // on until told otherwise
	OutputOff   = "off"   // off
	OutputPulse = "pulse" // on for For, then off
	OutputBlink = "blink" // on and off every Period for For (0: until told otherwise)
)

// OutputCommand drives one output of a driver (a rule's gpio action).
type OutputCommand struct {
	Mode   string        // OutputOn, OutputOff, OutputPulse or OutputBlink
	For    time.Duration // pulse: how long it is on; blink: how long it blinks (0: until the next command)
	Period time.Duration // blink: the time on, then the time off
}

// OutputDriver is a driver with outputs that commands drive (gpio outputs
// with signal "rules"). DriveOutput never blocks; the command replaces the
// output's previous one. It returns an error when the driver has no such
// output.
type OutputDriver interface {
	DriveOutput(name string, cmd OutputCommand) error
}

// OutputNamer is a driver config that names the outputs an OutputDriver
// built from it takes commands for, so that a config's rules can be
// checked against them before anything starts.
type OutputNamer interface {
	CommandOutputs() []string
}
