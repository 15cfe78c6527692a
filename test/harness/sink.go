package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/edgegw/gateway/test/testenv"
)

// Sink is a cloud sink child process consuming one setup's namespace into
// its own keyspace.
type Sink struct {
	t        testing.TB
	bin, cfg string
	Keyspace string
	LogPath  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// NewSink writes a sink config for namespace ns and a fresh keyspace.
func NewSink(t testing.TB, dir, ns string) *Sink {
	t.Helper()
	bin, err := Binary("sink")
	if err != nil {
		t.Fatal(err)
	}
	pulsarURL, _ := testenv.Pulsar(t)
	cass := testenv.Cassandra(t)
	parts := strings.SplitN(ns, "/", 2)
	ks := fmt.Sprintf("e2e_%d", time.Now().UnixNano())
	cfg := fmt.Sprintf(`
pulsar:
  service_url: %s
  tenant: %s
  namespace: %s
  topics: {discovery_interval: 2s}
cassandra:
  hosts: [%q]
  keyspace: %s
  consistency: one
http: {listen: ""}
`, pulsarURL, parts[0], parts[1], cass, ks)
	path := filepath.Join(dir, "sink.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Sink{t: t, bin: bin, cfg: path, Keyspace: ks, LogPath: filepath.Join(dir, "sink.log")}
	t.Cleanup(func() { s.signal(syscall.SIGKILL) })
	return s
}

// Start runs the sink.
func (s *Sink) Start() {
	s.t.Helper()
	logf, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(s.bin, "-config", s.cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
}

// Kill sends SIGKILL and waits.
func (s *Sink) Kill() { s.signal(syscall.SIGKILL) }

func (s *Sink) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	<-done
}

// Log is the sink's output so far.
func (s *Sink) Log() string {
	b, _ := os.ReadFile(s.LogPath)
	if len(b) > 32<<10 {
		b = b[len(b)-32<<10:]
	}
	return string(b)
}

// Cassandra opens a session to the test Cassandra (closed at cleanup).
func Cassandra(t testing.TB) *gocql.Session {
	t.Helper()
	c := gocql.NewCluster(testenv.Cassandra(t))
	c.Consistency = gocql.One
	c.Timeout = 10 * time.Second
	s, err := c.CreateSession()
	if err != nil {
		t.Fatalf("cassandra session: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// CountRows counts rows of table in ks whose partition key columns equal
// the given values ("gateway = ? AND day = ?" style where clause); an error
// (e.g. the table does not exist yet) counts as -1.
func CountRows(s *gocql.Session, query string, args ...any) int {
	var n int64
	if err := s.Query(query, args...).ScanContext(context.Background(), &n); err != nil {
		return -1
	}
	return int(n)
}
