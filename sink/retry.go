package sink

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// ErrorClass is what the sink does about a failed Cassandra write.
type ErrorClass int

const (
	// Transient errors (timeouts, unavailable or overloaded replicas,
	// connection and pool errors, anything unknown) are retried with
	// exponential backoff, forever: the message stays unacknowledged.
	Transient ErrorClass = iota
	// Setup errors need an operator (bad credentials, missing permission,
	// missing keyspace or table, a statement the server refuses): they are
	// retried like transient ones, since nothing else can be done without
	// losing the message, but logged as errors.
	Setup
	// Poison errors are caused by the row itself (too large, a value the
	// server refuses): retrying cannot help, so the message is
	// dead-lettered with the error as its reason and acknowledged.
	Poison
)

func (c ErrorClass) String() string {
	switch c {
	case Transient:
		return "transient"
	case Setup:
		return "setup"
	case Poison:
		return "poison"
	}
	return "unknown"
}

// Classify sorts a gocql error. Unknown errors are Transient: the sink never
// acknowledges what it did not write, and never dead-letters a message for a
// reason that may pass.
func Classify(err error) ErrorClass {
	var re gocql.RequestError
	if errors.As(err, &re) {
		switch re.Code() {
		case gocql.ErrCodeUnavailable, gocql.ErrCodeOverloaded, gocql.ErrCodeBootstrapping,
			gocql.ErrCodeTruncate, gocql.ErrCodeWriteTimeout, gocql.ErrCodeReadTimeout,
			gocql.ErrCodeWriteFailure, gocql.ErrCodeReadFailure, gocql.ErrCodeCDCWriteFailure,
			gocql.ErrCodeCASWriteUnknown, gocql.ErrCodeServer:
			return Transient
		case gocql.ErrCodeCredentials, gocql.ErrCodeUnauthorized, gocql.ErrCodeSyntax,
			gocql.ErrCodeConfig, gocql.ErrCodeProtocol, gocql.ErrCodeAlreadyExists,
			gocql.ErrCodeUnprepared, gocql.ErrCodeFunctionFailure:
			return Setup
		case gocql.ErrCodeInvalid:
			// InvalidRequest covers both a row the server refuses and a
			// schema that is not there; only the former is the row's fault.
			msg := strings.ToLower(re.Message())
			if strings.Contains(msg, "unconfigured table") || strings.Contains(msg, "does not exist") ||
				strings.Contains(msg, "keyspace") {
				return Setup
			}
			return Poison
		}
		return Transient
	}
	var me gocql.MarshalError
	switch {
	case errors.As(err, &me), errors.Is(err, gocql.ErrFrameTooBig), errors.Is(err, gocql.ErrTooManyStmts):
		return Poison
	case errors.Is(err, gocql.ErrKeyspaceDoesNotExist), errors.Is(err, gocql.ErrNoKeyspace),
		errors.Is(err, gocql.ErrUnsupported):
		return Setup
	}
	// gocql.ErrTimeoutNoResponse, ErrConnectionClosed, ErrNoStreams,
	// ErrNoConnections, ErrUnavailable, ErrSessionClosed,
	// net and syscall errors, EOF: all transient, as is anything else.
	return Transient
}

// isConnError reports errors that mean "no usable connection" rather than a
// server answer; only used to word logs.
func isConnError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, gocql.ErrNoConnections) || errors.Is(err, gocql.ErrConnectionClosed) ||
		errors.Is(err, gocql.ErrTimeoutNoResponse) || errors.Is(err, gocql.ErrSessionClosed)
}

// backoff yields exponentially growing delays with ±20% jitter, capped at
// Max. The zero value is not usable; use newBackoff.
type backoff struct {
	cfg    RetryConfig
	next   time.Duration
	jitter func() float64 // in [0,1); rand.Float64 unless a test sets it
}

func newBackoff(cfg RetryConfig) *backoff {
	return &backoff{cfg: cfg, next: cfg.Initial.D(), jitter: rand.Float64}
}

// Next returns the delay before the next attempt and grows the one after.
func (b *backoff) Next() time.Duration {
	d := b.next
	b.next = min(time.Duration(float64(b.next)*b.cfg.Multiplier), b.cfg.Max.D())
	j := 0.8 + 0.4*b.jitter()
	return time.Duration(float64(d) * j)
}

// Reset starts again from Initial.
func (b *backoff) Reset() { b.next = b.cfg.Initial.D() }

// sleep waits d or until ctx is done, whichever is first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
