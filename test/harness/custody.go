package harness

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgegw/gateway/buffer"
	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/testenv"
)

// What a custody test checks from the devices' side: which scans the
// broker acknowledged (AckLog), and which scans the buffer holds
// afterwards (StoredScans).

// AckLog publishes scans from paho clients with many in flight and
// records which ones the broker acknowledged (PUBACK), by "pub/n".
type AckLog struct {
	Mu    sync.Mutex
	Acked map[string]bool
	Sent  atomic.Int64
	N     atomic.Int64 // acked
}

// NewAckLog returns an empty log.
func NewAckLog() *AckLog { return &AckLog{Acked: map[string]bool{}} }

// Burst publishes count scans as pub, without waiting between them,
// keeping at most inflight unacknowledged; it returns when every token has
// completed (acked, or failed because the connection died).
func (a *AckLog) Burst(t testing.TB, broker, pub string, count, inflight int) {
	a.BurstWith(t, broker, pub, count, inflight, nil)
}

// BurstWith is Burst, calling lost (when set) if the connection drops.
func (a *AckLog) BurstWith(t testing.TB, broker, pub string, count, inflight int, lost func()) {
	o := paho.NewClientOptions().AddBroker(broker).SetClientID(pub).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectTimeout(10 * time.Second).SetWriteTimeout(10 * time.Second)
	if lost != nil {
		o.SetConnectionLostHandler(func(paho.Client, error) { lost() })
	}
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Errorf("connect %s: %v", pub, tok.Error())
		return
	}
	defer c.Disconnect(50)
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	topic := "site/dock9/scanner/" + pub
	for n := range count {
		if !c.IsConnectionOpen() {
			break
		}
		sem <- struct{}{}
		tok := c.Publish(topic, 1, false, ScanLine(pub, n))
		a.Sent.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if tok.WaitTimeout(30*time.Second) && tok.Error() == nil {
				a.Mu.Lock()
				a.Acked[fmt.Sprintf("%s/%d", pub, n)] = true
				a.Mu.Unlock()
				a.N.Add(1)
			}
		}()
	}
	wg.Wait()
}

// StoredScans opens the buffer file at path (the gateway must be
// stopped) and counts the stored scans of stream scans by "pub/n".
func StoredScans(t testing.TB, path string) map[string]int {
	t.Helper()
	db, err := buffer.Open(path, &buffer.Options{ReadOnly: true, NoMoveAside: true, CompactRatio: -1, LockTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("open buffer: %v", err)
	}
	defer db.Close()
	out := map[string]int{}
	var after uint64
	for {
		es, err := db.Read("scans", after, 10000)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			return out
		}
		for _, e := range es {
			ev, err := event.Unmarshal(e.Data)
			if err != nil {
				t.Fatalf("seq %d: %v", e.Seq, err)
			}
			if ev.Kind == event.KindScan {
				out[fmt.Sprintf("%v/%v", ev.Attrs["pub"], ev.Attrs["n"])]++
			}
			after = e.Seq
		}
	}
}

// ScanLine is the JSON payload of scan n of device pub.
func ScanLine(pub string, n int) string {
	return fmt.Sprintf(`{"barcode":"00%018d","pub":%q,"n":%d}`, n, pub, n)
}

// Embedded is a gateway whose devices publish to its own broker, with the
// uplink down (nothing listens on its Pulsar port).
type Embedded struct {
	GW       *Gateway
	Broker   string // tcp://host:port of the embedded broker
	BufferDB string
}

// CrashMidBurst runs rounds of: start the gateway, four devices each
// publishing 20,000 scans with 200 in flight (named prefix<round>-<device>),
// and once 3,000 more are acknowledged, crash (which must stop the
// gateway, e.g. Kill); then it waits for the devices to give up.
func (s *Embedded) CrashMidBurst(t testing.TB, acks *AckLog, rounds int, prefix string, crash func()) {
	t.Helper()
	for round := range rounds {
		s.GW.Start()
		before := acks.N.Load()
		var wg sync.WaitGroup
		for d := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				acks.Burst(t, s.Broker, fmt.Sprintf("%s%d-%d", prefix, round, d), 20000, 200)
			}()
		}
		testenv.Eventually(t, 60*time.Second, "a few thousand scans acknowledged", func() bool { return acks.N.Load() >= before+3000 })
		crash()
		wg.Wait()
	}
}

// Missing fails t unless every scan in a was stored (got: StoredScans),
// naming a few of those missing; what says after what.
func (a *AckLog) Missing(t testing.TB, got map[string]int, what string) {
	t.Helper()
	a.Mu.Lock()
	defer a.Mu.Unlock()
	missing := 0
	for k := range a.Acked {
		if got[k] == 0 {
			missing++
			if missing <= 3 {
				t.Errorf("scan %s was acknowledged and is not in the buffer", k)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged scans missing after %s", missing, len(a.Acked), what)
	}
}

// NewEmbedded writes its config into dir; the buffer file is bufferDB, or
// dir/buffer.db when it is "".
func NewEmbedded(t testing.TB, dir, bufferDB string) *Embedded {
	t.Helper()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	mqttAddr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	deadPulsar := FreePort(t) // nothing listens: the uplink is down
	db := bufferDB
	if db == "" {
		db = filepath.Join(dir, "buffer.db")
	}
	cfg := fmt.Sprintf(`
gateway:
  id: custody-%d
buffer:
  path: %s
streams:
  - name: scans
    priority: 10
    overflow: reject-new
broker:
  listen: %s
  allow_anonymous: true
sources:
  - name: devices
    driver: mqtt
    mqtt:
      brokers: [embedded]
      subscriptions:
        - topic: site/+dock/scanner/+device
          kind: scan
          stream: scans
          source: "{dock}-{device}"
          fields: {attrs: [n, pub]}
uplink:
  service_url: pulsar://127.0.0.1:%d
  admin_url: http://127.0.0.1:%d
  require_dedup: false
http:
  listen: %s
log:
  level: info
`, time.Now().UnixNano()%1e9, db, mqttAddr, deadPulsar, deadPulsar, httpAddr)
	return &Embedded{GW: NewGateway(t, dir, cfg, httpAddr), Broker: "tcp://" + mqttAddr, BufferDB: db}
}
