package ingest

import (
	"fmt"

	"github.com/edgegw/gateway/event"
)

// sub is a Subscription compiled, with its defaults applied.
type sub struct {
	pat     *pattern
	source  *template
	qos     byte
	stream  string
	kind    string
	format  string
	fields  FieldMap // "" already replaced by the default name, "-" by ""
	keepRaw bool
	counter counterConfig // Fields.Counter; path "" when off
	// Set by New from the driver's settings: the payload limit (0: none)
	// and the per-source rate limiter (nil: off).
	maxPayload int
	limit      *limiter
}

func compileSub(s Subscription) (*sub, error) {
	p, err := compilePattern(s.Topic)
	if err != nil {
		return nil, err
	}
	src, err := compileTemplate(s.Source, p.wildcardNames())
	if err != nil {
		return nil, err
	}
	c := &sub{pat: p, source: src, qos: 1, stream: s.Stream, kind: s.Kind, format: s.Format, keepRaw: s.KeepRaw}
	if s.QoS != nil {
		c.qos = byte(*s.QoS)
	}
	if c.stream == "" {
		switch s.Kind {
		case event.KindScan:
			c.stream = "scans"
		case event.KindReading:
			c.stream = "telemetry"
		default:
			return nil, fmt.Errorf("no stream for kind %q", s.Kind)
		}
	}
	if c.format == "" {
		c.format = FormatJSON
	}
	if c.format == FormatRaw {
		c.keepRaw = true
	}
	f := s.Fields
	def := func(v, name string) string {
		switch v {
		case "":
			return name
		case "-":
			return ""
		}
		return v
	}
	c.fields = FieldMap{
		Barcode:    def(f.Barcode, "barcode"),
		Symbology:  def(f.Symbology, "symbology"),
		Time:       def(f.Time, "time"),
		Value:      def(f.Value, "value"),
		Unit:       def(f.Unit, "unit"),
		Device:     def(f.Device, "device"),
		TimeFormat: def(f.TimeFormat, "auto"),
		Attrs:      f.Attrs,
	}
	c.counter = compileCounter(f, c.format)
	return c, nil
}
