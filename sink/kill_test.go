package sink

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/edgegw/gateway/test/testenv"
)

// buildSink builds cmd/sink into a temporary directory.
func buildSink(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sink")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/sink")
	cmd.Dir = testenv.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/sink: %v\n%s", err, out)
	}
	return bin
}

// writeConfig writes cfg as YAML into a temporary file.
func writeConfig(t testing.TB, cfg Config) string {
	t.Helper()
	b, err := yaml.Marshal(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sink.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// child is a sink process; done is closed when it has exited, with err
// its exit status.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startChild(t testing.TB, bin, cfgPath, logPath string) *child {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", cfgPath, "-log-level", "debug")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		_ = logf.Close()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
	})
	return c
}

func TestSinkSurvivesKill9(t *testing.T) {
	it := newITest(t)
	bin := buildSink(t)
	cfg := it.config()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfgPath := writeConfig(t, cfg)
	logPath := filepath.Join(t.TempDir(), "sink.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("sink log:\n%s", tail(b, 4000))
		}
	})

	evs := gen("gw-k", 15000, t0)
	it.publish(evs)
	want := expectedCounts(evs)

	c := startChild(t, bin, cfgPath, logPath)
	testenv.Eventually(t, 90*time.Second, "the first rows", func() bool { return it.count(TableEvents) > 0 })
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.done
	at := it.count(TableEvents)
	t.Logf("killed with %d of %d events rows written", at, want[TableEvents])

	c = startChild(t, bin, cfgPath, logPath)
	it.waitRows(3*time.Minute, want)
	sameEvents(t, it.storedEvents(), evs)

	// SIGTERM stops it cleanly (exit status 0).
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.done:
		if c.err != nil {
			t.Fatalf("sink exited with %v after SIGTERM", c.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("sink did not stop within 30s of SIGTERM")
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
