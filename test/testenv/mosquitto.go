package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Mosquitto is a private Mosquitto a test runs as its child process on a
// free loopback port (for broker settings the shared one must not have,
// such as tiny queues or TLS), stopped at the test's cleanup.
type Mosquitto struct {
	Addr string // 127.0.0.1:<port>
	Port int
	Dir  string // its temp dir (config, files the test adds)
	out  lockedBuffer
}

// Log is what the broker printed so far (its log, unless conf sends it to
// a file).
func (m *Mosquitto) Log() string { return m.out.String() }

// StartMosquitto runs Debian's mosquitto (test/deps.sh installs it) with a
// config of `listener <port> 127.0.0.1`, `user <current user>` and the
// given lines (conf may refer to files in dir, which is the broker's temp
// dir, made first), waits until it accepts connections and stops it at
// cleanup. It skips the test when mosquitto is not installed or -short.
func StartMosquitto(t testing.TB, conf func(dir string) []string) *Mosquitto {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real mosquitto")
	}
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if bin, err = exec.LookPath(filepath.Join("/usr", "sbin", "mosquitto")); err != nil {
			t.Skip("mosquitto is not installed (test/deps.sh installs it)")
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &Mosquitto{Port: l.Addr().(*net.TCPAddr).Port, Dir: t.TempDir()}
	l.Close()
	m.Addr = fmt.Sprintf("127.0.0.1:%d", m.Port)
	lines := []string{fmt.Sprintf("listener %d 127.0.0.1", m.Port), "user " + u.Username}
	if conf != nil {
		lines = append(lines, conf(m.Dir)...)
	}
	path := filepath.Join(m.Dir, "mosquitto.conf")
	if err := writeFile(path, strings.Join(lines, "\n")+"\n"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path)
	cmd.Stdout, cmd.Stderr = &m.out, &m.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("mosquitto log (tail):\n%s", tail(m.Log(), 16<<10))
		}
	})
	Eventually(t, 15*time.Second, "mosquitto accepting on "+m.Addr, func() error {
		select {
		case <-exited:
			t.Fatalf("mosquitto exited:\n%s", m.Log())
		default:
		}
		c, err := net.DialTimeout("tcp", m.Addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return m
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
