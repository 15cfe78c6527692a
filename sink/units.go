package sink

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/edgegw/gateway/units"
)

// Duration is a time.Duration written in YAML as a human string: Go's
// syntax ("250ms", "30s", "1h30m") plus a day unit ("90d"). "0" means zero.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d in the syntax ParseDuration reads, using days when d is
// a whole number of them.
func (d Duration) String() string {
	td := time.Duration(d)
	if td != 0 && td%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(td/(24*time.Hour)), 10) + "d"
	}
	return td.String()
}

// ParseDuration parses Go's duration syntax extended by a "d" (24h) unit,
// which may only stand alone ("90d").
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseUint(n, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return Duration(time.Duration(days) * 24 * time.Hour), nil
	}
	td, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return Duration(td), nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// ByteSize is a size in bytes written in YAML as a plain integer or a human
// string: "512", "5KiB", "4MiB", "1GiB", "10MB" (KB, MB, GB are powers of
// 1000); the same syntax as the gateway's configs (package units).
type ByteSize = units.ByteSize

// ParseByteSize parses a ByteSize.
func ParseByteSize(s string) (ByteSize, error) { return units.ParseByteSize(s) }
