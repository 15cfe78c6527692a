package i2c

import iclock "github.com/edgegw/gateway/drivers/internal/clock"

// The driver's time source and log limiter, shared with the other field
// I/O drivers.
type (
	clock      = iclock.Clock
	realClock  = iclock.Real
	logLimiter = iclock.LogLimiter
)

var (
	nextTick      = iclock.NextTick
	newLogLimiter = iclock.NewLogLimiter
)
