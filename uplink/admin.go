package uplink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/edgegw/gateway/internal/tlsfiles"
)

// admin is the little of Pulsar's admin REST API (admin/v2) the uplink
// uses: a namespace's policies, the broker's runtime configuration and a
// topic's compaction. It is written here rather than taken from
// pulsar-client-go's pulsaradmin, which would add about 0.85 MB to every
// firmware binary for three requests.
type admin struct {
	base      string // e.g. https://pulsar.example:8443, without a trailing slash
	hc        *http.Client
	tokenFile string // read at each request, so a rotated token is picked up
}

// newAdmin builds the admin client from the uplink's TLS and auth options:
// the CA file (else the system roots), insecure only when asked, and either
// the token (Authorization: Bearer) or the client certificate.
func newAdmin(o Options) (*admin, error) {
	u, err := url.Parse(o.AdminURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("admin_url %q: want http(s)://host:port", o.AdminURL)
	}
	files := tlsfiles.Client{CAFile: o.TLSCAFile, Insecure: o.TLSAllowInsecure} // insecure only when tls_allow_insecure says so
	if o.AuthTokenFile == "" {
		files.CertFile, files.KeyFile = o.TLSCertFile, o.TLSKeyFile
	}
	tc, err := files.Config()
	if err != nil {
		return nil, fmt.Errorf("tls_%w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.Proxy = nil // the admin API is reached directly, like the broker
	return &admin{
		base:      strings.TrimRight(o.AdminURL, "/"),
		hc:        &http.Client{Transport: tr, Timeout: 30 * time.Second},
		tokenFile: o.AuthTokenFile,
	}, nil
}

// do sends one request and decodes a JSON answer into out (when not nil).
// A non-2xx answer is an error with the status and the start of the body.
func (a *admin) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if a.tokenFile != "" {
		tok, err := os.ReadFile(a.tokenFile)
		if err != nil {
			return fmt.Errorf("auth_token_file: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &adminError{Method: method, Path: path, Status: resp.StatusCode, Reason: reason(body)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// adminError is a refusal by the admin API.
type adminError struct {
	Method, Path string
	Status       int
	Reason       string
}

func (e *adminError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// reason is the broker's explanation in an error answer: the "reason" of
// its JSON, else the start of the body.
func reason(body []byte) string {
	var r struct {
		Reason string `json:"reason"`
	}
	if json.Unmarshal(body, &r) == nil && r.Reason != "" {
		return r.Reason
	}
	s := string(bytes.TrimSpace(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// dedupPolicy returns the namespace's own deduplication policy (nil when it
// has none).
func (a *admin) dedupPolicy(ctx context.Context, namespace string) (*bool, error) {
	var pol struct {
		DeduplicationEnabled *bool `json:"deduplicationEnabled"`
	}
	if err := a.do(ctx, http.MethodGet, "/admin/v2/namespaces/"+escapePath(namespace), &pol); err != nil {
		return nil, err
	}
	return pol.DeduplicationEnabled, nil
}

// runtimeConfig returns the broker's runtime configuration.
func (a *admin) runtimeConfig(ctx context.Context) (map[string]string, error) {
	conf := map[string]string{}
	err := a.do(ctx, http.MethodGet, "/admin/v2/brokers/configuration/runtime", &conf)
	return conf, err
}

// compact starts the compaction of topic ("persistent://tenant/ns/name").
func (a *admin) compact(ctx context.Context, topic string) error {
	rest, ok := strings.CutPrefix(topic, "persistent://")
	if !ok || strings.Count(rest, "/") != 2 || strings.Contains(rest, "//") {
		return fmt.Errorf("topic %q: want persistent://tenant/namespace/topic", topic)
	}
	return a.do(ctx, http.MethodPut, "/admin/v2/persistent/"+escapePath(rest)+"/compaction", nil)
}

// escapePath escapes each segment of a slash-separated path.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
