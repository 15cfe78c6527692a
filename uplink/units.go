package uplink

import "github.com/edgegw/gateway/units"

// ByteSize is a number of bytes, written in YAML as a plain integer or a human
// string ("512KiB", "1MiB", "2MB"); see package units.
type ByteSize = units.ByteSize

// ParseByteSize parses "1MiB", "2MB", "4096".
func ParseByteSize(s string) (ByteSize, error) { return units.ParseByteSize(s) }
