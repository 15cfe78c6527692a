package status

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	chromiumOnce sync.Once
	chromiumPath string
	chromiumErr  string
)

// chromium returns the path of Debian's chromium, installing the package
// with apt-get when it is absent; it skips the test, saying why, only when
// that fails.
func chromium(t *testing.T) string {
	t.Helper()
	chromiumOnce.Do(func() {
		if p, err := exec.LookPath("chromium"); err == nil {
			chromiumPath = p
			return
		}
		if _, err := exec.LookPath("apt-get"); err != nil {
			chromiumErr = "chromium is not installed and there is no apt-get to install it"
			return
		}
		install := func(args ...string) (string, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "apt-get", append([]string{"-o", "DPkg::Lock::Timeout=300"}, args...)...)
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		t.Log("chromium not found: apt-get install -y chromium")
		if _, err := install("install", "-y", "-q", "chromium"); err != nil { // perhaps stale package lists
			if out, err := install("update", "-q"); err != nil {
				chromiumErr = "apt-get update failed: " + tail(out)
				return
			}
			if out, err := install("install", "-y", "-q", "chromium"); err != nil {
				chromiumErr = "apt-get install chromium failed: " + tail(out)
				return
			}
		}
		p, err := exec.LookPath("chromium")
		if err != nil {
			chromiumErr = "apt-get installed chromium but it is not on PATH"
			return
		}
		chromiumPath = p
	})
	if chromiumPath == "" {
		t.Skipf("headless Chromium test skipped: %s (install Debian's chromium package to run it)", chromiumErr)
	}
	return chromiumPath
}

// headless runs chromium headless with args + url and returns its stdout.
func headless(t *testing.T, bin, url string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--hide-scrollbars", "--user-data-dir=" + t.TempDir(),
	}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), url)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, tail(stderr.String()))
	}
	return stdout.String()
}

func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}
