package harness

import (
	"io"
	"log/slog"

	plog "github.com/apache/pulsar-client-go/pulsar/log"
)

// quietLogger keeps the Pulsar client's chatter out of test output.
func quietLogger() plog.Logger {
	return plog.NewLoggerWithSlog(slog.New(slog.NewTextHandler(io.Discard, nil)))
}
