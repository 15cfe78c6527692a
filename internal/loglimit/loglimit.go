// Package loglimit is the gateway's one limit on repeated log lines: a line
// of a kind (a key) is written at most once per interval, the lines held back
// meanwhile are counted, and the next line written carries the count under
// one attribute, Key. Every rate-limited log line of the gateway, the sink
// and the drivers reports what it held back this way.
package loglimit

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Key is the log attribute that carries how many lines of the same kind
// were held back before the one that carries it.
const Key = "suppressed"

// Held is the attribute saying that n lines were held back: Key=n, or, when
// n is 0, the empty attribute, which slog's handlers leave out.
func Held(n int) slog.Attr {
	if n == 0 {
		return slog.Attr{}
	}
	return slog.Int(Key, n)
}

// DefaultMaxKeys bounds the keys a Limiter remembers unless told otherwise.
const DefaultMaxKeys = 1024

// Limiter lets each key through at most once per interval and counts what
// it holds back. It is safe for concurrent use. Time is passed in, so that
// callers with a fake clock never sleep.
type Limiter[K comparable] struct {
	every   time.Duration
	maxKeys int

	mu   sync.Mutex
	seen map[K]*entry
}

type entry struct {
	last time.Time // when a line of the key was last let through
	held int       // lines held back since
}

// New returns a limiter letting each key through at most once per every
// (<= 0: always), remembering at most maxKeys keys (<= 0: DefaultMaxKeys).
// Past maxKeys it forgets the keys whose interval has passed, or, when none
// has, all of them (their counts are lost: a storm of distinct lines is not
// what the limit is for).
func New[K comparable](every time.Duration, maxKeys int) *Limiter[K] {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Limiter[K]{every: every, maxKeys: maxKeys, seen: map[K]*entry{}}
}

// Allow reports whether to write a line of k at now and, if so, how many
// were held back since the last one written.
func (l *Limiter[K]) Allow(k K, now time.Time) (ok bool, held int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, found := l.seen[k]
	if found && now.Sub(e.last) < l.every {
		e.held++
		return false, 0
	}
	if !found {
		if len(l.seen) >= l.maxKeys {
			l.prune(now)
		}
		e = &entry{}
		l.seen[k] = e
	}
	held = e.held
	e.last, e.held = now, 0
	return true, held
}

// Wait is how long from now until a line of k may be written: 0 when it
// may be now.
func (l *Limiter[K]) Wait(k K, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.seen[k]; ok {
		return max(0, l.every-now.Sub(e.last))
	}
	return 0
}

// Flush takes the count of k's held-back lines, for a caller that writes one
// line for them now; when there were any, that line counts as k's latest.
func (l *Limiter[K]) Flush(k K, now time.Time) (held int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.seen[k]
	if !ok || e.held == 0 {
		return 0
	}
	held = e.held
	e.last, e.held = now, 0
	return held
}

// Len is the number of keys remembered.
func (l *Limiter[K]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}

func (l *Limiter[K]) prune(now time.Time) {
	for k, e := range l.seen {
		if now.Sub(e.last) >= l.every {
			delete(l.seen, k)
		}
	}
	if len(l.seen) >= l.maxKeys {
		clear(l.seen)
	}
}

// Summary logs one kind of event at most once per interval, and never
// loses the last ones: the first event after a quiet spell is logged at
// once; those that come within the interval are held, and when it has
// passed one line is written with the latest event's attributes and Key,
// the number of the others held back. After Stop every event is logged as
// it comes. It keeps time with the wall clock.
type Summary struct {
	log   *slog.Logger
	level slog.Level
	msg   string
	lim   *Limiter[struct{}]

	mu      sync.Mutex
	attrs   []any // the latest held event's
	timer   *time.Timer
	stopped bool
}

// NewSummary logs msg at level to log at most once per every.
func NewSummary(log *slog.Logger, level slog.Level, msg string, every time.Duration) *Summary {
	return &Summary{log: log, level: level, msg: msg, lim: New[struct{}](every, 1)}
}

// Event records one event with its attributes (slog key-value pairs or
// Attrs), logging it now or later.
func (s *Summary) Event(attrs ...any) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		s.emit(attrs, 0)
		return
	}
	now := time.Now()
	ok, held := s.lim.Allow(struct{}{}, now)
	if !ok {
		s.attrs = attrs
		if s.timer == nil {
			s.timer = time.AfterFunc(s.lim.Wait(struct{}{}, now), s.flush)
		}
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.emit(attrs, held)
}

func (s *Summary) flush() {
	s.mu.Lock()
	s.timer = nil
	attrs, n := s.take()
	s.mu.Unlock()
	s.emit(attrs, n)
}

// take returns the held events: the latest one's attributes and the number
// of the others. s.mu is held.
func (s *Summary) take() ([]any, int) {
	n := s.lim.Flush(struct{}{}, time.Now())
	attrs := s.attrs
	s.attrs = nil
	if n == 0 {
		return nil, -1
	}
	return attrs, n - 1
}

// Stop writes what is held; later events are logged as they come.
func (s *Summary) Stop() {
	s.mu.Lock()
	s.stopped = true
	attrs, n := []any(nil), -1
	if s.timer != nil && s.timer.Stop() {
		s.timer = nil
		attrs, n = s.take()
	}
	s.mu.Unlock()
	s.emit(attrs, n)
}

// emit logs one event with n others held back before it; n < 0: nothing.
func (s *Summary) emit(attrs []any, n int) {
	if n < 0 {
		return
	}
	s.log.Log(context.Background(), s.level, s.msg, append(attrs, Held(n))...)
}
