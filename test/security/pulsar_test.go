package security

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"

	"github.com/edgegw/gateway/test/testenv"
	"github.com/edgegw/gateway/units"
	"github.com/edgegw/gateway/uplink"
)

// The secure standalone (test/pulsar-secure.sh): TLS only, token and
// certificate authentication, authorization. A gateway's role is granted
// produce on its event topics and its status topic and consume on its config
// topic, nothing else. The uplink forwards over pulsar+ssl with its token (and,
// in a second run, with a client certificate instead), a superuser reads the
// events back, and every way out of the grants is refused.
func TestPulsarSecureUplink(t *testing.T) {
	p := Pulsar(t)
	ns := p.Namespace(t, "uplink")
	stamp := time.Now().UnixNano() % 1e9
	role := fmt.Sprintf("gw-%d", stamp)
	for _, topic := range []string{"events-scans", "events-telemetry", "status"} {
		p.GrantTopic(t, ns, topic, role, "produce")
	}
	p.GrantTopic(t, ns, "config", role, "consume")
	dir := t.TempDir()
	tokenFile := writeSecret(t, dir, "pulsar.token", p.Token(role))
	tenant, namespace, _ := strings.Cut(ns, "/")
	topic := func(name string) string { return "persistent://" + ns + "/" + name }
	super := pulsar.ClientOptions{URL: p.ServiceURL, TLSTrustCertsFilePath: p.CAFile, TLSValidateHostname: true,
		Authentication: pulsar.NewAuthenticationToken(p.SuperToken), OperationTimeout: 20 * time.Second}

	opts := uplink.DefaultOptions()
	opts.ServiceURL, opts.AdminURL = p.ServiceURL, p.AdminURL
	opts.Tenant, opts.Namespace = tenant, namespace
	opts.TLSCAFile, opts.AuthTokenFile = p.CAFile, tokenFile
	opts.SendTimeout, opts.OperationTimeout = units.Duration(20*time.Second), units.Duration(20*time.Second)

	t.Run("the gateway role may not read namespace policies (require_dedup)", func(t *testing.T) {
		c, err := uplink.New(opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = c.CheckDedup(ctx)
		if err == nil {
			t.Fatal("CheckDedup succeeded for a role that is not a tenant admin")
		}
		t.Logf("CheckDedup as the gateway role: %v", err)
		if !strings.Contains(err.Error(), "401") && !strings.Contains(err.Error(), "403") && !strings.Contains(strings.ToLower(err.Error()), "authoriz") {
			t.Fatalf("CheckDedup failed, but not with an authorization error: %v", err)
		}
	})

	forward := func(t *testing.T, o uplink.Options, stream string, n int) {
		t.Helper()
		o.RequireDedup = false // see above: the operator turns dedup on (Namespace did)
		c, err := uplink.New(o, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		b := newBacklog(t, role, stream, n)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel() // before c.Close, also on a failure
		done := make(chan error, 1)
		go func() { done <- c.Forward(ctx, role, stream, 0, b) }()
		testenv.Eventually(t, 90*time.Second, fmt.Sprintf("%d events acked", n), func() error {
			if a := b.Acked(); a < uint64(n) {
				return fmt.Errorf("acked %d of %d; streams %+v", a, n, c.Streams())
			}
			return nil
		})
		cancel()
		<-done
		evs := readAll(t, super, topic("events-"+stream), n)
		for i, e := range evs {
			if e.Seq != uint64(i+1) || e.Gateway != role {
				t.Fatalf("message %d: seq %d gateway %q", i, e.Seq, e.Gateway)
			}
		}
	}
	t.Run("uplink over pulsar+ssl with a token", func(t *testing.T) { forward(t, opts, "scans", 50) })

	certRole := role + "-mtls"
	p.GrantTopic(t, ns, "events-telemetry", certRole, "produce")
	certFile, keyFile := p.CA.Client(t, certRole).Write(t, dir, "gw-client")
	t.Run("uplink over pulsar+ssl with a client certificate", func(t *testing.T) {
		o := opts
		o.AuthTokenFile, o.TLSCertFile, o.TLSKeyFile = "", certFile, keyFile
		forward(t, o, "telemetry", 20)
	})

	// Raw clients with the gateway's credentials, for what the uplink never
	// tries: every refusal below must be an error, and the right one.
	// Each raw client logs into its own buffer: a refused connection shows as
	// a timeout in the error, the reason is in the client's log.
	logs := map[pulsar.Client]*logBuffer{}
	client := func(t *testing.T, auth pulsar.Authentication, caFile string) pulsar.Client {
		t.Helper()
		l, lb := captureLogger()
		c, err := pulsar.NewClient(pulsar.ClientOptions{URL: p.ServiceURL, TLSTrustCertsFilePath: caFile, TLSValidateHostname: true,
			Authentication: auth, OperationTimeout: 5 * time.Second, ConnectionTimeout: 5 * time.Second, Logger: plog.NewLoggerWithSlog(l)})
		if err != nil {
			t.Fatal(err)
		}
		logs[c] = lb
		t.Cleanup(c.Close)
		return c
	}
	produce := func(c pulsar.Client, topic string) error {
		pr, err := c.CreateProducer(pulsar.ProducerOptions{Topic: topic, SendTimeout: 10 * time.Second})
		if err != nil {
			return err
		}
		defer pr.Close()
		_, err = pr.Send(context.Background(), &pulsar.ProducerMessage{Payload: []byte("x")})
		return err
	}
	consume := func(c pulsar.Client, topic string) error {
		co, err := c.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "sec-test", Type: pulsar.Exclusive})
		if err == nil {
			co.Close()
		}
		return err
	}
	gw := client(t, pulsar.NewAuthenticationTokenFromFile(tokenFile), p.CAFile)
	// A second tenant the role has nothing in.
	other := p.Namespace(t, "other")
	refused := []struct {
		name string
		c    func() pulsar.Client
		try  func(pulsar.Client) error
		want string // in the error or the client's log, lower case
	}{
		{"produce to an event topic outside the grants", func() pulsar.Client { return gw },
			func(c pulsar.Client) error { return produce(c, topic("events-forbidden")) }, "authorizationerror"},
		{"produce to another tenant", func() pulsar.Client { return gw },
			func(c pulsar.Client) error { return produce(c, "persistent://"+other+"/events-scans") }, "authorizationerror"},
		{"produce to the config topic (consume only)", func() pulsar.Client { return gw },
			func(c pulsar.Client) error { return produce(c, topic("config")) }, "not authorized to produce"},
		{"consume its own event topic (produce only)", func() pulsar.Client { return gw },
			func(c pulsar.Client) error { return consume(c, topic("events-scans")) }, "not authorized to subscribe"},
		{"no credentials", func() pulsar.Client { return client(t, nil, p.CAFile) },
			func(c pulsar.Client) error { return produce(c, topic("events-scans")) }, "failed to authenticate"},
		{"a token signed with another key", func() pulsar.Client {
			return client(t, pulsar.NewAuthenticationToken(HS256Token([]byte("not-the-secret-0123456789abcdef!"), role, 0)), p.CAFile)
		}, func(c pulsar.Client) error { return produce(c, topic("events-scans")) }, "failed to authenticate"},
		{"an expired token", func() pulsar.Client {
			return client(t, pulsar.NewAuthenticationToken(HS256Token(p.Secret, role, time.Now().Add(-time.Hour).Unix())), p.CAFile)
		}, func(c pulsar.Client) error { return produce(c, topic("events-scans")) }, "failed to authenticate"},
		{"a client certificate from another CA", func() pulsar.Client {
			cf, kf := NewCA(t, "rogue-ca").Client(t, certRole).Write(t, dir, "rogue")
			return client(t, pulsar.NewAuthenticationTLS(cf, kf), p.CAFile)
		}, func(c pulsar.Client) error { return produce(c, topic("events-telemetry")) }, "failed to authenticate"},
		{"a broker certificate the client does not trust (wrong CA)", func() pulsar.Client {
			return client(t, pulsar.NewAuthenticationTokenFromFile(tokenFile), NewCA(t, "other-ca").WriteCert(t, dir, "other-ca"))
		}, func(c pulsar.Client) error { return produce(c, topic("events-scans")) }, "x509: certificate signed by unknown authority"},
	}
	for _, r := range refused {
		t.Run(r.name, func(t *testing.T) {
			c := r.c()
			err := r.try(c)
			if err == nil {
				t.Fatal("allowed")
			}
			why := strings.ToLower(err.Error())
			if lb := logs[c]; lb != nil {
				why += "\n" + strings.ToLower(lb.String())
			}
			if !strings.Contains(why, r.want) {
				t.Fatalf("refused (%v), but neither the error nor the client log says %q:\n%.3000s", err, r.want, why)
			}
			t.Logf("refused: %v", err)
		})
	}
	// What the role was granted does work with the raw client too.
	if err := consume(gw, topic("config")); err != nil {
		t.Fatalf("consume config: %v", err)
	}
	if err := produce(gw, topic("status")); err != nil {
		t.Fatalf("produce status: %v", err)
	}
}
