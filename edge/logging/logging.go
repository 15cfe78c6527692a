package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// DefaultRepeatEvery is the rate limit's interval when Options.RepeatEvery
// is zero.
const DefaultRepeatEvery = 30 * time.Second

// Options configure New. The zero value logs text at info level and limits
// repeated warnings and errors to one per DefaultRepeatEvery.
type Options struct {
	// Level is the minimum level: debug, info, warn or error
	// (case-insensitive). Default ("") info.
	Level string
	// Format is "text" (default, also for "") or "json".
	Format string
	// RepeatEvery is the rate limit for records at warn level and above:
	// one per message and component per interval. Default (0)
	// DefaultRepeatEvery; negative turns the limit off.
	RepeatEvery time.Duration
	// Now is the rate limit's clock. Default time.Now.
	Now func() time.Time
}

// ParseLevel maps a config level name to a slog.Level; "" is info.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("logging: unknown level %q (want debug, info, warn or error)", s)
}

// New returns a logger writing to w as o says. It fails on an unknown level
// or format; it does no I/O.
func New(w io.Writer, o Options) (*slog.Logger, error) {
	lvl, err := ParseLevel(o.Level)
	if err != nil {
		return nil, err
	}
	ho := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch strings.ToLower(o.Format) {
	case "", "text":
		h = slog.NewTextHandler(w, ho)
	case "json":
		h = slog.NewJSONHandler(w, ho)
	default:
		return nil, fmt.Errorf("logging: unknown format %q (want text or json)", o.Format)
	}
	every := o.RepeatEvery
	if every == 0 {
		every = DefaultRepeatEvery
	}
	if every > 0 {
		h = RateLimit(h, RateLimitOptions{Every: every, Now: o.Now})
	}
	return slog.New(h), nil
}
