// Package config is the gateway's configuration: defaults, then a strict YAML
// decode (unknown keys and values of the wrong type are errors, with their
// key path and line), then Validate, whose errors name the field and the
// line it came from; all of them are reported together, as units.Errors of
// *units.FieldError in file order.
//
// A document over MaxSize (4 MiB) is refused before it is parsed, and no
// error repeats more than 64 bytes of a value from the document.
//
// Sources name a driver kind registered in package drivers; the driver's own
// settings live under a key named after the driver and are decoded, just as
// strictly, into the driver's config struct. The driver's Validate (like the
// broker's and the uplink's) returns units.Errors whose paths are relative
// to its section; this package puts the section's path in front
// ("sources[2].mqtt" + "subscriptions[0].topic") and finds the line with
// units.Locate. A section's unknown keys and the problems its Validate finds
// in the rest of it are reported together.
//
// Durations are units.Duration ("500ms", "1h30m", "7d") and sizes
// units.ByteSize ("64KiB", "1GiB"), the syntax of every config of the
// project.
package config
