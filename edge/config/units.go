package config

import (
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/edgegw/gateway/units"
)

// Duration is a time.Duration written as a human string ("30s", "5m", "168h").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML implements yaml.Unmarshaler. Its error is a
// *yaml.TypeError, so that the decoder goes on with the rest of the
// document (a plain error would stop it there).
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a duration (e.g. 500ms, 30s, 5m, 168h), got %s", n.Line, describe(n))}}
	}
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s is not a duration (use e.g. 500ms, 30s, 5m, 168h)", n.Line, quote(n.Value))}}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// ByteSize is a size in bytes ("64KiB", "256MiB", "1GB", "4096"); the
// syntax is shared with the drivers', uplink's and sink's configs.
type ByteSize = units.ByteSize

// ParseByteSize parses "256MiB", "1GB", "4096".
func ParseByteSize(s string) (ByteSize, error) { return units.ParseByteSize(s) }
