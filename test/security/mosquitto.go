package security

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/harness"
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
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/mosquitto"); err != nil {
			t.Skip("mosquitto is not installed (test/mosquitto.sh installs it)")
		}
	}
	dir := t.TempDir()
	port := harness.FreePort(t)
	m := &Mosquitto{Addr: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, LogPath: filepath.Join(dir, "mosquitto.log")}
	m.URL = "ssl://" + m.Addr
	m.CAFile = o.CA.WriteCert(t, dir, "ca")
	certFile, keyFile := o.CA.Server(t, "127.0.0.1", "localhost").Write(t, dir, "broker")
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "listener %d 127.0.0.1\n", port)
	fmt.Fprintf(&conf, "cafile %s\ncertfile %s\nkeyfile %s\n", m.CAFile, certFile, keyFile)
	fmt.Fprintf(&conf, "require_certificate %v\ntls_version tlsv1.2\n", o.RequireCert)
	fmt.Fprintf(&conf, "allow_anonymous false\n")
	fmt.Fprintf(&conf, "user %s\npersistence false\n", u.Username)
	fmt.Fprintf(&conf, "max_inflight_messages 1000\nmax_queued_messages 100000\n")
	fmt.Fprintf(&conf, "log_dest file %s\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\nconnection_messages true\n", m.LogPath)
	pwFile := filepath.Join(dir, "passwd")
	WriteFile(t, pwFile, nil)
	for name, pw := range o.Users {
		out, err := exec.Command("mosquitto_passwd", "-b", pwFile, name, pw).CombinedOutput()
		if err != nil {
			t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
		}
	}
	fmt.Fprintf(&conf, "password_file %s\n", pwFile)
	if o.ACL != "" {
		aclFile := filepath.Join(dir, "acl")
		WriteFile(t, aclFile, []byte(o.ACL))
		fmt.Fprintf(&conf, "acl_file %s\n", aclFile)
	}
	confFile := filepath.Join(dir, "mosquitto.conf")
	WriteFile(t, confFile, []byte(conf.String()))

	var out bytes.Buffer
	cmd := exec.Command(bin, "-c", confFile)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("mosquitto exited: %s\n%s", out.String(), m.Log())
		default:
		}
		if c, err := net.DialTimeout("tcp", m.Addr, time.Second); err == nil {
			_ = c.Close()
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto does not listen on %s:\n%s", m.Addr, m.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Log returns the broker's log so far.
func (m *Mosquitto) Log() string {
	b, _ := os.ReadFile(m.LogPath)
	return string(b)
}
