// Package gpio is the "gpio" input driver: it turns edges on GPIO pins into
// events, counts pulses, and drives output pins (a stack light, a buzzer)
// from the gateway's state. It reaches the pins through periph.io.
//
// Each input pin is watched by a goroutine blocked in periph's WaitForEdge
// (or, where the pin has no edge detection, sampling it every poll period),
// which timestamps each edge and hands it to the input's logic goroutine.
// That one debounces (an edge less than debounce after the last accepted
// one is a bounce; with edge "both" the pin is read again when such a window
// closes, so a short press is not lost), counts accepted edges per interval,
// and queues one "gpio" event per accepted edge:
//
//	kind gpio, time = edge time, attrs:
//	  pin            the configured pin name, e.g. "GPIO17"
//	  level          bool, logical (after active_low)
//	  edge           "rising" or "falling", logical
//	  since_prev_ms  int, since the input's previous accepted edge (absent on the first)
//	  dropped        int, events of this input dropped just before this one (absent when none)
//
// and, with count, one "reading" per interval (time = end of the interval):
//
//	metric "pulse_count", value = count, unit "{pulses}",
//	count, interval_s (float), rate_hz (float), pin
//
// One emitter goroutine hands queued events to the Sink, one stream per
// Emit, and holds them, retrying with backoff (100ms..5s), while the sink
// refuses them (drivers.ErrFull or any other error). The queue holds 4096
// events; past that, events are dropped and counted (Stats.Dropped and the
// "dropped" attribute).
//
// Outputs follow State, which the gateway hands in with SetState: an output
// is on while its signal (uplink_offline, buffer_above) has held for at
// least its "after". Run turns every output off when it starts and ends.
//
// Config (under the source's "gpio" key):
//
//	simulate: false              # true: gpiotest pins toggled by a goroutine
//	inputs:
//	  - pin: GPIO17              # as periph names it
//	    source: door-contact-2   # required
//	    stream: telemetry        # default
//	    pull: up                 # up | down | none (= float) ; default: leave as is
//	    edge: both               # rising | falling | both (logical) ; default both
//	    debounce: 20ms           # default 20ms, 0s..10s
//	    active_low: true
//	    count: {interval: 10s}   # optional pulse counting, 1s..24h
//	    count_only: false        # true: no per-edge events (needs count)
//	    poll: 10ms               # only without edge detection, 1ms..1s
//	outputs:
//	  - pin: GPIO27
//	    name: stack-light
//	    when: {signal: uplink_offline, after: 5m}
//	    active_low: false
//	  - pin: GPIO22
//	    name: buffer-warning
//	    when: {signal: buffer_above, threshold: 0.8}
//
// The pins are reached through a small unexported interface (pinIO, which
// every periph gpio.PinIO satisfies) and a factory, so that tests hand in
// periph's gpiotest pins and a fake clock.
package gpio
