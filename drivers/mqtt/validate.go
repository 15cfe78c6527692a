package mqtt

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/edgegw/gateway/units"
)

var schemes = []string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}

// validate checks the connection's settings (the shared ones are
// ingest.Config's).
func (c *Config) validate(v *units.Errors) {
	if len(c.Brokers) == 0 {
		v.Add("brokers", "at least one broker URL is required")
	}
	for i, b := range c.Brokers {
		path := fmt.Sprintf("brokers[%d]", i)
		u, err := url.Parse(b)
		switch {
		case b == Embedded:
			if len(c.Brokers) > 1 {
				v.Add(path, "%q (the gateway's embedded broker) must be the only broker", Embedded)
			}
		case err != nil:
			v.Add(path, "invalid URL: %v", err)
		case !slices.Contains(schemes, u.Scheme):
			v.Add(path, "scheme %q: want one of %s", u.Scheme, strings.Join(schemes, ", "))
		case u.Host == "":
			v.Add(path, "no host in %q", b)
		case u.User != nil:
			v.Add(path, "put credentials in username and password_file, not in the URL")
		}
	}
	if len(c.ClientID) > 65535 {
		v.Add("client_id", "longer than 65535 bytes")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		v.Add("tls", "cert_file and key_file go together")
	}
	for _, d := range []struct {
		path     string
		d        units.Duration
		min, max time.Duration
	}{
		{"keepalive", c.KeepAlive, time.Second, 65535 * time.Second},
		{"connect_timeout", c.ConnectTimeout, 100 * time.Millisecond, 10 * time.Minute},
		{"reconnect_max", c.ReconnectMax, time.Second, time.Hour},
	} {
		if d.d.D() < d.min || d.d.D() > d.max {
			v.Add(d.path, "%s is outside [%s, %s]", d.d, units.Duration(d.min), units.Duration(d.max))
		}
	}
	if c.BrokerInflight < 0 || c.BrokerInflight > 65535 {
		v.Add("broker_inflight", "%d is outside [0, 65535]", c.BrokerInflight)
	}
	c.BrokerDrops.validate(v, "broker_drops")
}
