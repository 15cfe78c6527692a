package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/admin/config"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgegw/gateway/test/harness"
	"github.com/edgegw/gateway/test/testenv"
)

// envInt is the integer in the environment variable key, or def.
func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

// envDuration is the duration in the environment variable key, or def.
func envDuration(key string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

// rig is one benchmark's gateway: its config, site (MQTT topics
// site/<site>/...), MQTT client ID and buffer, against the shared services.
type rig struct {
	b        *testing.B
	id       string // gateway ID and MQTT client ID
	site     string
	dir      string
	mqtt     string
	httpAddr string
	ns       string // Pulsar namespace, "" = uplink at a dead address
	gw       *harness.Gateway
}

func newRig(b *testing.B, name string) *rig {
	stamp := time.Now().UnixNano() % 1e9
	r := &rig{
		b: b, id: fmt.Sprintf("bench-%s-%d", name, stamp), site: fmt.Sprintf("bench%s%d", name, stamp),
		dir: b.TempDir(), mqtt: testenv.MQTT(b), httpAddr: fmt.Sprintf("127.0.0.1:%d", harness.FreePort(b)),
	}
	b.Cleanup(func() { clearSession(r.mqtt, r.id) })
	return r
}

// withPulsar gives the rig a fresh namespace (deduplication on), deleted
// with its topics when the benchmark ends.
func (r *rig) withPulsar() *rig {
	r.ns = harness.Namespace(r.b, "bench")
	r.b.Cleanup(func() { deleteNamespace(r.b, r.ns) })
	return r
}

// config writes the gateway config; with dead, the uplink points at a port
// nothing listens on (events stay buffered).
func (r *rig) config(dead bool) string {
	service, admin := testenv.Pulsar(r.b)
	tenant, ns := "public", "unused"
	if r.ns != "" {
		parts := strings.SplitN(r.ns, "/", 2)
		tenant, ns = parts[0], parts[1]
	}
	if dead || r.ns == "" {
		port := harness.FreePort(r.b)
		service, admin = fmt.Sprintf("pulsar://127.0.0.1:%d", port), fmt.Sprintf("http://127.0.0.1:%d", port)
	}
	return fmt.Sprintf(`
gateway:
  id: %[1]s
buffer:
  path: %[2]s
  disk_budget: 4GiB
streams:
  - name: scans
    priority: 10
    overflow: reject-new
  - name: telemetry
    priority: 1
    overflow: drop-oldest
sources:
  - name: mosquitto
    driver: mqtt
    mqtt:
      brokers: [%[3]s]
      client_id: %[1]s
      broker_inflight: 1000
      subscriptions:
        - topic: site/%[4]s/+dock/scanner/+device
          kind: scan
          stream: scans
          source: "{dock}-{device}"
          fields: {time: ts}
        - topic: site/%[4]s/sensor/+device
          kind: reading
          stream: telemetry
          source: "{device}"
          fields: {time: ts, attrs: [metric]}
uplink:
  service_url: %[5]s
  admin_url: %[6]s
  tenant: %[7]s
  namespace: %[8]s
http:
  listen: %[9]s
  pprof: %[10]t
log:
  level: info
`, r.id, filepath.Join(r.dir, "buffer.db"), r.mqtt, r.site, service, admin, tenant, ns, r.httpAddr, os.Getenv("EDGE_BENCH_PPROF") != "")
}

// profile records a CPU profile of the running gateway for d into
// $EDGE_BENCH_PPROF/<id>-<label>.pprof, in the background, when that
// variable names a directory (for `go tool pprof`); otherwise it does
// nothing. The benchmark's cleanup waits for it.
func (r *rig) profile(label string, d time.Duration) {
	dir := os.Getenv("EDGE_BENCH_PPROF")
	if dir == "" {
		return
	}
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", r.httpAddr, int(d.Seconds()))
	out := filepath.Join(dir, r.id+"-"+label+".pprof")
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(url)
		if err != nil {
			r.b.Logf("profile %s: %v", label, err)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil {
			err = os.WriteFile(out, body, 0o600)
		}
		r.b.Logf("profile %s: %s (%v)", label, out, err)
	}()
	r.b.Cleanup(func() { <-done })
}

// start (re)writes the config and starts the gateway; it returns once
// /readyz answers.
func (r *rig) start(dead bool) {
	r.gw = harness.NewGateway(r.b, r.dir, r.config(dead), r.httpAddr)
	r.gw.Start()
}

func (r *rig) stop() { r.gw.Stop() }

// filters are the subscriptions of the rig's site, for bare subscribers.
func filters(site string) map[string]byte {
	return map[string]byte{
		"site/" + site + "/+/scanner/+": 1,
		"site/" + site + "/sensor/+":    1,
	}
}

// accepted is the gateway's count of events committed to its buffer.
func (r *rig) accepted() float64 {
	return r.gw.Metric("edge_gateway_ingest_events_total", `result="accepted"`)
}

// buffered is the number of events held in the gateway's buffer, -1 when
// the gateway does not answer.
func (r *rig) buffered() float64 {
	s, ok := r.gw.Status()
	if !ok {
		return -1
	}
	n := int64(0)
	for _, st := range s.Streams {
		n += st.Depth
	}
	return float64(n)
}

// waitFor polls cond every 20ms until it holds, failing after timeout; it
// returns when it first held. (Not testenv.Eventually: the time it returns
// is a measurement, so the poll interval stays short and fixed.)
func waitFor(b *testing.B, gw *harness.Gateway, timeout time.Duration, what string, cond func() bool) time.Time {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			log := ""
			if gw != nil {
				log = gw.Log()
			}
			b.Fatalf("timed out after %s waiting for %s\n%s", timeout, what, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Now()
}

// payload is message i of the simulator-like traffic: 4 scanners at 4 docks
// and 2 temperature sensors, in turn; the topic and JSON body.
func payload(site string, i int, buf []byte) (string, []byte) {
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	k := i % 6
	if k < 4 {
		return fmt.Sprintf("site/%s/dock%d/scanner/scn-%02d", site, k+1, k+1),
			fmt.Appendf(buf[:0], `{"barcode":"00%018d","symbology":"GS1-128","ts":%q,"device":"scn-%02d","n":%d}`, 106141410000000000+i, ts, k+1, i)
	}
	return fmt.Sprintf("site/%s/sensor/temp-%02d", site, k-3),
		fmt.Appendf(buf[:0], `{"value":%.2f,"unit":"Cel","metric":"temperature","ts":%q,"device":"temp-%02d","n":%d}`, 4+float64(i%300)/100, ts, k-3, i)
}

// publish sends n messages of the site's traffic at QoS 1 from pubs clients
// in parallel, each keeping up to 1,000 unacknowledged, and returns once
// the broker has acknowledged all of them.
func publish(b *testing.B, broker, site string, n, pubs int) time.Duration {
	b.Helper()
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for p := 0; p < pubs; p++ {
		o := paho.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("%s-pub%d", site, p)).
			SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second).SetWriteTimeout(30 * time.Second)
		c := paho.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
			b.Fatalf("publisher connect: %v", tok.Error())
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Disconnect(250)
			toks := make(chan paho.Token, 1000)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for t := range toks {
					if !t.WaitTimeout(2*time.Minute) || t.Error() != nil {
						failed.Add(1)
					}
				}
			}()
			buf := make([]byte, 0, 256)
			for i := p; i < n; i += pubs {
				topic, body := payload(site, i, buf)
				toks <- c.Publish(topic, 1, false, bytes.Clone(body))
			}
			close(toks)
			<-done
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d publishes failed", f, n)
	}
	return time.Since(start)
}

// bareSub is the baseline: a bare paho QoS 1 subscriber with the gateway's
// MQTT client settings (persistent session, manual ack, in-order handler,
// MQTT 3.1.1), acknowledging each message as soon as it has it.
type bareSub struct {
	c paho.Client
	n atomic.Int64

	mu      sync.Mutex
	latency []float64 // seconds from the payload's ts to receipt, when tracking
	track   bool
}

func newBareSub(b *testing.B, broker, clientID string, track bool) *bareSub {
	b.Helper()
	s := &bareSub{track: track}
	o := paho.NewClientOptions().AddBroker(broker).SetClientID(clientID).
		SetCleanSession(false).SetAutoAckDisabled(true).SetOrderMatters(true).SetResumeSubs(false).
		SetProtocolVersion(4).SetKeepAlive(30 * time.Second).SetPingTimeout(15 * time.Second).
		SetConnectTimeout(10 * time.Second).SetWriteTimeout(10 * time.Second).SetAutoReconnect(true).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			m.Ack()
			s.n.Add(1)
			if s.track {
				now := time.Now()
				var p struct {
					TS time.Time `json:"ts"`
				}
				if json.Unmarshal(m.Payload(), &p) == nil && !p.TS.IsZero() {
					s.mu.Lock()
					s.latency = append(s.latency, now.Sub(p.TS).Seconds())
					s.mu.Unlock()
				}
			}
		})
	s.c = paho.NewClient(o)
	b.Cleanup(func() { clearSession(broker, clientID) })
	return s
}

// connect connects and, with filters, subscribes.
func (s *bareSub) connect(b *testing.B, filters map[string]byte) {
	b.Helper()
	if tok := s.c.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		b.Fatalf("bare subscriber connect: %v", tok.Error())
	}
	if filters != nil {
		if tok := s.c.SubscribeMultiple(filters, nil); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
			b.Fatalf("bare subscriber subscribe: %v", tok.Error())
		}
	}
}

func (s *bareSub) disconnect() { s.c.Disconnect(1000) }

func (s *bareSub) latencies() []float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.latency)
}

// clearSession drops the broker's persistent session of clientID (and any
// messages queued for it) by connecting once with a clean session.
func clearSession(broker, clientID string) {
	o := paho.NewClientOptions().AddBroker(broker).SetClientID(clientID).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(o)
	if tok := c.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
		c.Disconnect(100)
	}
}

// deleteNamespace deletes ns and its topics, so that the benchmarks' millions
// of messages do not stay in the shared Pulsar.
func deleteNamespace(b *testing.B, ns string) {
	_, adminURL := testenv.Pulsar(b)
	adm, err := pulsaradmin.NewClient(&config.Config{WebServiceURL: adminURL})
	if err != nil {
		b.Logf("cleanup: %v", err)
		return
	}
	name, err := utils.GetNamespaceName(ns)
	if err != nil {
		b.Logf("cleanup: %v", err)
		return
	}
	topics, err := adm.Namespaces().GetTopics(name.String())
	if err != nil {
		b.Logf("cleanup: list topics of %s: %v", ns, err)
	}
	for _, tp := range topics {
		tn, err := utils.GetTopicName(tp)
		if err == nil {
			err = adm.Topics().Delete(*tn, true, true)
		}
		if err != nil {
			b.Logf("cleanup: delete %s: %v", tp, err)
		}
	}
	if err := adm.Namespaces().DeleteNamespace(ns); err != nil {
		b.Logf("cleanup: delete namespace %s: %v", ns, err)
	}
}

// gatewayPID finds the gateway process started with configPath.
func gatewayPID(b *testing.B, configPath string) int {
	b.Helper()
	want := []byte("-config\x00" + configPath + "\x00")
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cl, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err == nil && bytes.Contains(cl, want) {
			pid, _ := strconv.Atoi(filepath.Base(d))
			return pid
		}
	}
	b.Fatalf("no process runs with -config %s", configPath)
	return 0
}

// procMiB reads a kB field ("VmRSS", "VmHWM") of /proc/<pid>/status, in MiB.
func procMiB(pid int, field string) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// rssSampler samples a process's VmRSS and RssAnon (its heap, stacks and
// other private memory; VmRSS also counts the mapped pages of the bbolt
// file it has touched) every 250ms until stopped.
type rssSampler struct {
	stop      chan struct{}
	done      chan struct{}
	rss, anon []float64
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			if v := procMiB(pid, "VmRSS"); v > 0 {
				s.rss = append(s.rss, v)
				s.anon = append(s.anon, procMiB(pid, "RssAnon"))
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// memStats are the mean and the largest sample of VmRSS and RssAnon, MiB.
type memStats struct{ rssMean, rssPeak, anonMean, anonPeak float64 }

// end stops sampling and returns what it saw.
func (s *rssSampler) end() memStats {
	close(s.stop)
	<-s.done
	var m memStats
	m.rssMean, m.rssPeak = meanMax(s.rss)
	m.anonMean, m.anonPeak = meanMax(s.anon)
	return m
}

// report adds the figures to b's metrics.
func (m memStats) report(b *testing.B) {
	b.ReportMetric(m.rssMean, "rss-MiB")
	b.ReportMetric(m.rssPeak, "rss-peak-MiB")
	b.ReportMetric(m.anonMean, "anon-MiB")
	b.ReportMetric(m.anonPeak, "anon-peak-MiB")
}

func meanMax(xs []float64) (mean, peak float64) {
	for _, v := range xs {
		mean += v
		peak = max(peak, v)
	}
	if len(xs) > 0 {
		mean /= float64(len(xs))
	}
	return mean, peak
}

// pct is the p-th percentile of xs (0 when empty).
func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p/100))]
}

// fileMiB is the size of a file in MiB (0 when absent).
func fileMiB(path string) float64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return float64(fi.Size()) / (1 << 20)
}

// relay is the latency baseline: a bare paho subscriber (the gateway's
// session settings) that hands every message to a bare pulsar-client-go
// producer (the uplink's settings) and acknowledges it to the broker at once,
// storing nothing.
type relay struct {
	sub    paho.Client
	client pulsar.Client
	prod   pulsar.Producer
}

func newRelay(b *testing.B, broker, site, ns string) *relay {
	b.Helper()
	url, _ := testenv.Pulsar(b)
	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: url, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	prod, err := client.CreateProducer(pulsar.ProducerOptions{
		Topic: harness.Topic(ns, "relay"), Name: "bench-relay", DisableBatching: true, SendTimeout: -1,
		MaxPendingMessages: 1000, CompressionType: pulsar.LZ4,
	})
	if err != nil {
		client.Close()
		b.Fatal(err)
	}
	r := &relay{client: client, prod: prod}
	clientID := site + "-relay"
	o := paho.NewClientOptions().AddBroker(broker).SetClientID(clientID).
		SetCleanSession(false).SetAutoAckDisabled(true).SetOrderMatters(true).SetResumeSubs(false).
		SetProtocolVersion(4).SetKeepAlive(30 * time.Second).SetConnectTimeout(10 * time.Second).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			prod.SendAsync(context.Background(), &pulsar.ProducerMessage{Payload: m.Payload(), Key: m.Topic()}, func(pulsar.MessageID, *pulsar.ProducerMessage, error) {})
			m.Ack()
		})
	r.sub = paho.NewClient(o)
	if tok := r.sub.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		b.Fatalf("relay connect: %v", tok.Error())
	}
	if tok := r.sub.SubscribeMultiple(filters(site), nil); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		b.Fatalf("relay subscribe: %v", tok.Error())
	}
	b.Cleanup(func() { clearSession(broker, clientID) })
	return r
}

func (r *relay) close() {
	r.sub.Disconnect(1000)
	_ = r.prod.FlushWithCtx(context.Background())
	r.prod.Close()
	r.client.Close()
}
