// Package units parses the human sizes that every config file of the
// project takes ("64KiB", "256MiB", "1GB", "4096"), so that a size means the
// same in the gateway's config, a driver's section, the uplink's and the
// sink's. It is a leaf: it imports nothing of the project, which is why
// drivers, uplink and sink, which may not import edge, can share it.
package units

import (
	"fmt"
	"strconv"
	"strings"

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
		return 0, fmt.Errorf("%q is not a byte size (use e.g. 4096, 64KiB, 256MiB, 1GiB)", s)
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

// UnmarshalYAML implements yaml.Unmarshaler; errors carry the line.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a byte size must be a number or a string like 64KiB", n.Line)
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }
