package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/edgegw/gateway/units"
)

// reqErr is a server error as gocql reports it: anything implementing
// gocql.RequestError (the driver's own types embed an unexported frame).
type reqErr struct {
	code int
	msg  string
}

func (e reqErr) Code() int       { return e.code }
func (e reqErr) Message() string { return e.msg }
func (e reqErr) Error() string   { return e.msg }

var _ gocql.RequestError = reqErr{}

func TestClassify(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("write events: %w", err) }
	for _, tc := range []struct {
		name string
		err  error
		want ErrorClass
	}{
		{"unavailable", reqErr{gocql.ErrCodeUnavailable, "Cannot achieve consistency level LOCAL_QUORUM"}, Transient},
		{"write timeout", reqErr{gocql.ErrCodeWriteTimeout, "Operation timed out"}, Transient},
		{"read timeout", reqErr{gocql.ErrCodeReadTimeout, "Operation timed out"}, Transient},
		{"overloaded", reqErr{gocql.ErrCodeOverloaded, "overloaded"}, Transient},
		{"bootstrapping", reqErr{gocql.ErrCodeBootstrapping, "bootstrapping"}, Transient},
		{"server", reqErr{gocql.ErrCodeServer, "java.lang.RuntimeException"}, Transient},
		{"write failure", reqErr{gocql.ErrCodeWriteFailure, "write failure"}, Transient},
		{"wrapped unavailable", wrap(reqErr{gocql.ErrCodeUnavailable, "x"}), Transient},
		{"no response", gocql.ErrTimeoutNoResponse, Transient},
		{"connection closed", gocql.ErrConnectionClosed, Transient},
		{"no connections", wrap(gocql.ErrNoConnections), Transient},
		{"no streams", gocql.ErrNoStreams, Transient},
		{"session closed", gocql.ErrSessionClosed, Transient},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, Transient},
		{"reset", wrap(syscall.ECONNRESET), Transient},
		{"eof", io.EOF, Transient},
		{"deadline", context.DeadlineExceeded, Transient},
		{"unknown", errors.New("something odd"), Transient},
		{"bad credentials", reqErr{gocql.ErrCodeCredentials, "Provided username and/or password are incorrect"}, Setup},
		{"unauthorized", reqErr{gocql.ErrCodeUnauthorized, "User has no MODIFY permission"}, Setup},
		{"syntax", reqErr{gocql.ErrCodeSyntax, "line 1:7 no viable alternative"}, Setup},
		{"unconfigured table", reqErr{gocql.ErrCodeInvalid, "unconfigured table events"}, Setup},
		{"missing keyspace", reqErr{gocql.ErrCodeInvalid, "Keyspace edge does not exist"}, Setup},
		{"keyspace sentinel", gocql.ErrKeyspaceDoesNotExist, Setup},
		{"key too long", reqErr{gocql.ErrCodeInvalid, "Key length of 70000 is longer than maximum of 65535"}, Poison},
		{"batch too large", wrap(reqErr{gocql.ErrCodeInvalid, "Batch too large"}), Poison},
		{"marshal", gocql.MarshalError("can not marshal string into bigint"), Poison},
		{"frame too big", gocql.ErrFrameTooBig, Poison},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.err); got != tc.want {
				t.Errorf("Classify(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	b := newBackoff(RetryConfig{Initial: units.Duration(100 * time.Millisecond), Max: units.Duration(time.Second), Multiplier: 2})
	b.Rand = func() float64 { return 0.5 } // factor 1.0
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := b.Next(); got != w*time.Millisecond {
			t.Fatalf("step %d: %s, want %s", i, got, w*time.Millisecond)
		}
	}
	b.Reset()
	if got := b.Next(); got != 100*time.Millisecond {
		t.Fatalf("after reset: %s", got)
	}
	b.Rand = func() float64 { return 0 }
	if got := b.Next(); got != 160*time.Millisecond { // 200ms * 0.8
		t.Fatalf("low jitter: %s", got)
	}
	b.Rand = func() float64 { return 0.999999 }
	if got := b.Next(); got < 479*time.Millisecond || got > 480*time.Millisecond { // 400ms * ~1.2
		t.Fatalf("high jitter: %s", got)
	}
}

func TestSleepHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("sleep = %v", err)
	}
	if err := sleep(context.Background(), time.Microsecond); err != nil {
		t.Fatal(err)
	}
}
