package units

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"0": 0, "4096": 4096, " 512B ": 512, "64KiB": 64 << 10, "64kib": 64 << 10, "64K": 64 << 10,
		"1.5MiB": 3 << 19, "256MiB": 256 << 20, "1GiB": 1 << 30, "2TiB": 2 << 40,
		"10MB": 10_000_000, "1kb": 1000, "4GB": 4_000_000_000, "1 MiB": 1 << 20,
	} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "lots", "-1", "1XiB", "0x10", "1e30", "NaN", "Inf", "1_000", "5 bytes"} {
		if got, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	for b, want := range map[ByteSize]string{0: "0", 512: "512", 5 << 10: "5KiB", 3 << 19: "1536KiB", 1 << 30: "1GiB", 1000: "1000"} {
		if got := b.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(b), got, want)
		}
		if back, err := ParseByteSize(b.String()); err != nil || back != b {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", b.String(), back, err, int64(b))
		}
	}
}

func TestByteSizeYAML(t *testing.T) {
	var v struct {
		Size ByteSize `yaml:"size"`
	}
	if err := yaml.Unmarshal([]byte("size: 2MiB\n"), &v); err != nil || v.Size != 2<<20 {
		t.Fatalf("got %d, %v", v.Size, err)
	}
	err := yaml.Unmarshal([]byte("\nsize: lots\n"), &v)
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), `"lots" is not a byte size`) {
		t.Fatalf("error %v, want the line and the value", err)
	}
	if err := yaml.Unmarshal([]byte("size: [1]\n"), &v); err == nil || err.Error() != "yaml: unmarshal errors:\n  line 1: a byte size must be a number or a string like 64KiB, not a sequence" {
		t.Fatalf("a list: %v", err)
	}
	out, err := yaml.Marshal(v)
	if err != nil || strings.TrimSpace(string(out)) != "size: 2MiB" {
		t.Fatalf("marshal: %q, %v", out, err)
	}
}
