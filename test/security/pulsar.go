package security

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/testenv"
)

// SecurePulsar is the TLS + token + authorization standalone that
// test/pulsar-secure.sh runs, seen from a test.
type SecurePulsar struct {
	ServiceURL string // pulsar+ssl://127.0.0.1:16651
	AdminURL   string // https://127.0.0.1:18443
	CAFile     string // the CA that signed the broker's certificate
	CA         *CA    // to issue client certificates the broker trusts
	Secret     []byte // the HS256 token secret
	SuperToken string // a token of the superuser role
	http       *http.Client
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// stateDir is where the scripts under test/ keep their state (the same
// rule as test/lib.sh).
func stateDir() string {
	return env("EDGE_STATE_DIR", filepath.Join(testenv.RepoRoot(), ".state"))
}

// Pulsar returns the secure Pulsar, skipping under -short and failing with a
// hint when it does not answer.
func Pulsar(t testing.TB) *SecurePulsar {
	t.Helper()
	if testing.Short() {
		t.Skip("secure Pulsar integration test skipped under -short")
	}
	host := testenv.Host()
	addr := net.JoinHostPort(host, env("EDGE_PULSAR_SECURE_PORT", "16651"))
	pki := filepath.Join(stateDir(), "pulsar-secure", "pki")
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("the secure Pulsar is not reachable at %s (%v); start it with `test/pulsar-secure.sh up`", addr, err)
	}
	_ = c.Close()
	p := &SecurePulsar{
		ServiceURL: "pulsar+ssl://" + addr,
		AdminURL:   "https://" + net.JoinHostPort(host, env("EDGE_PULSAR_SECURE_HTTPS_PORT", "18443")),
		CAFile:     filepath.Join(pki, "ca.crt"),
	}
	p.CA = LoadCA(t, p.CAFile, filepath.Join(pki, "ca.key"))
	if p.Secret, err = os.ReadFile(filepath.Join(pki, "secret.key")); err != nil {
		t.Fatalf("%v (the PKI of test/pulsar-secure.sh, under EDGE_STATE_DIR)", err)
	}
	p.SuperToken = HS256Token(p.Secret, "edgegw-admin", 0)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.CA.CertPEM)
	p.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	return p
}

// Token mints a token for role.
func (p *SecurePulsar) Token(role string) string { return HS256Token(p.Secret, role, 0) }

// Admin calls the admin REST API as the superuser; body, when not nil, is
// sent as JSON. It fails the test unless the answer is 2xx.
func (p *SecurePulsar) Admin(t testing.TB, method, path, body string) []byte {
	t.Helper()
	code, out := p.AdminAs(t, p.SuperToken, method, path, body)
	if code/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, code, out)
	}
	return out
}

// AdminAs calls the admin REST API with token (none when empty) and returns
// the status code and body.
func (p *SecurePulsar) AdminAs(t testing.TB, token, method, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	req, err := http.NewRequest(method, p.AdminURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// Namespace creates a tenant (administered by the roles admins) and a
// namespace with deduplication on, both new for the test, and returns
// "tenant/namespace".
func (p *SecurePulsar) Namespace(t testing.TB, name string, admins ...string) string {
	t.Helper()
	stamp := time.Now().UnixNano()
	tenant := fmt.Sprintf("sec-%s-%d", name, stamp%1e9)
	roles := "[]"
	if len(admins) > 0 {
		roles = `["` + strings.Join(admins, `","`) + `"]`
	}
	p.Admin(t, http.MethodPut, "/admin/v2/tenants/"+tenant, `{"adminRoles":`+roles+`,"allowedClusters":["standalone"]}`)
	ns := tenant + "/gw"
	p.Admin(t, http.MethodPut, "/admin/v2/namespaces/"+ns, "")
	p.Admin(t, http.MethodPost, "/admin/v2/namespaces/"+ns+"/deduplication", "true")
	return ns
}

// GrantTopic creates the topic persistent://<ns>/<topic> if needed and grants
// role the actions ("produce", "consume") on it alone.
func (p *SecurePulsar) GrantTopic(t testing.TB, ns, topic, role string, actions ...string) {
	t.Helper()
	path := "/admin/v2/persistent/" + ns + "/" + topic
	if code, out := p.AdminAs(t, p.SuperToken, http.MethodPut, path, ""); code/100 != 2 && code != http.StatusConflict {
		t.Fatalf("create %s: %d %s", path, code, out)
	}
	p.Admin(t, http.MethodPost, path+"/permissions/"+role, `["`+strings.Join(actions, `","`)+`"]`)
}
