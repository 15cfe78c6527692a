package event

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// tagEpochTime is CBOR tag 1: epoch-based date/time (RFC 8949 §3.4.2).
const tagEpochTime = 1

// Normalize returns a copy of e in the form Unmarshal returns: times in UTC
// truncated to the microsecond, attribute values converted to their
// canonical Go types (see NormalizeAttr), empty Attrs and Raw as nil. It
// fails, wrapping ErrInvalid, when an attribute has an unsupported type. The
// copy shares Raw and []byte attribute values with e.
func Normalize(e *Event) (*Event, error) {
	n := *e
	n.Time = normTime(e.Time)
	n.Received = normTime(e.Received)
	n.Attrs = nil
	if len(e.Attrs) > 0 {
		n.Attrs = make(map[string]any, len(e.Attrs))
		for k, v := range e.Attrs {
			nv, err := NormalizeAttr(v)
			if err != nil {
				return nil, &FieldError{Field: "attrs." + k, Err: err}
			}
			n.Attrs[k] = nv
		}
	}
	if len(e.Raw) == 0 {
		n.Raw = nil
	}
	return &n, nil
}

func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Truncate(time.Microsecond).UTC()
}

// NormalizeAttr converts an attribute value to the Go type Unmarshal gives
// back for it:
//
//	string                    -> string (must be valid UTF-8)
//	int, int8 … int64         -> int64
//	uint, uint8 … uint64      -> int64, or uint64 when above math.MaxInt64
//	float32, float64          -> float64
//	bool                      -> bool
//	[]byte                    -> []byte (nil becomes empty)
//	time.Time                 -> time.Time, UTC, truncated to the microsecond,
//	                             within [MinTime, MaxTime)
//
// Anything else (nil, maps, slices, structs) is refused.
func NormalizeAttr(v any) (any, error) {
	switch x := v.(type) {
	case string:
		if !utf8.ValidString(x) {
			return nil, errors.New("text is not valid UTF-8")
		}
		return x, nil
	case bool:
		return x, nil
	case int:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int64:
		return x, nil
	case uint:
		return normUint(uint64(x)), nil
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint64:
		return normUint(x), nil
	case float32:
		return float64(x), nil
	case float64:
		return x, nil
	case []byte:
		if x == nil {
			return []byte{}, nil
		}
		return x, nil
	case time.Time:
		t := normTime(x)
		if err := checkTime(t); err != nil {
			return nil, err
		}
		return t, nil
	default:
		return nil, fmt.Errorf("unsupported attribute type %T", v)
	}
}

func normUint(u uint64) any {
	if u <= math.MaxInt64 {
		return int64(u)
	}
	return u
}

// wireAttr maps a normalised attribute to what the encoder writes. Times
// become tag 1 with integer seconds, or float seconds when there is a
// fraction: below MaxTime, microseconds since the epoch fit a float64's
// 53-bit mantissa, and the nearest float to us/1e6 decodes back exactly.
func wireAttr(v any) any {
	t, ok := v.(time.Time)
	if !ok {
		return v
	}
	us := t.UnixMicro()
	if us%1_000_000 == 0 {
		return cbor.Tag{Number: tagEpochTime, Content: us / 1_000_000}
	}
	return cbor.Tag{Number: tagEpochTime, Content: float64(us) / 1e6}
}

// decodeAttr decodes one attribute value and normalises it.
func decodeAttr(raw cbor.RawMessage) (any, error) {
	if len(raw) > 0 && raw[0]>>5 == 6 { // major type 6: a tag
		var tag cbor.RawTag
		if err := decMode.Unmarshal(raw, &tag); err != nil {
			return nil, err
		}
		if tag.Number != tagEpochTime {
			return nil, fmt.Errorf("unsupported tag %d", tag.Number)
		}
		var secs any
		if err := valMode.Unmarshal(tag.Content, &secs); err != nil {
			return nil, err
		}
		t, err := epochTime(secs)
		if err != nil {
			return nil, err
		}
		if err := checkTime(t); err != nil {
			return nil, err
		}
		return t, nil
	}
	var v any
	if err := valMode.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case string, bool, int64, float64, []byte:
		return x, nil
	case uint64:
		return normUint(x), nil
	case nil:
		return nil, errors.New("null is not an attribute value")
	default:
		return nil, fmt.Errorf("unsupported attribute value of type %T", v)
	}
}

// epochTime converts the content of tag 1 to a time, to the microsecond.
func epochTime(secs any) (time.Time, error) {
	switch s := secs.(type) {
	case uint64:
		if s > math.MaxInt64 {
			return time.Time{}, errors.New("epoch time out of range")
		}
		return time.Unix(int64(s), 0).UTC(), nil
	case int64:
		return time.Unix(s, 0).UTC(), nil
	case float64:
		if math.IsNaN(s) || math.IsInf(s, 0) || s < -1e15 || s > 1e15 {
			return time.Time{}, errors.New("epoch time out of range")
		}
		whole := math.Floor(s)
		us := math.Round((s - whole) * 1e6)
		return time.Unix(int64(whole), int64(us)*1000).UTC(), nil
	default:
		return time.Time{}, fmt.Errorf("tag 1 holds %T, want a number", secs)
	}
}
