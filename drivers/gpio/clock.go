package gpio

import (
	"sync"
	"time"
)

// clock is the driver's time source; tests inject a fake one so that they
// never sleep.
type clock interface {
	Now() time.Time
	// At returns a channel that receives once when the clock reaches t (at
	// once when t is not after Now). Deadlines are absolute so that a
	// schedule does not drift and a fake clock can be advanced at any time.
	At(t time.Time) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                  { return time.Now() }
func (realClock) At(t time.Time) <-chan time.Time { return time.After(time.Until(t)) }

// nextTick returns the first point of the grid start + k*period after now.
func nextTick(start time.Time, period time.Duration, now time.Time) time.Time {
	if now.Before(start) {
		return start
	}
	k := now.Sub(start)/period + 1
	return start.Add(k * period)
}

// logLimiter lets a message through at most once per period per key, and
// says how many it held back meanwhile.
type logLimiter struct {
	period time.Duration

	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int
}

func newLogLimiter(period time.Duration) *logLimiter {
	return &logLimiter{period: period, last: map[string]time.Time{}, held: map[string]int{}}
}

// allow reports whether to log key now, and how many were suppressed since
// the last one logged.
func (l *logLimiter) allow(key string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.last[key]; ok && now.Sub(t) < l.period {
		l.held[key]++
		return false, 0
	}
	n := l.held[key]
	l.last[key] = now
	l.held[key] = 0
	return true, n
}
