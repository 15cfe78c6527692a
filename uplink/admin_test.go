package uplink

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The admin client sends the token from its file, checks the server
// against the CA file, and reports a refusal with the broker's reason.
func TestAdminTLSTokenAndErrors(t *testing.T) {
	var gotAuth, gotPath, gotMethod string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotPath, gotMethod = r.Header.Get("Authorization"), r.URL.EscapedPath(), r.Method
		switch {
		case r.URL.Path == "/admin/v2/namespaces/acme/gw":
			_, _ = w.Write([]byte(`{"deduplicationEnabled": true, "other": [1]}`))
		case r.URL.Path == "/admin/v2/namespaces/acme/plain":
			_, _ = w.Write([]byte(`{}`))
		case r.URL.Path == "/admin/v2/brokers/configuration/runtime":
			_, _ = w.Write([]byte(`{"brokerDeduplicationEnabled": "false"}`))
		case strings.HasSuffix(r.URL.Path, "/compaction"):
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"reason": "Unauthorized to do that"}`))
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	a, err := newAdmin(Options{AdminURL: srv.URL + "/", TLSCAFile: ca, AuthTokenFile: tok})
	if err != nil {
		t.Fatal(err)
	}
	on, err := a.dedupPolicy(ctx, "acme/gw")
	if err != nil || on == nil || !*on {
		t.Fatalf("dedupPolicy = %v, %v; want true", on, err)
	}
	if gotAuth != "Bearer s3cret-token" {
		t.Fatalf("Authorization %q", gotAuth)
	}
	if on, err := a.dedupPolicy(ctx, "acme/plain"); err != nil || on != nil {
		t.Fatalf("dedupPolicy without a policy = %v, %v; want nil", on, err)
	}
	conf, err := a.runtimeConfig(ctx)
	if err != nil || conf["brokerDeduplicationEnabled"] != "false" {
		t.Fatalf("runtimeConfig = %v, %v", conf, err)
	}
	if err := a.compact(ctx, "persistent://acme/gw/config"); err != nil {
		t.Fatal(err)
	}
	if gotMethod != http.MethodPut || gotPath != "/admin/v2/persistent/acme/gw/config/compaction" {
		t.Fatalf("compaction request %s %s", gotMethod, gotPath)
	}
	if err := a.compact(ctx, "config"); err == nil {
		t.Fatal("compact of a short topic name was sent")
	}
	_, err = a.dedupPolicy(ctx, "acme/other")
	if err == nil || !strings.Contains(err.Error(), "403 Forbidden: Unauthorized to do that") {
		t.Fatalf("refusal reported as %v", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatal("the token leaked into an error")
	}

	// Without the CA the server is not trusted.
	b, err := newAdmin(Options{AdminURL: srv.URL, AuthTokenFile: tok})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.dedupPolicy(ctx, "acme/gw"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("an untrusted server answered: %v", err)
	}
	if _, err := newAdmin(Options{AdminURL: "pulsar://x:6650"}); err == nil {
		t.Fatal("a pulsar:// admin URL was taken")
	}
}
