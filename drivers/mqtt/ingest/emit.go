package ingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/internal/backoff"
)

// refuse tells the devices that can be told (MQTT 5, on the embedded
// broker) that their messages in ps were not taken because the sink is
// full (reason 0x97, quota exceeded): they keep them and send them again
// later, instead of waiting in the gateway's memory. It marks them refused
// and returns how many.
func (in *Ingest) refuse(ps []pending) int {
	n := 0
	for _, p := range ps {
		if p.it != nil && !p.it.refused && p.it.msg.Refuse != nil && p.it.msg.Refuse(quotaExceeded) {
			p.it.refused = true
			n++
		}
	}
	in.stats.refused.Add(uint64(n))
	return n
}

// quotaExceeded is the MQTT 5 reason code of a refusal for lack of room.
const quotaExceeded = 0x97

// DedupKey identifies a message for the gateway's redelivery check
// (event.Event.DedupKey): the first 16 bytes of SHA-256 over topic, a zero
// byte, and payload.
func DedupKey(topic string, payload []byte) []byte {
	h := sha256.New()
	h.Write([]byte(topic))
	h.Write([]byte{0})
	h.Write(payload)
	return h.Sum(nil)[:16]
}

func (in *Ingest) quarantine(ctx context.Context, sink drivers.Sink, p pending) bool {
	payload := p.it.msg.Payload
	if lim := int(in.cfg.MaxPayload); len(payload) > lim {
		payload = payload[:lim]
	}
	reason := p.bad.String()
	b := backoff.Backoff{Min: retryMin, Max: retryMax}
	for {
		err := sink.Quarantine(ctx, p.it.msg.Topic, payload, reason)
		if err == nil {
			in.stats.quarantine(p.bad.reason)
			in.log.Warn("payload quarantined", "topic", Clip(p.it.msg.Topic), "reason", reason)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		in.stats.emitErrors.Add(1)
		in.log.Error("quarantine failed; retrying", "err", err)
		if !b.Wait(ctx) {
			return false
		}
	}
}

// emit hands the events to the sink as one batch and retries until it takes
// them. ErrFull pauses ingest: the batcher takes nothing more from the queue,
// so nothing more is acked and the broker holds the rest. If the sink says a
// batch holds an invalid event (event.ErrInvalid), the events go one by one
// and the invalid ones are quarantined.
func (in *Ingest) emit(ctx context.Context, sink drivers.Sink, ps []pending) bool {
	if len(ps) == 0 {
		return true
	}
	evs := make([]*event.Event, len(ps))
	for i, p := range ps {
		evs[i] = p.ev
	}
	b := backoff.Backoff{Min: retryMin, Max: retryMax}
	for {
		err := sink.Emit(ctx, evs)
		if err == nil {
			if in.stats.paused.Swap(false) {
				in.log.Info("sink accepts events again; ingest resumed")
			}
			accepted := 0
			for _, p := range ps {
				if p.it != nil {
					accepted++
				}
			}
			in.stats.accepted.Add(uint64(accepted))
			in.stats.batches.Add(1)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		switch {
		case errors.Is(err, event.ErrInvalid) && len(ps) > 1:
			for _, p := range ps {
				if !in.emit(ctx, sink, []pending{p}) {
					return false
				}
			}
			return true
		case errors.Is(err, event.ErrInvalid) && ps[0].it == nil:
			in.stats.emitErrors.Add(1)
			in.log.Error("rate-limit drop report refused as invalid; not reported", "err", err)
			return true
		case errors.Is(err, event.ErrInvalid):
			p := ps[0]
			p.bad = rejectf(ReasonInvalidEvent, "%v", err)
			return in.quarantine(ctx, sink, p)
		case errors.Is(err, drivers.ErrFull):
			in.stats.fullRetries.Add(1)
			if !in.stats.paused.Swap(true) {
				in.log.Warn("stream full; ingest paused, the broker holds new messages", "stream", evs[0].Stream)
			}
			if n := in.refuse(ps); n > 0 {
				ps = slices.DeleteFunc(ps, func(p pending) bool { return p.it != nil && p.it.refused })
				if len(ps) == 0 {
					return true
				}
				evs = evs[:0]
				for _, p := range ps {
					evs = append(evs, p.ev)
				}
			}
		default:
			in.stats.emitErrors.Add(1)
			in.log.Error("emit failed; retrying", "err", fmt.Errorf("%d events: %w", len(evs), err))
		}
		if !b.Wait(ctx) {
			return false
		}
	}
}

// EmitReport emits one event of the transport's own (e.g. a gap the broker
// reported), outside any batch, retrying until the sink takes it or ctx
// ends (false). An event refused as invalid is logged and dropped (true).
// what names the report in log lines ("broker drop gap").
func (in *Ingest) EmitReport(ctx context.Context, sink drivers.Sink, ev *event.Event, what string) bool {
	bo := backoff.Backoff{Min: retryMin, Max: retryMax}
	for {
		err := sink.Emit(ctx, []*event.Event{ev})
		switch {
		case err == nil:
			return true
		case ctx.Err() != nil:
			in.log.Warn(what+" not recorded: shutting down", "attrs", ev.Attrs)
			return false
		case errors.Is(err, event.ErrInvalid):
			in.stats.emitErrors.Add(1)
			in.log.Error(what+" refused as invalid; not reported", "err", err)
			return true
		case !errors.Is(err, drivers.ErrFull):
			in.stats.emitErrors.Add(1)
			in.log.Error(what+": emit failed; retrying", "err", err)
		}
		if !bo.Wait(ctx) {
			return false
		}
	}
}
