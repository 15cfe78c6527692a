package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegw/gateway/edge/fleet"
	"github.com/edgegw/gateway/test/testenv"
	"github.com/edgegw/gateway/uplink"
)

// Fleet is a set of gateways under one operator key, in a Pulsar namespace
// of their own: the operator key is made by the real `gatewayctl keys gen`,
// pushes go through the real `gatewayctl config push`, and a watcher follows
// the status topic.
type Fleet struct {
	t           testing.TB
	Name        string
	Namespace   string // tenant/namespace
	Root        string // MQTT topic root
	MQTT        string
	PulsarURL   string
	AdminURL    string
	Dir         string
	KeyFile     string // the operator's private key
	TrustedKeys string // the trusted-keys file every gateway of the fleet uses

	ctl    *uplink.Control
	status *statusWatch
}

// NewFleet makes a namespace, an operator key and a status watcher.
func NewFleet(t testing.TB, name string) *Fleet {
	t.Helper()
	mqttURL := testenv.MQTT(t)
	pulsarURL, adminURL := testenv.Pulsar(t)
	stamp := time.Now().UnixNano()
	f := &Fleet{t: t, Name: name, Namespace: Namespace(t, name), Root: fmt.Sprintf("fleet/%s-%d", name, stamp),
		MQTT: mqttURL, PulsarURL: pulsarURL, AdminURL: adminURL, Dir: t.TempDir()}
	keys := filepath.Join(f.Dir, "keys")
	if out, err := f.Ctl("keys", "gen", "--out", keys, "--comment", "test operator"); err != nil {
		t.Fatalf("gatewayctl keys gen: %v\n%s", err, out)
	}
	f.KeyFile, f.TrustedKeys = filepath.Join(keys, "operator.key"), filepath.Join(keys, "operator.pub")
	o := uplink.DefaultOptions()
	o.ServiceURL, o.AdminURL, o.Tenant, o.Namespace = pulsarURL, adminURL, f.tenant(), f.namespace()
	ctl, err := uplink.NewControl(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.ctl = ctl
	f.status = watchStatus(ctl, ctl.Topic("status"))
	t.Cleanup(func() {
		f.status.stop()
		ctl.Close()
	})
	return f
}

func (f *Fleet) tenant() string    { return strings.SplitN(f.Namespace, "/", 2)[0] }
func (f *Fleet) namespace() string { return strings.SplitN(f.Namespace, "/", 2)[1] }

// Topic is the events topic of stream.
func (f *Fleet) Topic(stream string) string { return Topic(f.Namespace, stream) }

// Ctl runs the gatewayctl binary with args, after the Pulsar flags of the
// fleet's namespace for the commands that take them, and returns its
// combined output.
func (f *Fleet) Ctl(args ...string) (string, error) {
	bin, err := Binary("gatewayctl")
	if err != nil {
		return "", err
	}
	if len(args) > 0 && (args[0] == "config" || args[0] == "status" || args[0] == "firmware") && f.Namespace != "" {
		sub := 1
		if args[0] == "config" || args[0] == "firmware" {
			sub = 2
		}
		pf := []string{"--pulsar", f.PulsarURL, "--pulsar-admin", f.AdminURL, "--tenant", f.tenant(), "--namespace", f.namespace()}
		args = append(append(append([]string(nil), args[:sub]...), pf...), args[sub:]...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}

// Push pushes doc with `gatewayctl config push`; target is "--target ID" or
// "--group LABEL" as two words. It returns the version assigned.
func (f *Fleet) Push(flag, target, doc string) uint64 {
	f.t.Helper()
	path := filepath.Join(f.Dir, fmt.Sprintf("doc-%d.yaml", time.Now().UnixNano()))
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		f.t.Fatal(err)
	}
	out, err := f.Ctl("config", "push", flag, target, "-f", path, "--key", f.KeyFile, "-o", "json")
	if err != nil {
		f.t.Fatalf("gatewayctl config push: %v\n%s", err, out)
	}
	var r struct {
		Version uint64 `json:"version"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &r); err != nil || r.Version == 0 {
		f.t.Fatalf("config push output %q: %v", out, err)
	}
	return r.Version
}

// Publish puts a raw message on the config topic, for bundles no operator
// would push (forged, replayed, ...).
func (f *Fleet) Publish(key string, payload []byte) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Exclusive, like gatewayctl: a producer kept open would fence its pushes.
	err := f.ctl.PublishExclusive(ctx, f.ctl.Topic("config"), func([]uplink.KeyedMessage) (uplink.KeyedMessage, error) {
		return uplink.KeyedMessage{Key: key, Payload: payload}, nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

// Sign makes a signed bundle with the operator key (or with key, if not nil).
func (f *Fleet) Sign(target fleet.Target, version uint64, doc string, key *fleet.PrivateKey) []byte {
	f.t.Helper()
	if key == nil {
		var err error
		if key, err = fleet.LoadPrivateKey(f.KeyFile); err != nil {
			f.t.Fatal(err)
		}
	}
	b := &fleet.Bundle{Target: target, Version: version, IssuedAt: time.Now(), Document: []byte(doc)}
	b.Sign(key)
	data, err := fleet.Marshal(b)
	if err != nil {
		f.t.Fatal(err)
	}
	return data
}

// Heartbeat is the latest heartbeat of gateway id (nil if none yet).
func (f *Fleet) Heartbeat(id string) *fleet.Status { return f.status.latest(id) }

// Decisions are the distinct config decisions gateway id reported, in order.
func (f *Fleet) Decisions(id string) []fleet.ConfigStatus { return f.status.decisions(id) }

// WaitConfig waits until the heartbeat of gateway id satisfies cond and
// returns that heartbeat.
func (f *Fleet) WaitConfig(g *FleetGateway, timeout time.Duration, msg string, cond func(fleet.ConfigStatus) bool) *fleet.Status {
	f.t.Helper()
	var hb *fleet.Status
	g.Eventually(timeout, msg, func() error {
		hb = f.Heartbeat(g.ID)
		if hb != nil && cond(hb.Config) {
			return nil
		}
		if d := f.status.describe(g.ID); d != "" {
			return fmt.Errorf("config decisions so far: %s", d)
		}
		return fmt.Errorf("no config decision reported yet")
	})
	return hb
}

// Control is the fleet's control channel (the test's own Pulsar client in
// the fleet's namespace), for messages no operator would publish.
func (f *Fleet) Control() *uplink.Control { return f.ctl }

// FleetGateway is a gateway child process of a Fleet.
type FleetGateway struct {
	*Gateway
	ID     string
	Groups []string
	f      *Fleet
}

// FleetOptions tweak a fleet gateway's local file.
type FleetOptions struct {
	Groups    []string
	Probation string     // default 5s
	Heartbeat string     // default 1s
	Doc       DocOptions // the document in the local file
}

// DocOptions tweak a pushed document.
type DocOptions struct {
	Extra          bool   // also subscribe <root>/<id>/extra/+device (scans, source "extra-<device>")
	ScansMaxEvents int    // 0: unlimited
	ServiceURL     string // default: the test Pulsar
	AdminURL       string // default: the test Pulsar's admin URL
	UplinkExtra    string // more uplink settings, each line indented by two spaces
}

// NewGateway writes the local file of a new gateway (local-only settings
// plus the initial document) and returns it stopped.
func (f *Fleet) NewGateway(name string, o FleetOptions) *FleetGateway {
	f.t.Helper()
	if o.Probation == "" {
		o.Probation = "5s"
	}
	if o.Heartbeat == "" {
		o.Heartbeat = "1s"
	}
	id := fmt.Sprintf("%s-%s-%d", f.Name, name, time.Now().UnixNano()%1e6)
	dir := filepath.Join(f.Dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		f.t.Fatal(err)
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", FreePort(f.t))
	groups := "[]"
	if len(o.Groups) > 0 {
		groups = "[" + strings.Join(o.Groups, ", ") + "]"
	}
	local := fmt.Sprintf(`gateway:
  id: %s
  groups: %s
  trusted_keys_file: %s
buffer:
  path: %s
  disk_budget: 256MiB
http:
  listen: %s
log:
  level: info
fleet:
  probation: %s
  heartbeat: %s
`, id, groups, f.TrustedKeys, filepath.Join(dir, "buffer.db"), httpAddr, o.Probation, o.Heartbeat)
	g := &FleetGateway{ID: id, Groups: o.Groups, f: f}
	g.Gateway = NewGateway(f.t, dir, local+f.Document(id, o.Doc), httpAddr)
	return g
}

// Document is a pushable config document (streams, sources, uplink) for
// gateway id; an empty id makes one for a group (topics <root>/+gw/...).
func (f *Fleet) Document(id string, o DocOptions) string {
	gw := id
	if gw == "" {
		gw = "+gw"
	}
	if o.ServiceURL == "" {
		o.ServiceURL = f.PulsarURL
	}
	if o.AdminURL == "" {
		o.AdminURL = f.AdminURL
	}
	extra := ""
	if o.Extra {
		extra = fmt.Sprintf(`        - topic: %s/%s/extra/+device
          kind: scan
          stream: scans
          source: "extra-{device}"
          fields: {time: ts, attrs: [n, pub]}
`, f.Root, gw)
	}
	return fmt.Sprintf(`streams:
  - name: scans
    priority: 10
    overflow: reject-new
    max_events: %d
  - name: telemetry
    priority: 1
    overflow: drop-oldest
sources:
  - name: mosquitto
    driver: mqtt
    mqtt:
      brokers: [%s]
      broker_inflight: 1000
      subscriptions:
        - topic: %s/%s/+dock/scanner/+device
          kind: scan
          stream: scans
          source: "{dock}-{device}"
          fields: {time: ts, attrs: [n, pub]}
%suplink:
  service_url: %s
  admin_url: %s
  tenant: %s
  namespace: %s
  send_timeout: 10s
  operation_timeout: 10s
%s`, o.ScansMaxEvents, f.MQTT, f.Root, gw, extra, o.ServiceURL, o.AdminURL, f.tenant(), f.namespace(), o.UplinkExtra)
}

// ScanTopic is the MQTT topic a scanner of the gateway publishes to.
func (g *FleetGateway) ScanTopic(dock, device string) string {
	return fmt.Sprintf("%s/%s/%s/scanner/%s", g.f.Root, g.ID, dock, device)
}

// ExtraTopic is the topic of DocOptions.Extra.
func (g *FleetGateway) ExtraTopic(device string) string {
	return fmt.Sprintf("%s/%s/extra/%s", g.f.Root, g.ID, device)
}

// ConfigState is the "config" section of /status.json.
type ConfigState struct {
	Version string `json:"version"`
	State   string `json:"state"`
}

// ConfigState reads the config section of /status.json.
func (g *FleetGateway) ConfigState() (ConfigState, bool) {
	var s struct {
		Config ConfigState `json:"config"`
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + g.HTTP + "/status.json")
	if err != nil {
		return ConfigState{}, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&s) != nil {
		return ConfigState{}, false
	}
	return s.Config, true
}

// statusWatch follows the status topic.
type statusWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	last map[string]*fleet.Status
	hist map[string][]fleet.ConfigStatus
}

func watchStatus(ctl *uplink.Control, topic string) *statusWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &statusWatch{cancel: cancel, done: make(chan struct{}), last: map[string]*fleet.Status{}, hist: map[string][]fleet.ConfigStatus{}}
	go func() {
		defer close(w.done)
		_ = ctl.Watch(ctx, topic, nil, func(latest map[string]uplink.KeyedMessage) {
			w.mu.Lock()
			defer w.mu.Unlock()
			for k, m := range latest {
				s, err := fleet.DecodeStatus(m.Payload)
				if err != nil {
					continue
				}
				w.last[k] = s
				h := w.hist[k]
				if n := len(h); n == 0 || h[n-1].Decision != s.Config.Decision || h[n-1].Version != s.Config.Version {
					w.hist[k] = append(h, s.Config)
				}
			}
		})
	}()
	return w
}

func (w *statusWatch) stop() {
	w.cancel()
	<-w.done
}

func (w *statusWatch) latest(id string) *fleet.Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last[id]
}

func (w *statusWatch) decisions(id string) []fleet.ConfigStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]fleet.ConfigStatus(nil), w.hist[id]...)
}

func (w *statusWatch) describe(id string) string {
	var parts []string
	for _, c := range w.decisions(id) {
		parts = append(parts, fmt.Sprintf("v%d %s bundle v%d %q", c.Version, c.State, c.Bundle, c.Reason))
	}
	return strings.Join(parts, " → ")
}

// Traffic publishes scans at a steady pace until stopped: publisher pub,
// counters 1..n, each acknowledged by the broker.
type Traffic struct {
	t     testing.TB
	Pub   string
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	sent  int
	err   error
	topic string
}

// StartTraffic starts publishing to topic every interval.
func StartTraffic(t testing.TB, broker, clientID, topic, pub string, every time.Duration) *Traffic {
	t.Helper()
	p := NewPublisher(t, broker, clientID)
	tr := &Traffic{t: t, Pub: pub, stop: make(chan struct{}), done: make(chan struct{}), topic: topic}
	go func() {
		defer close(tr.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for n := 1; ; n++ {
			if err := p.Publish(topic, ScanPayload(pub, n)); err != nil {
				tr.mu.Lock()
				tr.err = err
				tr.mu.Unlock()
				return
			}
			tr.mu.Lock()
			tr.sent = n
			tr.mu.Unlock()
			select {
			case <-tr.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(tr.halt)
	return tr
}

func (tr *Traffic) halt() {
	select {
	case <-tr.stop:
	default:
		close(tr.stop)
	}
	<-tr.done
}

// Sent is how many scans the broker has acknowledged so far.
func (tr *Traffic) Sent() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.sent
}

// Stop stops publishing and returns how many scans were acknowledged.
func (tr *Traffic) Stop() int {
	tr.t.Helper()
	tr.halt()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.err != nil {
		tr.t.Fatalf("traffic %s: %v", tr.Pub, tr.err)
	}
	return tr.sent
}

// WarmUp waits until the gateway's MQTT subscription is live: a message
// published before the gateway's first subscribe is dropped by the broker
// (there is no session yet to queue it), so tests that count every message
// start publishing only after this. It publishes scans of publisher "warmup"
// on dock "warmup" until one reaches col; leave those out of delivery checks
// (WithoutPub).
func (g *FleetGateway) WarmUp(col *Collector) {
	g.t.Helper()
	p := NewPublisher(g.t, g.f.MQTT, g.ID+"-warmup")
	defer p.Close()
	n := 0
	g.Eventually(time.Minute, "the gateway's MQTT subscription delivers", func() bool {
		for _, m := range col.Messages() {
			if m.Event != nil && m.Event.Attrs["pub"] == "warmup" {
				return true
			}
		}
		n++
		p.MustPublish(g.ScanTopic("warmup", "warmup"), ScanPayload("warmup", n))
		return false
	})
}

// WithoutPub drops the events of publisher pub.
func WithoutPub(msgs []Received, pub string) []Received {
	out := msgs[:0:0]
	for _, m := range msgs {
		if m.Event != nil && m.Event.Attrs["pub"] == pub {
			continue
		}
		out = append(out, m)
	}
	return out
}
