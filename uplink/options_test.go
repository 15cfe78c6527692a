package uplink

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
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
			var got []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("%v is not a *FieldError", e)
				}
				got = append(got, fe.FieldPath())
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
send_timeout: 45s
operation_timeout: 20s
connection_timeout: 5s
max_pending: 500
tls_ca_file: ca.pem
tls_allow_insecure: false
tls_validate_hostname: true
auth_token_file: token
bandwidth_limit: 512KiB
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
	if o.SendTimeout != 45*time.Second || o.BandwidthLimit != 512<<10 || o.Compression != "zstd" || o.MaxPending != 500 {
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
	if o.Tenant != "public" || o.Namespace != "default" || o.TopicPrefix != "events-" || o.Compression != "lz4" ||
		o.SendTimeout != 30*time.Second || o.MaxPending != 1000 || !o.TLSValidateHostname || o.TLSAllowInsecure ||
		!o.RequireDedup || o.BandwidthLimit != 0 {
		t.Errorf("defaults %+v", o)
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"4096": 4096, "1KiB": 1024, "2MB": 2e6, "1.5MiB": 1.5 * (1 << 20), "10k": 10240} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "MiB", "1XB"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", in)
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
