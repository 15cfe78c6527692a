package ingest

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/edgegw/gateway/event"
)

var mapType = reflect.TypeOf(map[string]any(nil))

// text converts a field to text: strings as they are, integers (a JSON
// number's literal) in decimal. Floats and the rest are refused: a barcode
// sent as a float has already lost digits.
func text(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		if _, err := x.Int64(); err == nil || isDigits(string(x)) {
			return string(x), true
		}
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	}
	return "", false
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// number converts a field to int64 (integers that fit), uint64 or float64.
// Numeric text is accepted ("21.5"); non-finite floats are not.
func number(v any) (any, bool) {
	switch x := v.(type) {
	case json.Number:
		return number(string(x))
	case string:
		s := strings.TrimSpace(x)
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, true
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return u, true
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, false
		}
		return f, true
	case int64, uint64:
		return x, true
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, false
		}
		return x, true
	}
	return nil, false
}

// attrValue converts a field kept by fields.attrs to an attribute value:
// scalars as themselves (JSON numbers as numbers), times inside the codec's
// range as times, anything else as compact JSON text. nil means skip it.
func attrValue(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string, bool, int64, uint64, []byte:
		return x
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
		return x
	case json.Number:
		if n, ok := number(x); ok {
			return n
		}
		return string(x)
	case time.Time:
		return attrTime(x)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return nil
		}
		return string(b)
	}
}

// attrTime keeps a time as a time when the codec can carry it, else as
// RFC 3339 text.
func attrTime(t time.Time) any {
	if t.Before(event.MinTime) || !t.Before(event.MaxTime) {
		return t.UTC().Format(time.RFC3339Nano)
	}
	return t
}

// Time flags set in attrs["time_flag"].
const (
	TimeImplausible = "implausible"
	TimeUnparseable = "unparseable"
)

// applyDeviceTime sets ev.Time from the device's timestamp v when it parses
// and is plausible; otherwise it keeps the receive time and records v.
func applyDeviceTime(ev *event.Event, attrs map[string]any, v any, format string, recv time.Time, dt DeviceTimeConfig) {
	t, ok := deviceTime(v, format)
	switch {
	case !ok:
		if a := attrValue(v); a != nil {
			attrs["device_time"] = a
		}
		attrs["time_flag"] = TimeUnparseable
	case t.Before(recv.Add(-dt.MaxPast.D())) || t.After(recv.Add(dt.MaxFuture.D())):
		attrs["device_time"] = attrTime(t)
		attrs["time_flag"] = TimeImplausible
	default:
		ev.Time = t
	}
}

// deviceTime parses a timestamp: RFC 3339 text, a CBOR time, or a number
// of epoch seconds, ms, µs or ns (format unix_*, or by magnitude for auto).
func deviceTime(v any, format string) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x, format == "auto" || format == "rfc3339"
	case string:
		if format == "auto" || format == "rfc3339" {
			t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(x))
			return t, err == nil
		}
	}
	if format == "rfc3339" {
		return time.Time{}, false
	}
	n, ok := number(v)
	if !ok {
		return time.Time{}, false
	}
	var f float64
	switch x := n.(type) {
	case int64:
		f = float64(x)
	case uint64:
		f = float64(x)
	case float64:
		f = x
	}
	if format == "auto" {
		switch a := math.Abs(f); {
		case a < 1e11:
			format = "unix_s"
		case a < 1e14:
			format = "unix_ms"
		case a < 1e17:
			format = "unix_us"
		default:
			format = "unix_ns"
		}
	}
	if i, isInt := n.(int64); isInt {
		switch format {
		case "unix_s":
			if i > -1e12 && i < 1e12 {
				return time.Unix(i, 0), true
			}
			return time.Time{}, false
		case "unix_ms":
			return time.UnixMilli(i), true
		case "unix_us":
			return time.UnixMicro(i), true
		case "unix_ns":
			return time.Unix(0, i), true
		}
	}
	scale := map[string]float64{"unix_s": 1, "unix_ms": 1e3, "unix_us": 1e6, "unix_ns": 1e9}[format]
	sec := f / scale
	if scale == 0 || math.IsNaN(sec) || math.Abs(sec) > 1e12 {
		return time.Time{}, false
	}
	whole := math.Floor(sec)
	return time.Unix(int64(whole), int64((sec-whole)*1e9)), true
}
