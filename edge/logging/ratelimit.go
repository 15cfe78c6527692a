package logging

import (
	"context"
	"log/slog"
	"time"

	"github.com/edgegw/gateway/internal/loglimit"
)

// ComponentKey is the attribute that names the part of the gateway a record
// comes from; the rate limit keys on it and the message.
const ComponentKey = "component"

// SuppressedKey is the attribute that carries how many records of the same
// message and component were held back before this one: loglimit.Key, the
// name every rate-limited log line of the gateway uses.
const SuppressedKey = loglimit.Key

// RateLimitOptions configure RateLimit.
type RateLimitOptions struct {
	// Every is the interval: a record whose message and component were
	// written less than Every ago is held back (and counted). <= 0: no limit.
	Every time.Duration
	// MinLevel is the lowest level limited; records below it always pass.
	// Default (0 = info) is raised to warn: only warnings and errors repeat
	// in storms worth limiting.
	MinLevel slog.Level
	// MaxKeys bounds the remembered (message, component) pairs; past it,
	// the pairs whose interval has passed are forgotten. Default 1024.
	MaxKeys int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// RateLimit wraps next so that records at MinLevel and above with the same
// message and component are written at most once per o.Every. The first
// record written after a quiet spell carries SuppressedKey with the number
// held back (when there were any). Handlers derived with WithAttrs and
// WithGroup share the limit. With o.Every <= 0 it returns next.
func RateLimit(next slog.Handler, o RateLimitOptions) slog.Handler {
	if o.Every <= 0 {
		return next
	}
	if o.MinLevel <= slog.LevelInfo {
		o.MinLevel = slog.LevelWarn
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = 1024
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &rateLimited{next: next, lim: loglimit.New[limitKey](o.Every, o.MaxKeys), minLevel: o.MinLevel, now: o.Now}
}

type rateLimited struct {
	next      slog.Handler
	lim       *loglimit.Limiter[limitKey] // shared by the handlers derived from one
	minLevel  slog.Level
	now       func() time.Time
	component string // from WithAttrs, outside any group
	grouped   bool   // a WithGroup happened: later attrs are not top-level
}

var _ slog.Handler = (*rateLimited)(nil)

func (h *rateLimited) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *rateLimited) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < h.minLevel {
		return h.next.Handle(ctx, r)
	}
	comp := h.component
	if !h.grouped {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == ComponentKey {
				comp = a.Value.String()
				return false
			}
			return true
		})
	}
	ok, held := h.lim.Allow(limitKey{msg: r.Message, component: comp}, h.now())
	if !ok {
		return nil
	}
	if held > 0 {
		r = r.Clone()
		r.AddAttrs(loglimit.Held(held))
	}
	return h.next.Handle(ctx, r)
}

func (h *rateLimited) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	if !h.grouped {
		for _, a := range as {
			if a.Key == ComponentKey {
				c.component = a.Value.String()
			}
		}
	}
	return &c
}

func (h *rateLimited) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.next = h.next.WithGroup(name)
	c.grouped = true
	return &c
}

type limitKey struct{ msg, component string }
