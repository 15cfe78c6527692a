package event

import (
	"fmt"
	"math"
	"time"
)

// Reasons a gap event gives. A producer may use others; these are the ones
// the buffer uses.
const (
	GapOverflow   = "overflow"    // the stream hit its limit under drop-oldest
	GapTTL        = "ttl"         // events aged out before the uplink took them
	GapDiskBudget = "disk-budget" // the shared disk budget evicted the stream
	GapCorrupt    = "corrupt"     // stored events could not be read back
)

// Gap describes events that were lost: the inclusive range of sequence
// numbers [From, To] of the stream the gap event belongs to, how many of them
// were lost (Count may be below To-From+1 when the range has holes: seqs
// that were not lost, such as the stream's own earlier gap events), and why.
// One gap event may report a long run of drops; a gap event's own seq comes
// after the range it reports.
//
// For losses upstream of the gateway the range is not the stream's: a gap
// of reason "broker-dropped" counts a site broker's dropped-message counter
// (From..To are its values), one of reason "device-counter" a device's own
// message counter (source: the device). Count is exact in every case.
//
// On the wire a gap is an event of kind "gap" with the attributes
//
//	from:   uint, first lost seq
//	to:     uint, last lost seq (>= from)
//	count:  uint, number of events lost (1 … to-from+1)
//	reason: text, e.g. "overflow", "ttl", "disk-budget"
type Gap struct {
	From, To, Count uint64
	Reason          string
}

// NewGap returns the event that reports g on stream, from source (e.g.
// "buffer"), at time at. Gateway, Seq, Received, Boot and Mono are left for
// the sink to stamp, like any driver's event. It fails when g is
// inconsistent (see Gap.Validate).
func NewGap(stream, source string, g Gap, at time.Time) (*Event, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return &Event{
		Stream: stream,
		Source: source,
		Kind:   KindGap,
		Time:   at,
		Attrs: map[string]any{
			"from":   normUint(g.From),
			"to":     normUint(g.To),
			"count":  normUint(g.Count),
			"reason": g.Reason,
		},
	}, nil
}

// Validate checks that From <= To, 1 <= Count <= To-From+1 and that there is
// a reason.
func (g Gap) Validate() error {
	switch {
	case g.From > g.To:
		return fmt.Errorf("event: gap from %d is after to %d", g.From, g.To)
	case g.Count == 0:
		return fmt.Errorf("event: gap count is zero")
	case g.To-g.From != math.MaxUint64 && g.Count > g.To-g.From+1:
		return fmt.Errorf("event: gap count %d exceeds the range %d…%d", g.Count, g.From, g.To)
	case g.Reason == "":
		return fmt.Errorf("event: gap reason is empty")
	}
	return nil
}

// GapOf reads the Gap out of an event of kind "gap".
func GapOf(e *Event) (Gap, error) {
	if e.Kind != KindGap {
		return Gap{}, fmt.Errorf("event: kind %q is not %q", e.Kind, KindGap)
	}
	var g Gap
	var err error
	if g.From, err = uintAttr(e.Attrs, "from"); err != nil {
		return Gap{}, err
	}
	if g.To, err = uintAttr(e.Attrs, "to"); err != nil {
		return Gap{}, err
	}
	if g.Count, err = uintAttr(e.Attrs, "count"); err != nil {
		return Gap{}, err
	}
	r, ok := e.Attrs["reason"].(string)
	if !ok {
		return Gap{}, fmt.Errorf("event: gap attribute reason is missing or not text")
	}
	g.Reason = r
	return g, g.Validate()
}

func uintAttr(attrs map[string]any, k string) (uint64, error) {
	switch v := attrs[k].(type) {
	case int64:
		if v >= 0 {
			return uint64(v), nil
		}
	case uint64:
		return v, nil
	}
	return 0, fmt.Errorf("event: gap attribute %s is missing or not an unsigned integer", k)
}
