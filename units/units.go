// Package units is the shared vocabulary of every config file of the
// project: the human sizes ("64KiB", "256MiB", "1GB", "4096"), the human
// durations ("500ms", "1h30m", "90d"), and the one error contract of a
// config setting (FieldError: key path, line, message) with the helpers
// that map a key path to its line in a YAML document (Locate). A size, a
// duration and an error thus mean the same in the gateway's config, a
// driver's section, the uplink's and the sink's.
//
// Why here and not in a new package: DESIGN.md adds a folder only when none
// fits, and this one already is the leaf that every config package
// (edge/config, drivers/*, uplink, sink) imports for its value syntax; the
// sink may import only event and this package. A config error is part of
// the same contract as the syntax of the values it complains about, and
// renaming the package would churn every import for no gain. It stays a
// leaf: it imports nothing of the project (only yaml), which is why
// drivers, uplink and sink, which may not import edge, can share it.
package units

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// ByteSize is a size in bytes, written as a plain integer or a number with a
// unit: B; KiB, MiB, GiB, TiB (powers of 1024, also written K, M, G, T);
// KB, MB, GB, TB (powers of 1000). Units are case-insensitive; fractions
// are allowed ("1.5MiB").
type ByteSize int64

// Units of ByteSize.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
	TiB ByteSize = 1 << 40
)

// byteUnits are tried in order: the longer suffixes first.
var byteUnits = []struct {
	suffix string
	mult   float64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}, {"b", 1},
}

// ParseByteSize parses "4096", "512B", "64KiB", "1.5MiB", "10MB".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 1.0
	for _, u := range byteUnits {
		if n, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || f*mult > 1<<62 || t == "" || strings.ContainsAny(t, "xpn_") {
		return 0, fmt.Errorf("%s is not a byte size (use e.g. 4096, 64KiB, 256MiB, 1GiB)", quote(s))
	}
	return ByteSize(f * mult), nil
}

// String formats b with the largest IEC unit that divides it exactly.
func (b ByteSize) String() string {
	for _, u := range []struct {
		n    ByteSize
		name string
	}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if b != 0 && b%u.n == 0 {
			return strconv.FormatInt(int64(b/u.n), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// UnmarshalYAML implements yaml.Unmarshaler. Its error is a
// *yaml.TypeError that names the line, so that the decoder goes on with the
// rest of the document (a plain error would stop it there).
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n, "a byte size must be a number or a string like 64KiB, not "+Describe(n))
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return typeError(n, err.Error())
	}
	*b = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// typeError is an unmarshaler's error for the value at n: a
// *yaml.TypeError, which names n's line and lets the decoder go on.
func typeError(n *yaml.Node, msg string) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, msg)}}
}

// clipLen is the most bytes of a user value an error message repeats.
const clipLen = 64

// quote is %q of a user value, clipped to clipLen bytes (on a rune
// boundary), saying how long it was: "aaaa"…(4194304 bytes).
func quote(s string) string {
	if len(s) <= clipLen {
		return strconv.Quote(s)
	}
	n := clipLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strconv.Quote(s[:n]) + fmt.Sprintf("…(%d bytes)", len(s))
}
