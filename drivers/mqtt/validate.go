package mqtt

import (
	"fmt"
	"net/url"
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
	schemes     = []string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}
	formats     = []string{FormatJSON, FormatCBOR, FormatText, FormatRaw}
	timeFormats = []string{"", "auto", "rfc3339", "unix_s", "unix_ms", "unix_us", "unix_ns"}
	// reserved attribute names the driver sets itself.
	reserved = []string{"barcode", "symbology", "value", "unit", "device_time", "time_flag", "text"}
)

func (c *Config) validate(v *validator) {
	if len(c.Brokers) == 0 {
		v.add("brokers", "at least one broker URL is required")
	}
	for i, b := range c.Brokers {
		path := fmt.Sprintf("brokers[%d]", i)
		u, err := url.Parse(b)
		switch {
		case b == Embedded:
			if len(c.Brokers) > 1 {
				v.add(path, "%q (the gateway's embedded broker) must be the only broker", Embedded)
			}
		case err != nil:
			v.add(path, "invalid URL: %v", err)
		case !slices.Contains(schemes, u.Scheme):
			v.add(path, "scheme %q: want one of %s", u.Scheme, strings.Join(schemes, ", "))
		case u.Host == "":
			v.add(path, "no host in %q", b)
		case u.User != nil:
			v.add(path, "put credentials in username and password_file, not in the URL")
		}
	}
	if len(c.ClientID) > 65535 {
		v.add("client_id", "longer than 65535 bytes")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		v.add("tls", "cert_file and key_file go together")
	}
	durs := []struct {
		path     string
		d        units.Duration
		min, max time.Duration
	}{
		{"keepalive", c.KeepAlive, time.Second, 65535 * time.Second},
		{"connect_timeout", c.ConnectTimeout, 100 * time.Millisecond, 10 * time.Minute},
		{"reconnect_max", c.ReconnectMax, time.Second, time.Hour},
		{"ack_window", c.AckWindow, 0, time.Second},
		{"device_time.max_past", c.DeviceTime.MaxPast, 0, 100 * 365 * units.Day},
		{"device_time.max_future", c.DeviceTime.MaxFuture, 0, 100 * 365 * units.Day},
	}
	for _, d := range durs {
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
	if c.BrokerInflight < 0 || c.BrokerInflight > 65535 {
		v.add("broker_inflight", "%d is outside [0, 65535]", c.BrokerInflight)
	}
	if c.MaxPending < max(c.AckBatch, 1) || c.MaxPending > 1<<20 {
		v.add("max_pending", "%d is outside [ack_batch=%d, %d]", c.MaxPending, c.AckBatch, 1<<20)
	}
	c.RateLimit.validate(v, "rate_limit")
	c.BrokerDrops.validate(v, "broker_drops")
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
