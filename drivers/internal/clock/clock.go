// Package clock is the time source and log limiter the field I/O drivers share;
// tests inject a fake clock so that they never sleep.
package clock

import (
	"sync"
	"time"
)

// Clock is a driver's time source; tests inject a fake one so that they
// never sleep.
type Clock interface {
	Now() time.Time
	// At returns a channel that receives once when the clock reaches t (at
	// once when t is not after Now). Deadlines are absolute so that a
	// schedule does not drift and a fake clock can be advanced at any time.
	At(t time.Time) <-chan time.Time
}

// Real is the wall clock.
type Real struct{}

func (Real) Now() time.Time                  { return time.Now() }
func (Real) At(t time.Time) <-chan time.Time { return time.After(time.Until(t)) }

// NextTick returns the first point of the grid start + k*period after now.
func NextTick(start time.Time, period time.Duration, now time.Time) time.Time {
	if now.Before(start) {
		return start
	}
	k := now.Sub(start)/period + 1
	return start.Add(k * period)
}

// LogLimiter lets a message through at most once per period per key, and
// says how many it held back meanwhile.
type LogLimiter struct {
	period time.Duration

	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int
}

// NewLogLimiter lets each key through at most once per period.
func NewLogLimiter(period time.Duration) *LogLimiter {
	return &LogLimiter{period: period, last: map[string]time.Time{}, held: map[string]int{}}
}

// Allow reports whether to log key now, and how many were suppressed since
// the last one logged.
func (l *LogLimiter) Allow(key string, now time.Time) (bool, int) {
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
