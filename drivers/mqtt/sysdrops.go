package mqtt

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/units"
)

// BrokerDrops watches a site broker's counter of the messages it dropped
// (Mosquitto: "Outgoing messages are being dropped", when a client's queue
// is over max_queued_messages/max_queued_bytes while max_inflight_messages
// are in flight, or while it is offline). Custody of a device's message
// passes at the site broker's PUBACK, so the gateway cannot prevent such a
// drop; it makes it visible instead.
//
// The driver opens a second, small connection to the broker (client ID
// ClientID, QoS 0, so that the readings neither wait in nor add to the
// session's queue) and subscribes to Topic, whose payload is the broker's
// running count in decimal (Mosquitto publishes it retained, every
// sys_interval, default 10s, when it changed). The first reading is a
// baseline. When a reading is n above the previous one, the driver emits one
// gap event (kind "gap", reason "broker-dropped", count n, from/to the
// counter's previous+1 … new value, attrs["topic"] the counter's topic) to
// Stream, counts n in Stats.BrokerDropped, and logs a warning (at most every
// 10s, with what was dropped since the last one). A reading below the
// previous one (the broker restarted) is a new baseline. The watch starts
// when the driver connects and lasts while it runs.
//
// The baseline is kept in the source's durable store (drivers.Env.Store),
// so drops while the gateway was stopped or reconfigured are reported at
// the first reading after it comes back. To tell those from a broker that
// restarted meanwhile (its counter starts again at 0), the watch also reads
// UptimeTopic: when the broker's start time (now - uptime) moved, the
// counter counts from 0 since that start, and all of it is reported. A gap
// event carries a key made of the counter's topic, the baseline's broker
// start and its range, so a gap emitted again after a crash (before the
// new baseline was stored) is recognised by the buffer and not stored twice.
//
// Mosquitto's counter is broker-wide: it counts what the broker dropped for
// any client, not only for this gateway's session. The gateway reports it
// all (it cannot tell whose), so a gap of reason broker-dropped means: this
// broker lost messages, check its limits. It needs read access to the topic
// (an ACL that hides $SYS turns the watch into a warning at start).
type BrokerDrops struct {
	// Topic of the broker's drop counter. Default
	// "$SYS/broker/publish/messages/dropped" (Mosquitto 2.0); "" or "off"
	// turns the watch off (brokers without such a counter). Always off
	// for the embedded broker.
	Topic string `yaml:"topic"`
	// Stream the gap events go to. Default: the first subscription's.
	Stream string `yaml:"stream"`
	// Source of the gap events. Default "mqtt-broker".
	Source string `yaml:"source"`
	// ClientID of the watch's connection. Default the driver's client ID
	// with "-sys" appended.
	ClientID string `yaml:"client_id"`
	// UptimeTopic is the broker's uptime in seconds ("123 seconds"), to
	// tell a broker restart from drops while the gateway was away. Default
	// "$SYS/broker/uptime" (Mosquitto); "off": only a counter that went
	// backwards says the broker restarted.
	UptimeTopic string `yaml:"uptime_topic"`
}

const (
	// MosquittoDropped is Mosquitto's $SYS counter of dropped messages.
	MosquittoDropped = "$SYS/broker/publish/messages/dropped"
	// MosquittoUptime is Mosquitto's $SYS uptime, "<n> seconds".
	MosquittoUptime = "$SYS/broker/uptime"
	// GapBrokerDropped is the reason of a gap the broker's counter shows.
	GapBrokerDropped = "broker-dropped"

	defaultBrokerSource = "mqtt-broker"
)

func (b *BrokerDrops) validate(v *units.Errors, path string) {
	if b.off() {
		return
	}
	if strings.ContainsAny(b.Topic, "+#\x00") {
		v.Add(path+".topic", "%q: a topic name, without wildcards", b.Topic)
	}
	if strings.ContainsAny(b.UptimeTopic, "+#\x00") {
		v.Add(path+".uptime_topic", "%q: a topic name, without wildcards", b.UptimeTopic)
	}
	if len(b.ClientID) > 65535 {
		v.Add(path+".client_id", "longer than 65535 bytes")
	}
}

func (b *BrokerDrops) off() bool { return b.Topic == "" || b.Topic == "off" }

// dropCounter turns readings of the broker's cumulative drop counter into
// gaps.
type dropCounter struct {
	last uint64
	have bool
}

// reading takes the counter's value v: a rise is a gap (ok); back says the
// counter went backwards (a new baseline).
func (c *dropCounter) reading(v uint64) (g event.Gap, ok, back bool) {
	prev, have := c.last, c.have
	c.last, c.have = v, true
	switch {
	case !have || v == prev:
		return event.Gap{}, false, false
	case v < prev:
		return event.Gap{}, false, true
	}
	return event.Gap{From: prev + 1, To: v, Count: v - prev, Reason: GapBrokerDropped}, true, false
}

// brokerWatch is the running watch of the broker's drop counter.
type brokerWatch struct {
	mu      sync.Mutex
	ctx     context.Context // of the Run it belongs to
	done    chan struct{}   // closed when it stopped
	counter dropCounter     // kept across runs and reconnections
	start   int64           // the broker's start (unix s) the counter counts from; 0: unknown
	loaded  bool            // counter and start were read from the store
}

// dropBaseline is the watch's state in the source's store.
type dropBaseline struct {
	Value uint64 `json:"value"`
	Start int64  `json:"start,omitempty"` // broker start, unix seconds
}

const dropBaselineKey = "broker-drops"

// restartSlack is how far two estimates of the broker's start (now -
// uptime, with uptime published every sys_interval) may differ without
// meaning a restart.
const restartSlack = 2 * time.Minute

// warnEvery is the least time between two warnings about the broker's
// drops (those in between are added to the next).
const warnEvery = 10 * time.Second

// uptimeWait bounds how long the watch waits for the broker's uptime before
// its first counter reading.
const uptimeWait = 15 * time.Second

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

// loadDropBaseline takes the baseline from the source's store, once per
// driver (later runs keep the one in memory, which is as new).
func (d *Driver) loadDropBaseline(w *brokerWatch) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.loaded || d.store == nil {
		return
	}
	w.loaded = true
	raw, err := d.store.Get(dropBaselineKey)
	if err != nil {
		d.log.Warn("broker drop watch: stored baseline unreadable; the first reading is a new baseline", "err", err)
		return
	}
	if raw == nil {
		return
	}
	var bl dropBaseline
	if err := json.Unmarshal(raw, &bl); err != nil {
		d.log.Warn("broker drop watch: stored baseline unreadable; the first reading is a new baseline", "err", err)
		return
	}
	w.counter, w.start = dropCounter{last: bl.Value, have: true}, bl.Start
}

// saveDropBaseline stores the baseline; a failure is logged (the next
// change tries again; a restart before then reports the same gap again,
// which the gap's key makes harmless).
func (d *Driver) saveDropBaseline(bl dropBaseline) {
	if d.store == nil {
		return
	}
	raw, _ := json.Marshal(bl)
	if err := d.store.Put(dropBaselineKey, raw); err != nil {
		d.log.Warn("broker drop watch: baseline not stored", "err", err)
	}
}
