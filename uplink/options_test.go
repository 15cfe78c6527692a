package uplink

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/edgegw/gateway/units"
)

func validOptions() Options {
	o := DefaultOptions()
	o.ServiceURL, o.AdminURL = "pulsar://broker:6650", "http://broker:8080"
	return o
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(o *Options)
		paths []string // the field paths the error must name; none = valid
	}{
		{"defaults with URLs", func(o *Options) {}, nil},
		{"tls", func(o *Options) {
			o.ServiceURL, o.AdminURL = "pulsar+ssl://b:6651", "https://b:8443"
			o.TLSCAFile, o.TLSCertFile, o.TLSKeyFile = "ca.pem", "c.pem", "k.pem"
		}, nil},
		{"no dedup needs no admin", func(o *Options) { o.AdminURL, o.RequireDedup = "", false }, nil},
		{"missing service url", func(o *Options) { o.ServiceURL = "" }, []string{"service_url"}},
		{"wrong scheme", func(o *Options) { o.ServiceURL = "http://b:6650" }, []string{"service_url"}},
		{"admin required for dedup", func(o *Options) { o.AdminURL = "" }, []string{"admin_url"}},
		{"admin scheme", func(o *Options) { o.AdminURL = "pulsar://b" }, []string{"admin_url"}},
		{"names", func(o *Options) { o.Tenant, o.Namespace, o.TopicPrefix = "a/b", "", "x y" },
			[]string{"tenant", "namespace", "topic_prefix"}},
		{"compression", func(o *Options) { o.Compression = "gzip" }, []string{"compression"}},
		{"durations", func(o *Options) { o.SendTimeout, o.OperationTimeout, o.ConnectionTimeout = 0, -1, 0 },
			[]string{"send_timeout", "operation_timeout", "connection_timeout"}},
		{"max pending", func(o *Options) { o.MaxPending = 0 }, []string{"max_pending"}},
		{"cert without key", func(o *Options) { o.ServiceURL, o.TLSCertFile = "pulsar+ssl://b:6651", "c.pem" }, []string{"tls_cert_file"}},
		{"tls settings without tls", func(o *Options) { o.TLSCAFile = "ca.pem" }, []string{"tls_ca_file"}},
		{"tiny bandwidth", func(o *Options) { o.BandwidthLimit = 10 }, []string{"bandwidth_limit"}},
		{"batching off", func(o *Options) { o.BatchMaxMessages, o.BatchMaxBytes, o.BatchLinger = 0, 0, 0 }, nil},
		{"batch limits", func(o *Options) { o.BatchMaxMessages, o.BatchMaxBytes, o.BatchLinger = -1, 5<<20, -1 },
			[]string{"batch_max_messages", "batch_max_bytes", "batch_linger"}},
		{"linger beyond send timeout", func(o *Options) {
			o.BatchLinger = units.Duration(5 * time.Second)
			o.SendTimeout = units.Duration(time.Second)
		},
			[]string{"batch_linger"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := validOptions()
			tc.edit(&o)
			err := o.Validate()
			if len(tc.paths) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			var es units.Errors
			if !errors.As(err, &es) {
				t.Fatalf("%T %v is not units.Errors", err, err)
			}
			var got []string
			for _, fe := range es {
				if fe.Line != 0 || fe.Error() != fe.Path+": "+fe.Msg {
					t.Errorf("error %q: want %q and no line (the loader locates it)", fe, fe.Path+": "+fe.Msg)
				}
				got = append(got, fe.Path)
			}
			if strings.Join(got, ",") != strings.Join(tc.paths, ",") {
				t.Errorf("paths %v, want %v (%v)", got, tc.paths, err)
			}
		})
	}
}

func TestOptionsYAML(t *testing.T) {
	src := `
service_url: pulsar+ssl://broker:6651
admin_url: https://broker:8443
tenant: acme
namespace: edge
topic_prefix: ev-
compression: zstd
send_timeout: 1h30m
operation_timeout: 1d
connection_timeout: 5s
max_pending: 500
tls_ca_file: ca.pem
tls_allow_insecure: false
tls_validate_hostname: true
auth_token_file: token
bandwidth_limit: 512KiB
batch_max_messages: 500
batch_max_bytes: 64KiB
batch_linger: 1s
require_dedup: true
`
	o := DefaultOptions()
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&o); err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.SendTimeout.D() != 90*time.Minute || o.OperationTimeout.D() != 24*time.Hour || o.ConnectionTimeout.D() != 5*time.Second || o.BandwidthLimit != 512<<10 || o.Compression != "zstd" || o.MaxPending != 500 ||
		o.BatchMaxMessages != 500 || o.BatchMaxBytes != 64<<10 || o.BatchLinger.D() != time.Second || !o.Batching() {
		t.Errorf("decoded %+v", o)
	}
	if got := o.Topic("scans"); got != "persistent://acme/edge/ev-scans" {
		t.Errorf("topic %q", got)
	}
	bad := DefaultOptions()
	if err := yaml.Unmarshal([]byte("send_timeout: 30\n"), &bad); err == nil {
		t.Error("a bare number was accepted as a duration")
	}
	if err := yaml.Unmarshal([]byte("bandwidth_limit: lots\n"), &bad); err == nil {
		t.Error("a bad byte size was accepted")
	}
}

func TestDefaults(t *testing.T) {
	o := DefaultOptions()
	if o.Tenant != "public" || o.Namespace != "default" || o.TopicPrefix != "events-" || o.Compression != "zstd" ||
		o.BatchMaxMessages != 1000 || o.BatchMaxBytes != 128<<10 || o.BatchLinger.D() != 10*time.Millisecond ||
		o.SendTimeout.D() != 30*time.Second || o.MaxPending != 1000 || !o.TLSValidateHostname || o.TLSAllowInsecure ||
		!o.RequireDedup || o.BandwidthLimit != 0 {
		t.Errorf("defaults %+v", o)
	}
}

// Validate's message for a duration names it as written.
func TestValidateMessages(t *testing.T) {
	o := validOptions()
	o.SendTimeout, o.BandwidthLimit = units.Duration(-2*units.Day), 10
	var es units.Errors
	if err := o.Validate(); !errors.As(err, &es) {
		t.Fatalf("err = %v", err)
	}
	want := units.Errors{
		{Path: "send_timeout", Msg: "must be positive, got -48h0m0s"},
		{Path: "bandwidth_limit", Msg: "must be 0 (unlimited) or at least 1024 bytes/s, got 10"},
	}
	if len(es) != len(want) {
		t.Fatalf("errors %v, want %v", es, want)
	}
	for i := range want {
		if *es[i] != *want[i] {
			t.Errorf("error %d = %+v, want %+v", i, *es[i], *want[i])
		}
	}
}

func TestProducerName(t *testing.T) {
	for _, tc := range []struct{ gw, stream, want string }{
		{"gw-1", "scans", "gw-1/scans"},
		{"dock 3", "a/b", "dock%203/a%2Fb"},
		{"a%2F", "b", "a%252F/b"},
	} {
		if got := producerName(tc.gw, tc.stream); got != tc.want {
			t.Errorf("producerName(%q, %q) = %q, want %q", tc.gw, tc.stream, got, tc.want)
		}
	}
	if producerName("a/b", "c") == producerName("a", "b/c") {
		t.Error("names collide")
	}
}
