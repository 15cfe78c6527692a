// Package tlsfiles builds the TLS settings of the gateway's clients (the
// MQTT driver, the Pulsar admin client) from the PEM files their configs
// name.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// Client names the files and settings of a TLS client.
type Client struct {
	// CAFile holds the PEM certificates of the CAs to trust. "": the
	// system's roots.
	CAFile string
	// CertFile and KeyFile are the client certificate and its key, for
	// mutual TLS. CertFile "": none.
	CertFile, KeyFile string
	// ServerName is the name to verify the server's certificate against.
	// "": the host dialled.
	ServerName string
	// Insecure accepts any server certificate. For tests only.
	Insecure bool
}

// Config reads the files and returns the settings (TLS 1.2 at least). Its
// errors begin with the setting that failed, "ca_file" or
// "cert_file/key_file", for callers to prefix with their section ("tls.",
// "tls_").
func (c Client) Config() (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.Insecure} //nolint:gosec // opt-in, for tests
	if c.CAFile != "" {
		pool, err := CertPool(c.CAFile)
		if err != nil {
			return nil, err
		}
		t.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file/key_file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// CertPool reads the PEM certificates in file.
func CertPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", file)
	}
	return pool, nil
}
