package sink

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/edgegw/gateway/internal/backoff"
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

// newBackoff is the backoff cfg describes: delays from Initial, times
// Multiplier after each failure, capped at Max, each with ±20% jitter.
func newBackoff(cfg RetryConfig) *backoff.Backoff {
	return &backoff.Backoff{Min: cfg.Initial.D(), Max: cfg.Max.D(), Factor: cfg.Multiplier, Jitter: [2]float64{0.8, 1.2}}
}

// sleep waits d or until ctx is done, whichever is first; then it returns
// ctx's error.
func sleep(ctx context.Context, d time.Duration) error {
	if !backoff.Sleep(ctx, d) {
		return ctx.Err()
	}
	return nil
}
