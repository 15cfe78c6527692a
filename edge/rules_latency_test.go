package edge

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/edge/config"
	"github.com/edgegw/gateway/test/testenv"
)

// outprobe is a test driver with one output, "light", that records when
// each command reaches it.
type outprobeConfig struct{}

func (outprobeConfig) CommandOutputs() []string { return []string{"light"} }

type outprobe struct{ got chan time.Time }

func (p *outprobe) Run(ctx context.Context, _ drivers.Sink) error { <-ctx.Done(); return nil }

func (p *outprobe) DriveOutput(name string, _ drivers.OutputCommand) error {
	select {
	case p.got <- time.Now():
	default:
	}
	return nil
}

var outprobes = struct {
	sync.Mutex
	last *outprobe
}{}

func init() {
	drivers.Register("outprobe", drivers.Registration{
		NewConfig: func() any { return &outprobeConfig{} },
		New: func(any, drivers.Env) (drivers.Driver, error) {
			p := &outprobe{got: make(chan time.Time, 4096)}
			outprobes.Lock()
			outprobes.last = p
			outprobes.Unlock()
			return p, nil
		},
	})
}

// BenchmarkPublishToOutput: MQTT publish (QoS 1, the test Mosquitto) →
// the gateway's mqtt source → commit → rule → output command, at 1,000
// scans/s of which one in 50 is a mis-sort that fires the rule; against a
// bare paho subscriber's receipt of the same mis-sorts, in the same run.
// EDGE_BENCH_OUTPUT_SECONDS sets how long it publishes (default 10).
func BenchmarkPublishToOutput(b *testing.B) {
	mqttURL := testenv.MQTT(b)
	secs := 10
	if v := os.Getenv("EDGE_BENCH_OUTPUT_SECONDS"); v != "" {
		fmt.Sscan(v, &secs)
	}
	stamp := time.Now().UnixNano()
	root := fmt.Sprintf("bench/rules-%d", stamp)
	dir := b.TempDir()
	doc := fmt.Sprintf(`gateway: {id: bench-rules}
buffer: {path: %s}
streams:
  - {name: scans, priority: 10}
  - {name: alerts, priority: 20}
uplink: {service_url: "pulsar://127.0.0.1:1", require_dedup: false}
http: {listen: "off"}
sources:
  - name: site
    driver: mqtt
    mqtt:
      brokers: [%s]
      client_id: bench-rules-%d
      subscriptions:
        - {topic: "%s/+dock/scanner/+device", kind: scan, stream: scans, source: "{dock}-{device}", fields: {attrs: [route, k]}}
  - {name: probe, driver: outprobe, outprobe: {}}
rules:
  - name: missort
    match: {streams: [scans], vars: {dock: dock3}}
    when: attrs.route == "R5"
    actions:
      - alert: {stream: alerts, attrs: [k]}
      - gpio: {source: probe, output: light, mode: pulse, for: 10ms}
`, filepath.Join(dir, "b.db"), mqttURL, stamp, root)
	cfg, err := config.Parse([]byte(doc))
	if err != nil {
		b.Fatal(err)
	}
	g := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	testenv.Eventually(b, 20*time.Second, "gateway ready", func() bool { return g.Status().Ready })
	outprobes.Lock()
	probe := outprobes.last
	outprobes.Unlock()

	// The baseline: a bare subscriber's receipt of the mis-sorts.
	bare := make(chan time.Time, 4096)
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(mqttURL).SetClientID(fmt.Sprintf("bench-bare-%d", stamp)))
	if t := sub.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		b.Fatal("bare subscriber: ", t.Error())
	}
	defer sub.Disconnect(100)
	if t := sub.Subscribe(root+"/dock3/scanner/+", 1, func(_ paho.Client, m paho.Message) {
		if strings.Contains(string(m.Payload()), `"R5"`) {
			bare <- time.Now()
		}
	}); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		b.Fatal("subscribe: ", t.Error())
	}
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(mqttURL).SetClientID(fmt.Sprintf("bench-pub-%d", stamp)).SetMaxResumePubInFlight(1000))
	if t := pub.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		b.Fatal("publisher: ", t.Error())
	}
	defer pub.Disconnect(100)

	const rate, every = 1000, 50
	total := secs * rate
	var sent []time.Time
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	b.ResetTimer()
	for k := range total {
		<-tick.C
		route, dock := "R3", 1+k%4
		if k%every == every-1 {
			route, dock = "R5", 3
		}
		payload := fmt.Sprintf(`{"barcode":"00%018d","route":%q,"k":%d}`, k, route, k)
		if route == "R5" {
			sent = append(sent, time.Now())
		}
		pub.Publish(fmt.Sprintf("%s/dock%d/scanner/s1", root, dock), 1, false, payload)
	}
	var gw, raw []time.Duration
	collect := func(ch chan time.Time, into *[]time.Duration, what string) {
		for i := range sent {
			select {
			case at := <-ch:
				*into = append(*into, at.Sub(sent[i]))
			case <-time.After(30 * time.Second):
				b.Fatalf("%s: %d of %d mis-sorts arrived", what, i, len(sent))
			}
		}
	}
	collect(probe.got, &gw, "output commands")
	collect(bare, &raw, "bare subscriber")
	b.StopTimer()
	pct := func(d []time.Duration, p int) float64 {
		slices.Sort(d)
		return float64(d[(len(d)-1)*p/100].Microseconds()) / 1000
	}
	b.ReportMetric(pct(gw, 50), "p50-ms")
	b.ReportMetric(pct(gw, 99), "p99-ms")
	b.ReportMetric(pct(raw, 50), "bare-p50-ms")
	b.ReportMetric(pct(raw, 99), "bare-p99-ms")
	b.ReportMetric(float64(len(sent)), "firings")
}
