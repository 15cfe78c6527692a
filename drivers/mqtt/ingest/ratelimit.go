package ingest

import (
	"fmt"
	"strings"
	"time"

	"github.com/edgegw/gateway/event"
)

// RateLimit bounds how many messages one source may turn into events: a
// token bucket per source (the rendered Subscription.Source, per
// subscription) that holds Burst tokens and refills at EventsPerSecond.
//
// A message that finds its source's bucket empty is acknowledged and dropped
// before it is parsed: it reaches neither the buffer nor the quarantine. The
// drop is not silent: it is counted (Stats.RateLimited), logged at most once
// per source every 10s, and reported as an event of kind "dropped" (reason
// "rate_limited", with the count, the first and last drop time and the last
// topic) in the subscription's stream, in the same commit as the first drop
// of a source and then at most every 10s while the source keeps exceeding its
// limit. Dropping, not delaying, is deliberate: the broker's in-flight window
// is shared by every topic of the session, so holding back one source's
// messages unacknowledged would stall all the others behind them.
//
// Choose limits well above what a healthy device sends (a scanner: a few
// scans per second; a burst covers a batch upload after a reconnect): the
// limit is for a device gone wrong, and a legitimate device that exceeds it
// loses data (reported as above). Per-source limiting assumes the source
// names the device (e.g. "{device}"), and that the broker's ACLs keep a
// device to its own topics; a client free to publish under many sources is
// bounded only by the broker. At most 10000 sources are tracked per
// subscription; beyond that, sources not yet tracked share one bucket.
type RateLimit struct {
	// EventsPerSecond is the sustained rate allowed per source. 0 turns
	// rate limiting off. Default 0 (off), at most 1000000.
	EventsPerSecond float64 `yaml:"events_per_second"`
	// Burst is how many messages a source may send at once above the rate
	// (the bucket's size). Default 2×EventsPerSecond, at least 1.
	Burst int `yaml:"burst"`
}

// KindDropped is the kind of the event that reports rate-limited messages.
const KindDropped = "dropped"

// ReasonRateLimited is the reason a KindDropped event gives.
const ReasonRateLimited = "rate_limited"

const (
	maxRate           = 1e6
	maxTrackedSources = 10000
	// rateReport is the longest a source's drop count waits to be reported
	// (event and warning) while it keeps exceeding its limit.
	rateReport = 10 * time.Second
	// overflowSource is the bucket (and reported source) shared by sources
	// beyond maxTrackedSources.
	overflowSource = "*untracked-sources*"
)

func (r *RateLimit) validate(v *validator, path string) {
	if r.EventsPerSecond < 0 || r.EventsPerSecond > maxRate || r.EventsPerSecond != r.EventsPerSecond {
		v.add(path+".events_per_second", "%v is outside [0 (off), %g]", r.EventsPerSecond, maxRate)
	}
	if r.Burst < 0 || r.Burst > maxRate {
		v.add(path+".burst", "%d is outside [0 (default), %g]", r.Burst, maxRate)
	}
	if r.Burst > 0 && r.EventsPerSecond == 0 {
		v.add(path+".burst", "needs events_per_second")
	}
}

// limiter is one subscription's token buckets, by source. Only the batcher
// goroutine uses it.
type limiter struct {
	rate, burst float64
	buckets     map[string]*bucket
	dirty       map[string]*bucket // buckets with drops not yet reported
}

type bucket struct {
	tokens      float64
	last        time.Time // of the last refill
	dropped     uint64    // since the last report
	first, prev time.Time // first and last drop since the last report
	topic       string    // of the last drop
	reported    time.Time // zero: never
}

func newLimiter(r RateLimit) *limiter {
	if r.EventsPerSecond <= 0 {
		return nil
	}
	burst := float64(r.Burst)
	if burst == 0 {
		burst = max(1, 2*r.EventsPerSecond)
	}
	return &limiter{rate: r.EventsPerSecond, burst: burst, buckets: map[string]*bucket{}, dirty: map[string]*bucket{}}
}

// allow takes a token from source's bucket at now; false means drop the
// message (the drop is recorded for the next report).
func (l *limiter) allow(source, topic string, now time.Time) bool {
	b := l.buckets[source]
	if b == nil {
		if len(l.buckets) >= maxTrackedSources {
			l.prune(now)
		}
		if len(l.buckets) >= maxTrackedSources {
			source = overflowSource
			b = l.buckets[source]
		}
		if b == nil {
			b = &bucket{tokens: l.burst, last: now}
			l.buckets[source] = b
		}
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	if b.dropped == 0 {
		b.first = now
	}
	b.dropped++
	b.prev = now
	b.topic = topic
	l.dirty[source] = b
	return false
}

// refill adds the tokens earned since the last refill. A clock that went
// backwards earns nothing (and restarts from now).
func (l *limiter) refill(b *bucket, now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(l.burst, b.tokens+d.Seconds()*l.rate)
	}
	b.last = now
}

// prune forgets the buckets that are full and have nothing to report: a
// full bucket behaves exactly like a new one.
func (l *limiter) prune(now time.Time) {
	for src, b := range l.buckets {
		if _, pending := l.dirty[src]; pending {
			continue
		}
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.buckets, src)
		}
	}
}

// dropReport is one source's drops, due to be reported.
type dropReport struct {
	source, stream, topic string
	count                 uint64
	first, last           time.Time
	rate, burst           float64
}

// due returns the reports due at now: a source's first drops at once, later
// ones once rateReport has passed since its last report. It resets what it
// returns; the caller must report it.
func (l *limiter) due(stream string, now time.Time) []dropReport {
	var out []dropReport
	for src, b := range l.dirty {
		if !b.reported.IsZero() && now.Sub(b.reported) < rateReport {
			continue
		}
		out = append(out, dropReport{source: src, stream: stream, topic: b.topic, count: b.dropped,
			first: b.first, last: b.prev, rate: l.rate, burst: l.burst})
		b.dropped, b.reported = 0, now
		delete(l.dirty, src)
	}
	return out
}

// event is the report as an event of kind "dropped".
func (r dropReport) event(now time.Time) *event.Event {
	return &event.Event{
		Stream: r.stream, Source: strings.ToValidUTF8(r.source, "?"), Kind: KindDropped, Time: now, Received: now,
		Attrs: map[string]any{
			"reason":            ReasonRateLimited,
			"count":             int64(min(r.count, 1<<62)),
			"first":             attrTime(r.first),
			"last":              attrTime(r.last),
			"topic":             strings.ToValidUTF8(Clip(r.topic), "?"),
			"events_per_second": r.rate,
			"burst":             int64(r.burst),
		},
	}
}

func (r dropReport) String() string {
	return fmt.Sprintf("%d messages of source %q dropped (rate limit %g/s, burst %g)", r.count, r.source, r.rate, r.burst)
}
