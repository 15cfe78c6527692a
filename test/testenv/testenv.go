// Package testenv gives integration tests the addresses of the real services
// that the scripts under test/ start (Mosquitto, Pulsar, Cassandra). Tests
// that need a service call one of the functions below: under -short they are
// skipped; otherwise a service that does not answer fails the test with a
// message that says how to start it. The addresses come from the same
// environment variables the scripts read, with the same defaults.
package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// Host is the loopback address every service listens on.
func Host() string { return env("EDGE_TEST_HOST", "127.0.0.1") }

// Ports, overridable by environment (the scripts under test/ read the same).
func MQTTPort() string       { return env("EDGE_MQTT_PORT", "11883") }
func PulsarPort() string     { return env("EDGE_PULSAR_PORT", "16650") }
func PulsarHTTPPort() string { return env("EDGE_PULSAR_HTTP_PORT", "18080") }
func CassandraPort() string  { return env("EDGE_CASSANDRA_PORT", "19042") }

// RepoRoot is the root of the repository (the directory holding go.mod).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func need(t testing.TB, name, addr, script string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s integration test skipped under -short", name)
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("%s is not reachable at %s (%v); start it with `make services-up` or `%s up`", name, addr, err, script)
	}
	_ = c.Close()
}

// MQTT returns the broker URL of the test Mosquitto, e.g. tcp://127.0.0.1:11883.
func MQTT(t testing.TB) string {
	addr := net.JoinHostPort(Host(), MQTTPort())
	need(t, "mosquitto", addr, "test/mosquitto.sh")
	return "tcp://" + addr
}

// Pulsar returns the binary service URL and the admin (HTTP) URL of the test
// Pulsar standalone.
func Pulsar(t testing.TB) (serviceURL, adminURL string) {
	addr := net.JoinHostPort(Host(), PulsarPort())
	need(t, "pulsar", addr, "test/pulsar.sh")
	return "pulsar://" + addr, fmt.Sprintf("http://%s", net.JoinHostPort(Host(), PulsarHTTPPort()))
}

// Cassandra returns host:port of the test Cassandra's CQL listener.
func Cassandra(t testing.TB) string {
	addr := net.JoinHostPort(Host(), CassandraPort())
	need(t, "cassandra", addr, "test/cassandra.sh")
	return addr
}

// Condition is what Eventually polls. A func() bool is done when it returns
// true. A func() error is done when it returns nil; until then its error says
// what is still wrong, and the last one is in the failure message.
type Condition interface {
	func() bool | func() error
}

// Eventually polls cond until it is done or timeout passes, then fails the
// test with msg (and, for a func() error, the last error). It is how tests
// wait: never sleep.
func Eventually[C Condition](t testing.TB, timeout time.Duration, msg string, cond C) {
	t.Helper()
	if err := Poll(timeout, msg, cond); err != nil {
		t.Fatal(err)
	}
}

// Poll is Eventually without the test: it returns nil once cond is done, or,
// when timeout has passed, an error naming msg and (for a func() error) what
// cond last reported. Helpers that add context to a failure use it.
func Poll[C Condition](timeout time.Duration, msg string, cond C) error {
	var check func() error
	switch c := any(cond).(type) {
	case func() bool:
		check = func() error {
			if c() {
				return nil
			}
			return errNotYet
		}
	case func() error:
		check = c
	}
	deadline := time.Now().Add(timeout)
	tick := 20 * time.Millisecond
	for {
		err := check()
		if err == nil {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			if err == errNotYet {
				return fmt.Errorf("timed out after %s waiting for: %s", timeout, msg)
			}
			return fmt.Errorf("timed out after %s waiting for: %s: %w", timeout, msg, err)
		}
		time.Sleep(min(tick, left)) // the poll interval, not synchronisation
		tick = min(2*tick, 250*time.Millisecond)
	}
}

var errNotYet = errors.New("condition not yet true")
