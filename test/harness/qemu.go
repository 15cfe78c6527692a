package harness

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// UseBinary makes the gateway run bin instead of the host build of
// ./cmd/gateway, under the command prefix when one is given (e.g.
// QEMU(t, "linux/arm64") for a cross-built firmware binary). Call it before
// Start.
func (g *Gateway) UseBinary(bin string, prefix ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.bin, g.prefix = bin, append([]string(nil), prefix...)
}

// UseArgs puts args before -config FILE on the gateway's command line
// (e.g. "launch", "-firmware-dir", DIR: run it under the firmware
// launcher). Call it before Start.
func (g *Gateway) UseArgs(args ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.args = append([]string(nil), args...)
}

// command is the gateway's command line: its binary (behind the prefix, if
// any) with args.
func (g *Gateway) command(args ...string) *exec.Cmd {
	if len(g.prefix) == 0 {
		return exec.Command(g.bin, args...)
	}
	argv := append(append(append([]string(nil), g.prefix[1:]...), g.bin), args...)
	return exec.Command(g.prefix[0], argv...)
}

// qemuUser maps a GOARCH to the Debian qemu-user-static emulator for it.
var qemuUser = map[string]string{
	"arm64": "qemu-aarch64-static",
	"arm":   "qemu-arm-static",
	"amd64": "qemu-x86_64-static",
}

var (
	qemuMu      sync.Mutex
	qemuInstall error // result of the one apt-get attempt of this process
	qemuTried   bool
)

// QEMU returns the command prefix that runs a binary built for target
// ("linux/arm64", "linux/arm/v7", ...) on this machine: none for the host's
// own architecture, else Debian's qemu-user-static emulator, called
// explicitly so that no binfmt_misc registration is needed. When the emulator
// is missing it installs qemu-user-static and binfmt-support with apt-get
// (once per process); the test is skipped, saying why, only when that is
// impossible (not root, no apt-get, or apt-get failed).
func QEMU(t testing.TB, target string) []string {
	t.Helper()
	parts := strings.Split(target, "/")
	if len(parts) < 2 || parts[0] != "linux" {
		t.Fatalf("QEMU: target %q: want linux/<arch>[/<variant>]", target)
	}
	arch := parts[1]
	if arch == runtime.GOARCH && runtime.GOOS == "linux" {
		return nil
	}
	emu, ok := qemuUser[arch]
	if !ok {
		t.Fatalf("QEMU: no emulator known for %s", target)
	}
	if path, err := exec.LookPath(emu); err == nil {
		return []string{path}
	}
	qemuMu.Lock()
	if !qemuTried {
		qemuTried = true
		qemuInstall = aptInstall("qemu-user-static", "binfmt-support")
	}
	err := qemuInstall
	qemuMu.Unlock()
	if err != nil {
		t.Skipf("%s is needed to run %s binaries and could not be installed: %v", emu, target, err)
	}
	path, err := exec.LookPath(emu)
	if err != nil {
		t.Skipf("%s is needed to run %s binaries: installed qemu-user-static, but: %v", emu, target, err)
	}
	return []string{path}
}

// aptInstall installs Debian packages, refreshing the package lists once if
// the first attempt fails.
func aptInstall(pkgs ...string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("not root: run `apt-get install %s` first", strings.Join(pkgs, " "))
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("no apt-get: install %s by other means", strings.Join(pkgs, " "))
	}
	install := func() ([]byte, error) {
		args := append([]string{"-o", "DPkg::Lock::Timeout=300", "install", "-y", "--no-install-recommends"}, pkgs...)
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	if _, err := install(); err == nil {
		return nil
	}
	if out, err := exec.Command("apt-get", "-o", "DPkg::Lock::Timeout=300", "update").CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get update: %v\n%s", err, out)
	}
	if out, err := install(); err != nil {
		return fmt.Errorf("apt-get install %s: %v\n%s", strings.Join(pkgs, " "), err, out)
	}
	return nil
}
