// Package config is the gateway's configuration: defaults, then a strict YAML
// decode (unknown keys are errors, with line numbers), then Validate, whose
// errors name the field and the line it came from.
//
// Sources name a driver kind registered in package drivers; the driver's own
// settings live under a key named after the driver and are decoded, just as
// strictly, into the driver's config struct.
package config
