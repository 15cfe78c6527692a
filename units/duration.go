package units

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written in a config as a human string: Go's
// syntax ("250ms", "30s", "5m", "1h30m", "168h") with a day unit (24h) in
// front ("90d", "7d", "1d12h"). "0" is zero. Every config of the project
// takes its durations as this type.
type Duration time.Duration

// Day is 24 hours, the "d" of Duration's syntax.
const Day = 24 * time.Hour

// maxDays is the most days a Duration can hold.
const maxDays = int64(1<<63-1) / int64(Day)

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d in the syntax ParseDuration reads, using days when d is
// a positive whole number of them ("90d"), else Go's syntax ("1h30m0s").
func (d Duration) String() string {
	td := time.Duration(d)
	if td > 0 && td%Day == 0 {
		return strconv.FormatInt(int64(td/Day), 10) + "d"
	}
	return td.String()
}

var errDuration = errors.New("not a duration")

// ParseDuration parses "500ms", "30s", "1h30m", "90d", "1d12h", "0".
func ParseDuration(s string) (Duration, error) {
	d, err := parseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%s is not a duration (use e.g. 500ms, 30s, 1h30m, 90d)", quote(s))
	}
	return d, nil
}

func parseDuration(s string) (Duration, error) {
	days, rest, ok := strings.Cut(s, "d")
	if !ok {
		td, err := time.ParseDuration(s)
		return Duration(td), err
	}
	n, err := strconv.ParseInt(days, 10, 64)
	if err != nil || n < 0 || n > maxDays || days[0] == '+' {
		return 0, errDuration
	}
	td := time.Duration(n) * Day
	if rest != "" {
		if rest[0] < '0' || rest[0] > '9' { // no sign, no second "d"
			return 0, errDuration
		}
		r, err := time.ParseDuration(rest)
		if err != nil || r > time.Duration(1<<63-1)-td {
			return 0, errDuration
		}
		td += r
	}
	return Duration(td), nil
}

// UnmarshalYAML implements yaml.Unmarshaler. Its error is a
// *yaml.TypeError that names the line, so that the decoder goes on with the
// rest of the document (a plain error would stop it there).
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n, "want a duration (e.g. 500ms, 30s, 1h30m, 90d), got "+Describe(n))
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return typeError(n, err.Error())
	}
	*d = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }
