package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/testenv"
)

// Gateway is a gateway child process.
type Gateway struct {
	t       testing.TB
	bin     string
	prefix  []string
	args    []string // before -config (UseArgs)
	Config  string   // path of the config file
	HTTP    string   // host:port of its status server
	LogPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	runs int
}

// readyClient polls /readyz; a gateway that accepts but never answers fails
// the test at the deadline instead of hanging it.
var readyClient = &http.Client{Timeout: 5 * time.Second}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// NewGateway writes cfg (a complete YAML config whose http.listen must be
// httpAddr) into a temp dir and returns a stopped gateway.
func NewGateway(t testing.TB, dir, cfg, httpAddr string) *Gateway {
	t.Helper()
	bin, err := Binary("gateway")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &Gateway{t: t, bin: bin, Config: path, HTTP: httpAddr, LogPath: filepath.Join(dir, "gateway.log")}
	t.Cleanup(func() { g.Kill() })
	return g
}

// Start starts the process and waits until /readyz answers.
func (g *Gateway) Start() {
	g.t.Helper()
	g.mu.Lock()
	logf, err := os.OpenFile(g.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		g.mu.Unlock()
		g.t.Fatal(err)
	}
	g.runs++
	fmt.Fprintf(logf, "==== start #%d\n", g.runs)
	cmd := g.command(append(append([]string(nil), g.args...), "-config", g.Config)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		g.mu.Unlock()
		g.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	g.cmd, g.done = cmd, done
	g.mu.Unlock()
	exited := false
	err = testenv.Poll(60*time.Second, "the gateway's /readyz to answer 200", func() error {
		select {
		case <-done:
			exited = true
			return nil
		default:
		}
		resp, err := readyClient.Get("http://" + g.HTTP + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return fmt.Errorf("/readyz: %s %s", resp.Status, bytes.TrimSpace(body))
		}
		return nil
	})
	if exited {
		g.t.Fatalf("gateway exited during start:\n%s", g.Log())
	}
	if err != nil {
		g.t.Fatalf("%v\ngateway log:\n%s", err, g.Log())
	}
}

// Signal sends sig to the running process without waiting (e.g. SIGHUP:
// reload the config file).
func (g *Gateway) Signal(sig os.Signal) error {
	g.mu.Lock()
	cmd := g.cmd
	g.mu.Unlock()
	if cmd == nil {
		return errors.New("gateway not running")
	}
	return cmd.Process.Signal(sig)
}

// Kill sends SIGKILL and waits for the process to be gone.
func (g *Gateway) Kill() { g.signal(syscall.SIGKILL, 10*time.Second) }

// Stop sends SIGTERM and waits up to 30s for a clean exit.
func (g *Gateway) Stop() { g.signal(syscall.SIGTERM, 30*time.Second) }

func (g *Gateway) signal(sig syscall.Signal, wait time.Duration) {
	g.mu.Lock()
	cmd, done := g.cmd, g.done
	g.cmd = nil
	g.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
		g.t.Errorf("gateway did not exit within %s of %s", wait, sig)
	}
}

// Running reports whether the process is alive.
func (g *Gateway) Running() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cmd == nil {
		return false
	}
	select {
	case <-g.done:
		return false
	default:
		return true
	}
}

// Log returns the process's output so far (the tail, at most 64 KiB).
func (g *Gateway) Log() string {
	b, _ := os.ReadFile(g.LogPath)
	if len(b) > 64<<10 {
		b = b[len(b)-64<<10:]
	}
	return string(bytes.TrimSpace(b))
}

// Eventually is testenv.Eventually with the gateway's log on failure. cond
// is a func() bool or a func() error, as for testenv.Eventually (a method
// cannot have type parameters, so anything else fails the test).
func (g *Gateway) Eventually(timeout time.Duration, msg string, cond any) {
	g.t.Helper()
	var err error
	switch c := cond.(type) {
	case func() bool:
		err = testenv.Poll(timeout, msg, c)
	case func() error:
		err = testenv.Poll(timeout, msg, c)
	default:
		g.t.Fatalf("Gateway.Eventually(%q): cond is a %T, want a func() bool or a func() error", msg, cond)
	}
	if err != nil {
		g.t.Fatalf("%v\ngateway log:\n%s", err, g.Log())
	}
}
