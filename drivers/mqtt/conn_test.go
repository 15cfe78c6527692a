package mqtt

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// openConn dials tcp and TLS brokers as paho would, checks the server's
// name against its certificate, and hands paho a connection whose reads are
// buffered (paho reads a packet a few bytes at a time).
func TestOpenConn(t *testing.T) {
	serve := func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = c.Write([]byte("hello, gateway"))
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	go serve(plain)

	srv := httptest.NewUnstartedServer(nil) // only for its test certificate (127.0.0.1, example.com)
	srv.StartTLS()
	cert := srv.TLS.Certificates[0]
	srv.Close()
	secure, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer secure.Close()
	go serve(secure)
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)

	read := func(c net.Conn) string {
		t.Helper()
		defer c.Close()
		if _, ok := c.(*bufferedConn); !ok {
			t.Fatalf("connection %T is not buffered", c)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 5)
		var got strings.Builder
		for got.Len() < len("hello, gateway") {
			n, err := c.Read(b)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			got.Write(b[:n])
		}
		return got.String()
	}
	opts := func(tc *tls.Config) paho.ClientOptions {
		o := *paho.NewClientOptions()
		o.ConnectTimeout, o.TLSConfig = 5*time.Second, tc
		return o
	}
	u := func(s string) *url.URL {
		p, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	c, err := openConn(u("tcp://"+plain.Addr().String()), opts(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := read(c); got != "hello, gateway" {
		t.Fatalf("tcp read %q", got)
	}
	wrapped := 0
	c, err = openConn(u("ssl://"+secure.Addr().String()), opts(&tls.Config{RootCAs: roots}), func(c net.Conn) net.Conn { wrapped++; return c })
	if err != nil {
		t.Fatal(err)
	}
	if got := read(c); got != "hello, gateway" || wrapped != 1 {
		t.Fatalf("tls read %q, wrapped %d times", got, wrapped)
	}
	// The name in the URL is checked against the certificate.
	_, port, _ := net.SplitHostPort(secure.Addr().String())
	if _, err := openConn(u("mqtts://localhost:"+port), opts(&tls.Config{RootCAs: roots}), nil); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a certificate without localhost was accepted: %v", err)
	}
	if _, err := openConn(u("ssl://"+secure.Addr().String()), opts(&tls.Config{}), nil); err == nil {
		t.Fatal("an untrusted broker was accepted")
	}
	if _, err := openConn(u("gopher://"+plain.Addr().String()), opts(nil), nil); err == nil {
		t.Fatal("an unknown scheme was dialled")
	}
}
