package firmware

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sizeBudget bounds each stripped binary, so that an accidental dependency
// or lost -s -w shows up here. The goal for the arm64 gateway is 20 MB
// (README.md, "Firmware", has the measured sizes and what they consist of);
// the real Athenz module instead of third_party/athenz-stub adds 3.5 MB.
var sizeBudget = map[string]int64{"gateway": 22_000_000, "gatewayctl": 22_000_000}

// schemaCodecModules are linked only by pulsar-client-go's JSON, Protobuf,
// ProtoNative and Avro schemas, which the firmware leaves out.
var schemaCodecModules = []string{"github.com/hamba/avro/v2", "github.com/json-iterator/go", "github.com/modern-go/reflect2"}

// elfMachine is the ELF machine and class each target must produce.
var elfMachine = map[string]struct {
	machine elf.Machine
	class   elf.Class
	goarm   string
}{
	"linux/arm64":  {elf.EM_AARCH64, elf.ELFCLASS64, ""},
	"linux/arm/v7": {elf.EM_ARM, elf.ELFCLASS32, "7"},
	"linux/arm/v6": {elf.EM_ARM, elf.ELFCLASS32, "6"},
	"linux/amd64":  {elf.EM_X86_64, elf.ELFCLASS64, ""},
}

// The binaries are static, stripped ELF files for their target, built
// without cgo, with -trimpath, the version stamped in, and no path of the
// build machine inside.
func TestFirmwareBinaries(t *testing.T) {
	b := firmware(t)
	leaks := buildPaths(t, b)
	for _, target := range qemuTargets {
		for _, cmd := range []string{"gateway", "gatewayctl"} {
			t.Run(targetDir(target)+"/"+cmd, func(t *testing.T) {
				path := b.bin(target, cmd)
				want := elfMachine[target]
				f, err := elf.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if f.Machine != want.machine || f.Class != want.class || f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX {
					t.Errorf("ELF machine %v class %v OSABI %v, want %v %v", f.Machine, f.Class, f.OSABI, want.machine, want.class)
				}
				for _, p := range f.Progs {
					if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
						t.Errorf("has %v: not a static binary", p.Type)
					}
				}
				for _, s := range f.Sections {
					if s.Name == ".symtab" || strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
						t.Errorf("has section %s: not stripped", s.Name)
					}
				}

				bi, err := buildinfo.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				settings := map[string]string{}
				for _, s := range bi.Settings {
					settings[s.Key] = s.Value
				}
				for k, v := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true", "GOARM": want.goarm} {
					if settings[k] != v {
						t.Errorf("build setting %s = %q, want %q", k, settings[k], v)
					}
				}
				if !slices.Contains(strings.Split(settings["-tags"], ","), "pulsar_noschema") {
					t.Errorf("build setting -tags = %q, want pulsar_noschema in it", settings["-tags"])
				}
				for _, k := range []string{"vcs.revision", "vcs.time", "vcs.modified"} {
					if _, ok := settings[k]; ok {
						t.Errorf("build setting %s is stamped: builds of a dirty tree would differ", k)
					}
				}
				// firmware.sh links the Athenz stub (third_party/athenz-stub),
				// which leaves k8s.io out, and builds with -tags
				// pulsar_noschema (third_party/pulsar-client-go/PATCH.md,
				// change 5).
				for _, d := range bi.Deps {
					if d.Path == "github.com/AthenZ/athenz" && (d.Replace == nil || d.Replace.Path != "./third_party/athenz-stub") {
						t.Errorf("links %s %s, not the stub in third_party/athenz-stub", d.Path, d.Version)
					}
					if strings.HasPrefix(d.Path, "k8s.io/") || strings.HasPrefix(d.Path, "sigs.k8s.io/") {
						t.Errorf("links %s: the Athenz stub should have left it out", d.Path)
					}
					// -tags pulsar_noschema leaves pulsar-client-go's
					// schema codecs, and with them these, out.
					if slices.Contains(schemaCodecModules, d.Path) {
						t.Errorf("links %s: -tags pulsar_noschema should have left it out", d.Path)
					}
				}
				// -trimpath leaves -ldflags out of the build info; the
				// stamped version is checked by running the binaries
				// (TestQEMUVersionAndValidate).

				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range leaks {
					if bytes.Contains(data, []byte(p)) {
						t.Errorf("contains the build machine's path %s", p)
					}
				}
				size := int64(len(data))
				t.Logf("%s %s: %d bytes (%.1f MiB)", target, cmd, size, float64(size)/(1<<20))
				if size > sizeBudget[cmd] {
					t.Errorf("%d bytes, over the budget of %d", size, sizeBudget[cmd])
				}
			})
		}
	}
	if _, err := run(b.dist, nil, "sha256sum", "--check", "--strict", "--quiet", "SHA256SUMS"); err != nil {
		t.Errorf("SHA256SUMS: %v", err)
	}
}

// buildPaths are directories of this machine that a non-reproducible build
// would embed.
func buildPaths(t *testing.T, b build) []string {
	paths := []string{b.src, filepath.Dir(b.dist)}
	for _, v := range []string{"GOROOT", "GOMODCACHE", "GOCACHE"} {
		out, err := exec.Command("go", "env", v).Output()
		if err != nil {
			t.Fatal(err)
		}
		if p := strings.TrimSpace(string(out)); len(p) > 1 {
			paths = append(paths, p)
		}
	}
	return paths
}

// Two builds of the same source from different directories are
// byte-identical, and so is SHA256SUMS for them. The second build shares the
// Go build cache (packages compiled with -trimpath do not depend on where the
// source lives, so it only relinks); set EDGE_FIRMWARE_FRESH_CACHE=1 to give
// it an empty cache and compile everything again (minutes).
func TestFirmwareReproducible(t *testing.T) {
	b := firmware(t)
	// A second copy of the same snapshot, at a path of another length.
	other := filepath.Join(t.TempDir(), "another", "checkout")
	if err := snapshot(b.src, other); err != nil {
		t.Fatal(err)
	}
	dist := filepath.Join(t.TempDir(), "dist")
	target := qemuTargets[0]
	var env []string
	if os.Getenv("EDGE_FIRMWARE_FRESH_CACHE") != "" {
		env = append(env, "GOCACHE="+t.TempDir())
	}
	if err := makeFirmware(other, dist, env, target); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"gateway", "gatewayctl"} {
		first, second := sha256File(t, b.bin(target, cmd)), sha256File(t, filepath.Join(dist, targetDir(target), cmd))
		if first != second {
			t.Errorf("%s %s: sha256 %s from %s, %s from %s", target, cmd, first, b.src, second, other)
		}
	}
	sums := func(dir string) string {
		data, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
		if err != nil {
			t.Fatal(err)
		}
		var keep []string
		for _, l := range strings.Split(string(data), "\n") {
			if strings.Contains(l, "  "+targetDir(target)+"/") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	if a, b := sums(b.dist), sums(dist); a != b || a == "" {
		t.Errorf("SHA256SUMS differ for %s:\n%s\nvs\n%s", target, a, b)
	}
}
