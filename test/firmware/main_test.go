package firmware

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/edgegw/gateway/test/harness"
	"github.com/edgegw/gateway/test/testenv"
)

// What the test builds stamp into the binaries.
const (
	testVersion = "v0.0.0-firmware-test"
	testCommit  = "0123456789ab"
)

// qemuTargets are built once per run and run under qemu-user.
var qemuTargets = []string{"linux/arm64", "linux/arm/v7"}

func TestMain(m *testing.M) {
	rc := m.Run()
	harness.Cleanup()
	if fw.tmp != "" {
		_ = os.RemoveAll(fw.tmp)
	}
	os.Exit(rc)
}

// build is one `make firmware` output.
type build struct {
	src  string // the source snapshot it was built from
	dist string // DIST: <target dir>/{gateway,gatewayctl} and SHA256SUMS
}

// bin is the path of command cmd built for target ("linux/arm/v7").
func (b build) bin(target, cmd string) string {
	return filepath.Join(b.dist, targetDir(target), cmd)
}

// targetDir is the directory firmware.sh names after a target.
func targetDir(target string) string {
	p := strings.Split(target, "/")
	return p[0] + "-" + strings.Join(p[1:], "")
}

var fw struct {
	once sync.Once
	tmp  string
	b    build
	err  error
}

// firmware returns the shared build of qemuTargets, made on first use with
// `make firmware` from a snapshot of the tree.
func firmware(t testing.TB) build {
	t.Helper()
	if testing.Short() {
		t.Skip("firmware builds skipped under -short")
	}
	fw.once.Do(func() {
		fw.tmp, fw.err = os.MkdirTemp("", "edgegw-firmware-")
		if fw.err != nil {
			return
		}
		src := filepath.Join(fw.tmp, "src")
		if fw.err = snapshot(testenv.RepoRoot(), src); fw.err != nil {
			return
		}
		fw.b = build{src: src, dist: filepath.Join(fw.tmp, "dist")}
		fw.err = makeFirmware(src, fw.b.dist, nil, qemuTargets...)
	})
	if fw.err != nil {
		t.Fatal(fw.err)
	}
	return fw.b
}

// makeFirmware runs `make firmware` in src for targets into dist, with
// extra environment.
func makeFirmware(src, dist string, env []string, targets ...string) error {
	_, err := run(src, env, "make", "--no-print-directory", "firmware", "DIST="+dist,
		"FIRMWARE_TARGETS="+strings.Join(targets, " "), "VERSION="+testVersion, "COMMIT="+testCommit)
	return err
}

// run runs a command in dir with extra environment and returns its
// combined output; the error carries the output.
func run(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// skipDirs are not part of a source snapshot: VCS data, service state, build
// outputs.
var skipDirs = map[string]bool{".git": true, ".state": true, ".cache": true, "bin": true, "dist": true}

// snapshot copies the source tree at root to dst (regular files only, modes
// kept).
func snapshot(root, dst string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel != "." && skipDirs[rel] {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() || strings.HasSuffix(path, ".test") {
			return nil
		}
		return copyFile(path, filepath.Join(dst, rel))
	})
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func sha256File(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
