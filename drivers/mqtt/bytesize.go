package mqtt

import "github.com/edgegw/gateway/units"

// ByteSize is a size in bytes that YAML may give as a plain integer or as a
// human string: "65536", "64KiB", "1MiB", "64KB" (KB, MB, GB are powers of
// 1000; KiB, MiB, GiB powers of 1024); see package units.
type ByteSize = units.ByteSize

// Units of ByteSize.
const (
	KiB = units.KiB
	MiB = units.MiB
	GiB = units.GiB
)

// ParseByteSize parses "123", "123B", "64KiB", "1.5MiB", "10MB".
func ParseByteSize(s string) (ByteSize, error) { return units.ParseByteSize(s) }
