// Package config is the gateway's configuration: defaults, then a strict YAML
// decode (unknown keys and values of the wrong type are errors, with their
// key path and line), then Validate, whose errors name the field and the
// line it came from; all of them are reported together.
//
// A document over MaxSize (4 MiB) is refused before it is parsed, and no
// error repeats more than 64 bytes of a value from the document.
//
// Sources name a driver kind registered in package drivers; the driver's own
// settings live under a key named after the driver and are decoded, just as
// strictly, into the driver's config struct.
package config
