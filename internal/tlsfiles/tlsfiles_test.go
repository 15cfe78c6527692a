package tlsfiles

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tlsServer starts an HTTPS server and writes its certificate (which is its
// own CA) and key as PEM files.
func tlsServer(t *testing.T) (srv *httptest.Server, certFile, keyFile string) {
	t.Helper()
	srv = httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)
	key, err := x509.MarshalPKCS8PrivateKey(srv.TLS.Certificates[0].PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for f, b := range map[string]*pem.Block{
		certFile: {Type: "CERTIFICATE", Bytes: srv.Certificate().Raw},
		keyFile:  {Type: "PRIVATE KEY", Bytes: key},
	} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return srv, certFile, keyFile
}

func get(t *testing.T, c Client, url string) error {
	t.Helper()
	tc, err := c.Config()
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	resp, err := hc.Get(url)
	if err == nil {
		resp.Body.Close()
	}
	hc.CloseIdleConnections()
	return err
}

func TestConfigTrustsCAFile(t *testing.T) {
	srv, cert, key := tlsServer(t)
	if err := get(t, Client{CAFile: cert}, srv.URL); err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	var unknown x509.UnknownAuthorityError
	if err := get(t, Client{}, srv.URL); !errors.As(err, &unknown) {
		t.Fatalf("with the system roots: %v, want an unknown authority", err)
	}
	if err := get(t, Client{Insecure: true}, srv.URL); err != nil {
		t.Fatalf("insecure: %v", err)
	}
	var host x509.HostnameError
	if err := get(t, Client{CAFile: cert, ServerName: "elsewhere.test"}, srv.URL); !errors.As(err, &host) {
		t.Fatalf("server name not checked: %v", err)
	}
	tc, err := Client{CertFile: cert, KeyFile: key}.Config()
	if err != nil || len(tc.Certificates) != 1 || tc.RootCAs != nil || tc.MinVersion == 0 {
		t.Fatalf("client certificate: %+v, %v", tc, err)
	}
}

func TestConfigErrors(t *testing.T) {
	_, cert, key := tlsServer(t)
	notPEM := filepath.Join(t.TempDir(), "x.txt")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c    Client
		want string
	}{
		{Client{CAFile: notPEM + ".missing"}, "ca_file: open "},
		{Client{CAFile: notPEM}, "ca_file " + notPEM + ": no PEM certificate"},
		{Client{CertFile: cert, KeyFile: notPEM}, "cert_file/key_file: "},
		{Client{CertFile: key, KeyFile: key}, "cert_file/key_file: "},
	} {
		_, err := tc.c.Config()
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q…", tc.c, err, tc.want)
		}
	}
}
