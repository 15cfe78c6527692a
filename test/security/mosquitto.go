package security

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/edgegw/gateway/test/testenv"
)

// MosquittoOptions configure a test's own Mosquitto.
type MosquittoOptions struct {
	// CA signs the broker's certificate and is the CA clients' certificates
	// must chain to. Required: the listener is TLS only.
	CA *CA
	// RequireCert makes clients present a certificate the CA signed.
	RequireCert bool
	// Users and their passwords (put in a password_file with
	// mosquitto_passwd -b). Anonymous clients are always refused.
	Users map[string]string
	// ACL is the acl_file's content ("user NAME" / "topic read|write|readwrite
	// FILTER" lines); empty: no acl_file (every user may do everything).
	ACL string
}

// Mosquitto is a second Mosquitto, started by a test as its child process
// on a free loopback port and stopped in the test's Cleanup.
type Mosquitto struct {
	URL     string // ssl://127.0.0.1:<port>
	Addr    string // 127.0.0.1:<port>
	CAFile  string // the CA certificate, for clients
	Dir     string
	LogPath string
}

// StartMosquitto writes a mosquitto.conf (listener on 127.0.0.1, cafile,
// certfile, keyfile, require_certificate, password_file, acl_file,
// allow_anonymous false), runs `mosquitto -c` and waits until it accepts
// connections. It skips the test when mosquitto is not installed.
func StartMosquitto(t testing.TB, o MosquittoOptions) *Mosquitto {
	t.Helper()
	m := &Mosquitto{}
	b := testenv.StartMosquitto(t, func(dir string) []string {
		m.Dir, m.LogPath = dir, filepath.Join(dir, "mosquitto.log")
		m.CAFile = o.CA.WriteCert(t, dir, "ca")
		certFile, keyFile := o.CA.Server(t, "127.0.0.1", "localhost").Write(t, dir, "broker")
		pwFile := filepath.Join(dir, "passwd")
		WriteFile(t, pwFile, nil)
		for name, pw := range o.Users {
			out, err := exec.Command("mosquitto_passwd", "-b", pwFile, name, pw).CombinedOutput()
			if err != nil {
				t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
			}
		}
		conf := []string{
			"cafile " + m.CAFile, "certfile " + certFile, "keyfile " + keyFile,
			fmt.Sprintf("require_certificate %v", o.RequireCert), "tls_version tlsv1.2",
			"allow_anonymous false", "persistence false",
			"max_inflight_messages 1000", "max_queued_messages 100000",
			"log_dest file " + m.LogPath, "log_type error", "log_type warning", "log_type notice", "log_type information",
			"connection_messages true", "password_file " + pwFile,
		}
		if o.ACL != "" {
			aclFile := filepath.Join(dir, "acl")
			WriteFile(t, aclFile, []byte(o.ACL))
			conf = append(conf, "acl_file "+aclFile)
		}
		return conf
	})
	m.Addr = b.Addr
	m.URL = "ssl://" + m.Addr
	return m
}

// Log returns the broker's log so far.
func (m *Mosquitto) Log() string {
	b, _ := os.ReadFile(m.LogPath)
	return string(b)
}
