package security

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgegw/gateway/test/harness"
)

// The real gateway binary, with every kind of secret it takes: an MQTT
// password file (mutual TLS to a site Mosquitto), a password file of an
// embedded-broker device user, and a Pulsar token file (TLS, token,
// authorization). It runs at debug level, devices publish through both
// brokers (and one tries a wrong password), the events reach the secure
// Pulsar, and then the log, /metrics, the status page, /status.json and the
// health endpoints are searched for the secrets: none may appear. Files the
// gateway created are private: the buffer's directory 0700, the buffer and
// the broker's persistence file 0600.
func TestGatewayLeaksNoSecrets(t *testing.T) {
	p := Pulsar(t)
	role := fmt.Sprintf("gw-secrets-%d", time.Now().UnixNano()%1e9)
	// The gateway checks the namespace's deduplication policy before it
	// forwards, even with require_dedup: false (edge.forwardAll calls
	// CheckDedup unconditionally), and only a tenant admin may read it: so
	// here the role administers its own tenant. TestPulsarSecureUplink shows
	// the narrow grants with the uplink alone.
	ns := p.Namespace(t, "secrets", role)
	for _, topic := range []string{"events-scans", "events-telemetry", "status"} {
		p.GrantTopic(t, ns, topic, role, "produce")
	}
	p.GrantTopic(t, ns, "config", role, "consume")
	token := p.Token(role)

	const (
		mqttPass    = "Mq7-gateway-S3cret-pw"
		devicePass  = "Dv9-device-S3cret-pw"
		brokerPass  = "Eb4-embedded-S3cret-pw"
		wrongPass   = "Wr0ng-attempt-S3cret-pw"
		mqttDevPass = "Sd2-site-device-S3cret"
	)
	ca := NewCA(t, "site-ca")
	m := StartMosquitto(t, MosquittoOptions{CA: ca, RequireCert: true, ACL: mqttACL,
		Users: map[string]string{"gateway": mqttPass, "dock3": mqttDevPass}})

	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	if err := os.Mkdir(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	mqttPassFile := writeSecret(t, secrets, "mqtt.pass", mqttPass)
	brokerUserFile := writeSecret(t, secrets, "dock3.pass", brokerPass)
	tokenFile := writeSecret(t, secrets, "pulsar.token", token)
	caFile := ca.WriteCert(t, secrets, "site-ca")
	certFile, keyFile := ca.Client(t, "gateway").Write(t, secrets, "gateway")
	state := filepath.Join(dir, "state") // the gateway creates it
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	brokerAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	tenant, namespace, _ := strings.Cut(ns, "/")
	cfg := fmt.Sprintf(`
gateway:
  id: %[1]s
buffer:
  path: %[2]s/buffer.db
  disk_budget: 64MiB
streams:
  - {name: scans, priority: 10, overflow: reject-new}
  - {name: telemetry, overflow: drop-oldest}
broker:
  listen: %[3]s
  persistence_file: %[2]s/broker.db
  users:
    - {username: dock3, password_file: %[4]s, publish: [site/dock3/#]}
sources:
  - name: site
    driver: mqtt
    mqtt:
      brokers: [%[5]s]
      client_id: %[1]s-site
      username: gateway
      password_file: %[6]s
      tls: {ca_file: %[7]s, cert_file: %[8]s, key_file: %[9]s}
      broker_inflight: 1000
      subscriptions:
        - {topic: "site/+dock/scanner/+device", kind: scan, source: "site-{dock}-{device}"}
  - name: vehicle
    driver: mqtt
    mqtt:
      brokers: [embedded]
      subscriptions:
        - {topic: "site/+dock/scanner/+device", kind: scan, source: "van-{dock}-{device}"}
uplink:
  service_url: %[10]s
  admin_url: %[11]s
  tenant: %[12]s
  namespace: %[13]s
  tls_ca_file: %[14]s
  auth_token_file: %[15]s
  require_dedup: false
  send_timeout: 20s
  operation_timeout: 20s
http:
  listen: %[16]s
log:
  level: debug
`, role, state, brokerAddr, brokerUserFile, m.URL, mqttPassFile, caFile, certFile, keyFile,
		p.ServiceURL, p.AdminURL, tenant, namespace, p.CAFile, tokenFile, httpAddr)
	g := harness.NewGateway(t, dir, cfg, httpAddr)
	g.Start()

	devCert := ca.Client(t, "dock3")
	siteDev, err := device(t, m, ca, &devCert, "sc-1", "dock3", mqttDevPass)
	if err != nil {
		t.Fatal(err)
	}
	van, err := plainClient(t, "tcp://"+brokerAddr, "van-sc-2", "dock3", brokerPass)
	if err != nil {
		t.Fatalf("device on the embedded broker: %v", err)
	}
	if _, err := plainClient(t, "tcp://"+brokerAddr, "van-sc-3", "dock3", wrongPass); err == nil {
		t.Fatal("the embedded broker accepted a wrong password")
	}
	if _, err := plainClient(t, "tcp://"+brokerAddr, "anon", "", ""); err == nil {
		t.Fatal("the embedded broker accepted an anonymous client")
	}
	const n = 5
	for i := 1; i <= n; i++ {
		body := fmt.Sprintf(`{"barcode":"B%d"}`, i)
		if tok := siteDev.Publish("site/dock3/scanner/sc-1", 1, false, body); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		if tok := van.Publish("site/dock3/scanner/sc-2", 1, false, body); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	g.Eventually(90*time.Second, "events forwarded (buffer drained)", func() bool {
		st, ok := g.Status()
		sc, _ := st.Stream("scans")
		return ok && sc.NextSeq > 2*n && g.Drained()
	})
	super := pulsar.ClientOptions{URL: p.ServiceURL, TLSTrustCertsFilePath: p.CAFile, TLSValidateHostname: true,
		Authentication: pulsar.NewAuthenticationToken(p.SuperToken)}
	evs := readAll(t, super, "persistent://"+ns+"/events-scans", 2*n)
	sources := map[string]int{}
	for _, e := range evs {
		sources[e.Source]++
	}
	if sources["site-dock3-sc-1"] != n || sources["van-dock3-sc-2"] != n {
		t.Fatalf("events by source %v", sources)
	}

	pages := map[string]string{"log": ""}
	for _, path := range []string{"/metrics", "/", "/status.json", "/healthz", "/readyz"} {
		pages[path] = httpGet(t, "http://"+httpAddr+path)
	}
	g.Stop()
	log, err := os.ReadFile(g.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	pages["log"] = string(log)
	if !strings.Contains(pages["log"], "level=DEBUG") {
		t.Fatalf("the log is not at debug level:\n%.2000s", pages["log"])
	}
	if !strings.Contains(pages["log"], "bad credentials") {
		t.Errorf("the refused login is not in the log")
	}
	sig := token[strings.LastIndexByte(token, '.')+1:]
	for name, secret := range map[string]string{
		"MQTT password": mqttPass, "site device password": mqttDevPass, "embedded broker user password": brokerPass,
		"attempted wrong password": wrongPass, "Pulsar token": token, "Pulsar token signature": sig,
	} {
		for where, text := range pages {
			if strings.Contains(text, secret) {
				t.Errorf("the %s is in %s", name, where)
			}
		}
	}
	for path, want := range map[string]os.FileMode{state: 0o700, filepath.Join(state, "buffer.db"): 0o600, filepath.Join(state, "broker.db"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", filepath.Base(path), got, want)
		}
	}
	t.Logf("searched %d bytes of log and %d pages for 6 secrets", len(log), len(pages)-1)
}

// plainClient connects a paho client over plain TCP with a username and
// password.
func plainClient(t *testing.T, url, id, user, pass string) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(user).SetPassword(pass).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect timed out")
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, nil
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}
