package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/edgegw/gateway/event"
	"github.com/fxamacker/cbor/v2"
)

// Quarantine reasons: the keys of Stats.Quarantined, and the first word of
// the reason given to Sink.Quarantine.
const (
	ReasonOversize     = "oversize"      // payload above max_payload
	ReasonEmpty        = "empty"         // empty payload
	ReasonMalformed    = "malformed"     // not JSON / CBOR / UTF-8 text, or would be altered (see decodeObject)
	ReasonNotObject    = "not_object"    // JSON or CBOR, but not a map
	ReasonMissingField = "missing_field" // no barcode for a scan, no value for a reading
	ReasonBadField     = "bad_field"     // a mapped field of the wrong type
	ReasonUnsubscribed = "unsubscribed"  // topic matches no configured subscription
	ReasonInvalidEvent = "invalid_event" // the sink refused the event as invalid
)

// reject is why a payload could not become an event.
type reject struct{ reason, detail string }

func (r *reject) String() string { return r.reason + ": " + r.detail }

func rejectf(reason, format string, args ...any) *reject {
	return &reject{reason: reason, detail: fmt.Sprintf(format, args...)}
}

// payloadDec decodes CBOR payloads: maps with text keys, bounded.
var payloadDec = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  16,
		MaxArrayElements: 4096,
		MaxMapPairs:      4096,
		DefaultMapType:   mapType,
		IntDec:           cbor.IntDecConvertNone,
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// parse turns one message of this subscription into an event, stamped with
// everything the driver knows (not Gateway, Seq, Boot, Mono).
func (s *sub) parse(topic string, vals map[string]string, payload []byte, recv time.Time, dt DeviceTimeConfig) (*event.Event, *reject) {
	r := s.parseMsg(topic, s.sourceOf(topic, vals), vals, payload, recv, dt)
	return r.ev, r.bad
}

// parsed is what parseMsg makes of one message: an event or why not, and
// the device counter when the payload has one that can be read (also when
// the message is quarantined: it is not lost).
type parsed struct {
	ev         *event.Event
	bad        *reject
	counter    uint64
	hasCounter bool
}

// parseMsg is parse for a message whose source (sourceOf) is known.
func (s *sub) parseMsg(topic, src string, vals map[string]string, payload []byte, recv time.Time, dt DeviceTimeConfig) (out parsed) {
	if !utf8.ValidString(topic) {
		out.bad = rejectf(ReasonMalformed, "topic is not valid UTF-8")
		out.counter, out.hasCounter = s.counter.read(payload)
		return out
	}
	ev := &event.Event{Stream: s.stream, Source: src, Kind: s.kind, Time: recv, Received: recv}
	attrs := make(map[string]any, len(vals)+4)
	for k, v := range vals {
		attrs[k] = v
	}
	if len(payload) == 0 && s.format != FormatRaw {
		out.bad = rejectf(ReasonEmpty, "empty payload")
		return out
	}
	switch s.format {
	case FormatText:
		if r := s.parseText(payload, attrs); r != nil {
			out.bad = r
			return out
		}
	case FormatJSON, FormatCBOR:
		obj, r := decodeObject(payload, s.format)
		if r != nil {
			if r.reason == ReasonMalformed {
				// Refused for what the strict decoder would alter: a
				// lenient decode (this rare path only) may still read it.
				out.counter, out.hasCounter = s.counter.read(payload)
			}
			out.bad = r
			return out
		}
		out.counter, out.hasCounter = s.counter.lookup(obj)
		if r := s.mapFields(obj, attrs, ev, recv, dt); r != nil {
			out.bad = r
			return out
		}
		if out.hasCounter {
			attrs["counter"] = counterAttr(out.counter)
		}
	}
	if s.keepRaw && len(payload) > 0 {
		ev.Raw = payload
	}
	if len(attrs) > 0 {
		ev.Attrs = attrs
	}
	out.ev = ev
	return out
}

// sourceOf renders the event source of a message on topic.
func (s *sub) sourceOf(topic string, vals map[string]string) string {
	if src := s.source.render(topic, vals); src != "" {
		return src
	}
	return topic
}

func (s *sub) parseText(payload []byte, attrs map[string]any) *reject {
	if n := invalidUTF8(payload); n >= 0 {
		return rejectf(ReasonMalformed, "text payload is not valid UTF-8 at byte %d", n)
	}
	t := strings.TrimSpace(string(payload))
	if t == "" {
		return rejectf(ReasonEmpty, "blank text payload")
	}
	switch s.kind {
	case event.KindScan:
		attrs["barcode"] = t
	case event.KindReading:
		n, ok := number(t)
		if !ok {
			return rejectf(ReasonBadField, "reading %q is not a number", Clip(t))
		}
		attrs["value"] = n
	default:
		attrs["text"] = t
	}
	return nil
}

// decodeObject decodes a JSON or CBOR payload that must be an object.
// Input that the decoder would alter rather than refuse is malformed:
// text strings that are not UTF-8, JSON \uXXXX surrogate escapes that are
// not half of a pair (both would become U+FFFD), and duplicate map keys at
// any depth (the last would win).
func decodeObject(payload []byte, format string) (map[string]any, *reject) {
	var v any
	if format == FormatJSON {
		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, rejectf(ReasonMalformed, "json: %v", strings.TrimPrefix(err.Error(), "json: "))
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, rejectf(ReasonMalformed, "json: data after the value")
		}
		// The payload is now known to be one JSON value: what the decoder
		// has altered can be found in the bytes, in one pass.
		if bad := checkJSON(payload); bad != "" {
			return nil, rejectf(ReasonMalformed, "json: %s", bad)
		}
	} else if err := payloadDec.Unmarshal(payload, &v); err != nil {
		// UTF8RejectInvalid and DupMapKeyEnforcedAPF (every depth) refuse
		// what would otherwise be altered.
		return nil, rejectf(ReasonMalformed, "cbor: %v", strings.TrimPrefix(err.Error(), "cbor: "))
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, rejectf(ReasonNotObject, "payload is %T, want an object", v)
	}
	return obj, nil
}

// mapFields reads the mapped fields of obj into attrs and ev.Time.
func (s *sub) mapFields(obj map[string]any, attrs map[string]any, ev *event.Event, recv time.Time, dt DeviceTimeConfig) *reject {
	f := s.fields
	for _, tf := range []struct{ path, attr string }{
		{f.Barcode, "barcode"}, {f.Symbology, "symbology"}, {f.Unit, "unit"}, {f.Device, "device"},
	} {
		v, ok := lookup(obj, tf.path)
		if !ok {
			continue
		}
		t, ok := text(v)
		if !ok {
			return rejectf(ReasonBadField, "%s (%s) is %T, want text", tf.attr, tf.path, v)
		}
		if _, fromTopic := attrs[tf.attr]; !fromTopic && t != "" {
			attrs[tf.attr] = t
		}
	}
	if v, ok := lookup(obj, f.Value); ok {
		n, ok := number(v)
		if !ok {
			return rejectf(ReasonBadField, "value (%s) is %T, want a number", f.Value, v)
		}
		attrs["value"] = n
	}
	switch {
	case s.kind == event.KindScan && attrs["barcode"] == nil:
		return rejectf(ReasonMissingField, "no barcode (field %q)", f.Barcode)
	case s.kind == event.KindReading && attrs["value"] == nil:
		return rejectf(ReasonMissingField, "no value (field %q)", f.Value)
	}
	if v, ok := lookup(obj, f.Time); ok {
		applyDeviceTime(ev, attrs, v, f.TimeFormat, recv, dt)
	}
	for _, path := range f.Attrs {
		if v, ok := lookup(obj, path); ok {
			if a := attrValue(v); a != nil {
				attrs[path] = a
			}
		}
	}
	return nil
}

// lookup follows a dotted path through nested objects. A nil value counts
// as absent.
func lookup(obj map[string]any, path string) (any, bool) {
	if path == "" {
		return nil, false
	}
	var cur any = obj
	for part := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, cur != nil
}

// Clip shortens s (a topic, a source) for a log line or a quarantine
// reason: at most 64 bytes and an ellipsis.
func Clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	for i := 64; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + "…"
		}
	}
	return ""
}
