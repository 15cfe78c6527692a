package event

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// MaxSize is the largest encoded event Marshal produces and Unmarshal
// accepts, in bytes. Drivers bound Raw well below it.
const MaxSize = 1 << 20

// MaxAttrs is the largest number of attributes an event may carry.
const MaxAttrs = 256

// The range of times the codec accepts, for the envelope times and for time
// attributes: [MinTime, MaxTime). Inside it a float of epoch seconds still
// holds the microsecond, so every time round-trips exactly.
var (
	MinTime = time.Unix(0, 0).UTC()          // 1970-01-01T00:00:00Z
	MaxTime = time.Unix(7258118400, 0).UTC() // 2200-01-01T00:00:00Z
)

// ErrInvalid is wrapped by every error Marshal and Unmarshal return for an
// event or an encoding that breaks the contract (as opposed to a bug): a
// reader sends such input to its dead-letter place, it does not retry.
var ErrInvalid = errors.New("event: invalid")

// FieldError says which field broke the contract and how. Field is the CBOR
// key, with "attrs.<name>" for an attribute; it is empty for an error of the
// encoding as a whole. It wraps ErrInvalid.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return "event: " + e.Err.Error()
	}
	return "event: " + e.Field + ": " + e.Err.Error()
}

// Unwrap returns both the cause and ErrInvalid, so errors.Is(err, ErrInvalid)
// holds for every FieldError.
func (e *FieldError) Unwrap() []error { return []error{e.Err, ErrInvalid} }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// wireOut is the encoded form. Field order does not matter: core
// deterministic encoding sorts the keys.
type wireOut struct {
	Gateway  string         `cbor:"gateway"`
	Stream   string         `cbor:"stream"`
	Seq      uint64         `cbor:"seq"`
	Source   string         `cbor:"source"`
	Kind     string         `cbor:"kind"`
	Time     int64          `cbor:"time"`
	Received *int64         `cbor:"received,omitempty"`
	Boot     uint64         `cbor:"boot"`
	Mono     uint64         `cbor:"mono"`
	Attrs    map[string]any `cbor:"attrs,omitempty"`
	Raw      []byte         `cbor:"raw,omitempty"`
}

var (
	encMode cbor.EncMode
	decMode cbor.DecMode // the envelope
	valMode cbor.DecMode // one attribute value, tags handled by us
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	base := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		MaxNestedLevels:   4,
		MaxArrayElements:  16,
		MaxMapPairs:       MaxAttrs,
		IntDec:            cbor.IntDecConvertNone,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		BignumTag:         cbor.BignumTagForbidden,
		UTF8:              cbor.UTF8RejectInvalid,
	}
	if decMode, err = base.DecMode(); err != nil {
		panic(err)
	}
	base.TagsMd = cbor.TagsForbidden
	if valMode, err = base.DecMode(); err != nil {
		panic(err)
	}
}

// Marshal encodes e (core deterministic CBOR). It normalises a copy first and
// refuses an event that breaks the contract: a missing required field
// (gateway, stream, source, kind, time), a time outside [MinTime, MaxTime),
// text that is not UTF-8, an attribute of an unsupported type, or an
// encoding larger than MaxSize. Such errors wrap ErrInvalid.
func Marshal(e *Event) ([]byte, error) {
	if e == nil {
		return nil, fieldErr("", "nil event")
	}
	n, err := Normalize(e)
	if err != nil {
		return nil, err
	}
	if err := check(n); err != nil {
		return nil, err
	}
	w := wireOut{
		Gateway: n.Gateway, Stream: n.Stream, Seq: n.Seq, Source: n.Source, Kind: n.Kind,
		Time: n.Time.UnixMicro(), Boot: n.Boot, Mono: n.Mono, Raw: n.Raw,
	}
	if !n.Received.IsZero() {
		us := n.Received.UnixMicro()
		w.Received = &us
	}
	if len(n.Attrs) > 0 {
		w.Attrs = make(map[string]any, len(n.Attrs))
		for k, v := range n.Attrs {
			w.Attrs[k] = wireAttr(v)
		}
	}
	b, err := encMode.Marshal(&w)
	if err != nil {
		return nil, &FieldError{Err: err}
	}
	if len(b) > MaxSize {
		return nil, fieldErr("", "encoded size %d exceeds %d bytes", len(b), MaxSize)
	}
	return b, nil
}

// Unmarshal decodes one event. It rejects: anything but exactly one
// definite-length CBOR map; duplicate keys; nesting deeper than 4 or more
// than MaxAttrs pairs in a map; input larger than MaxSize; a missing, null or
// empty required field (gateway, stream, seq, source, kind, time); a field of
// the wrong type; an attribute value other than those listed in event.cddl;
// times outside [MinTime, MaxTime). Unknown top-level keys are ignored. Every
// error wraps ErrInvalid and, where one field is at fault, is a *FieldError.
func Unmarshal(b []byte) (*Event, error) {
	if len(b) > MaxSize {
		return nil, fieldErr("", "size %d exceeds %d bytes", len(b), MaxSize)
	}
	var top map[string]cbor.RawMessage
	if err := decMode.Unmarshal(b, &top); err != nil {
		return nil, &FieldError{Err: err}
	}
	if top == nil {
		return nil, fieldErr("", "not a map")
	}
	e := &Event{}
	var timeUS, recvUS *int64
	fields := []struct {
		key      string
		dst      any
		required bool
	}{
		{"gateway", &e.Gateway, true},
		{"stream", &e.Stream, true},
		{"seq", &e.Seq, true},
		{"source", &e.Source, true},
		{"kind", &e.Kind, true},
		{"time", &timeUS, true},
		{"received", &recvUS, false},
		{"boot", &e.Boot, false},
		{"mono", &e.Mono, false},
		{"raw", &e.Raw, false},
	}
	for _, f := range fields {
		raw, ok := top[f.key]
		if !ok || isNull(raw) {
			if f.required {
				return nil, fieldErr(f.key, "missing")
			}
			continue
		}
		if err := valMode.Unmarshal(raw, f.dst); err != nil {
			return nil, &FieldError{Field: f.key, Err: err}
		}
	}
	e.Time = time.UnixMicro(*timeUS).UTC()
	if recvUS != nil {
		e.Received = time.UnixMicro(*recvUS).UTC()
	}
	if len(e.Raw) == 0 {
		e.Raw = nil
	}
	if raw, ok := top["attrs"]; ok && !isNull(raw) {
		var attrs map[string]cbor.RawMessage
		if err := decMode.Unmarshal(raw, &attrs); err != nil {
			return nil, &FieldError{Field: "attrs", Err: err}
		}
		if len(attrs) > 0 {
			e.Attrs = make(map[string]any, len(attrs))
		}
		for k, raw := range attrs {
			v, err := decodeAttr(raw)
			if err != nil {
				return nil, &FieldError{Field: "attrs." + k, Err: err}
			}
			e.Attrs[k] = v
		}
	}
	if err := check(e); err != nil {
		return nil, err
	}
	return e, nil
}

// isNull reports whether raw is CBOR null (or undefined).
func isNull(raw cbor.RawMessage) bool {
	return len(raw) == 1 && (raw[0] == 0xf6 || raw[0] == 0xf7)
}

// check enforces what both directions require of a normalised event.
func check(e *Event) error {
	for _, f := range [...]struct{ name, v string }{
		{"gateway", e.Gateway}, {"stream", e.Stream}, {"source", e.Source}, {"kind", e.Kind},
	} {
		if f.v == "" {
			return fieldErr(f.name, "missing or empty")
		}
		if !utf8.ValidString(f.v) {
			return fieldErr(f.name, "not valid UTF-8")
		}
	}
	if e.Time.IsZero() {
		return fieldErr("time", "missing")
	}
	if err := checkTime(e.Time); err != nil {
		return &FieldError{Field: "time", Err: err}
	}
	if !e.Received.IsZero() {
		if err := checkTime(e.Received); err != nil {
			return &FieldError{Field: "received", Err: err}
		}
	}
	if len(e.Attrs) > MaxAttrs {
		return fieldErr("attrs", "%d attributes, more than %d", len(e.Attrs), MaxAttrs)
	}
	for k := range e.Attrs {
		if k == "" || !utf8.ValidString(k) {
			return fieldErr("attrs", "key %q is empty or not valid UTF-8", k)
		}
	}
	return nil
}

func checkTime(t time.Time) error {
	if t.Before(MinTime) || !t.Before(MaxTime) {
		return fmt.Errorf("%s is outside [%s, %s)", t.Format(time.RFC3339Nano),
			MinTime.Format(time.RFC3339), MaxTime.Format(time.RFC3339))
	}
	return nil
}
