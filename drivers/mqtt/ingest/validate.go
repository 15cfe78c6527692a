package ingest

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/units"
)

// maxMaxPayload keeps an event with its raw payload well inside
// event.MaxSize.
const maxMaxPayload = 512 * units.KiB

var (
	formats     = []string{FormatJSON, FormatCBOR, FormatText, FormatRaw}
	timeFormats = []string{"", "auto", "rfc3339", "unix_s", "unix_ms", "unix_us", "unix_ns"}
	// reserved attribute names the driver sets itself.
	reserved = []string{"barcode", "symbology", "value", "unit", "device_time", "time_flag", "text"}
)

func (c *Config) validate(v *validator) {
	for _, d := range []struct {
		path     string
		d        units.Duration
		min, max time.Duration
	}{
		{"ack_window", c.AckWindow, 0, time.Second},
		{"device_time.max_past", c.DeviceTime.MaxPast, 0, 100 * 365 * units.Day},
		{"device_time.max_future", c.DeviceTime.MaxFuture, 0, 100 * 365 * units.Day},
	} {
		if d.d.D() < d.min || d.d.D() > d.max {
			v.add(d.path, "%s is outside [%s, %s]", d.d, units.Duration(d.min), units.Duration(d.max))
		}
	}
	if c.MaxPayload < 1 || c.MaxPayload > maxMaxPayload {
		v.add("max_payload", "%s is outside [1, %s]", c.MaxPayload, units.ByteSize(maxMaxPayload))
	}
	if c.AckBatch < 0 || c.AckBatch > 65535 {
		v.add("ack_batch", "%d is outside [0 (auto), 65535]", c.AckBatch)
	}
	if c.MaxPending < max(c.AckBatch, 1) || c.MaxPending > 1<<20 {
		v.add("max_pending", "%d is outside [ack_batch=%d, %d]", c.MaxPending, c.AckBatch, 1<<20)
	}
	c.RateLimit.validate(v, "rate_limit")
	if len(c.Subscriptions) == 0 {
		v.add("subscriptions", "at least one subscription is required")
	}
	filters := map[string]int{}
	for i := range c.Subscriptions {
		path := fmt.Sprintf("subscriptions[%d]", i)
		s := &c.Subscriptions[i]
		s.validate(v, path)
		if s.MaxPayload < 0 || s.MaxPayload > c.MaxPayload {
			v.add(path+".max_payload", "%s is outside [0 (the driver's), max_payload=%s]", s.MaxPayload, c.MaxPayload)
		}
		if p, err := compilePattern(s.Topic); err == nil {
			if j, dup := filters[p.filter]; dup {
				v.add(path+".topic", "filter %q is also subscriptions[%d]", p.filter, j)
			}
			filters[p.filter] = i
		}
	}
}

func (s *Subscription) validate(v *validator, path string) {
	p, err := compilePattern(s.Topic)
	if err != nil {
		v.add(path+".topic", "%v", err)
	}
	if s.QoS != nil && (*s.QoS < 0 || *s.QoS > 2) {
		v.add(path+".qos", "must be 0, 1 or 2")
	}
	if s.Kind == "" {
		v.add(path+".kind", "required (e.g. scan, reading)")
	}
	if s.RateLimit != nil {
		s.RateLimit.validate(v, path+".rate_limit")
	}
	if s.Stream == "" && s.Kind != event.KindScan && s.Kind != event.KindReading {
		v.add(path+".stream", "required for kind %q", s.Kind)
	}
	if !slices.Contains(formats, s.Format) && s.Format != "" {
		v.add(path+".format", "%q: want one of %s", s.Format, strings.Join(formats, ", "))
	}
	var names []string
	if p != nil {
		names = p.wildcardNames()
		for _, n := range names {
			if slices.Contains(reserved, n) {
				v.add(path+".topic", "wildcard name %q is an attribute the driver sets", n)
			}
		}
	}
	if _, err := compileTemplate(s.Source, names); err != nil {
		v.add(path+".source", "%v", err)
	}
	f := s.Fields
	if !slices.Contains(timeFormats, f.TimeFormat) {
		v.add(path+".fields.time_format", "%q: want one of %s", f.TimeFormat, strings.Join(timeFormats[1:], ", "))
	}
	mapped := f.Barcode+f.Symbology+f.Time+f.Value+f.Unit+f.Device+f.TimeFormat != "" || len(f.Attrs) > 0
	if mapped && (s.Format == FormatText || s.Format == FormatRaw) {
		v.add(path+".fields", "applies to formats json and cbor only")
	}
	if s.Kind == event.KindScan && f.Barcode == "-" && s.Format != FormatRaw {
		v.add(path+".fields.barcode", "kind scan needs a barcode field")
	}
	if s.Kind == event.KindReading && f.Value == "-" && s.Format != FormatRaw {
		v.add(path+".fields.value", "kind reading needs a value field")
	}
	for j, a := range f.Attrs {
		ap := fmt.Sprintf("%s.fields.attrs[%d]", path, j)
		switch {
		case a == "" || strings.HasPrefix(a, ".") || strings.HasSuffix(a, ".") || strings.Contains(a, ".."):
			v.add(ap, "invalid field path %q", a)
		case slices.Contains(reserved, a) || slices.Contains(names, a) || a == "device":
			v.add(ap, "%q is already an attribute of the event", a)
		}
	}
	s.validateCounter(v, path, names)
}
