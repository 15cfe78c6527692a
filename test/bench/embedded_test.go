package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edgegw/gateway/test/harness"
)

// Embedded-broker benchmarks: the gateway as the devices' broker (the
// `broker:` section, an MQTT source on `brokers: [embedded]`), where a
// device's PUBACK is written only after the bbolt commit that holds its
// publish, against the site-broker topology (devices → Mosquitto → the
// gateway's persistent session) on the same load in the same run. Sizes:
//
//	EDGE_BENCH_EMBEDDED_CLIENTS   pipelining QoS 1 publishers              10
//	EDGE_BENCH_EMBEDDED_SCANS     scans each publisher sends               20000
//	EDGE_BENCH_EMBEDDED_WINDOW    publishes each keeps unacknowledged      100
//	EDGE_BENCH_DEVICES            idle devices connected (devices RSS)      1000
//	EDGE_BENCH_DEVICE_SCANS       scans each of them publishes first        3

// embeddedConfig is the gateway config of an embedded-broker rig: the
// broker on mqttAddr (anonymous devices may publish anywhere), one MQTT
// source attached to it with the rig's subscriptions, and the uplink at a
// dead port (only ingest runs).
func (r *rig) embeddedConfig(mqttAddr string) string {
	dead := harness.FreePort(r.b)
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
broker:
  listen: %[3]s
  allow_anonymous: true
sources:
  - name: devices
    driver: mqtt
    mqtt:
      brokers: [embedded]
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
  service_url: pulsar://127.0.0.1:%[5]d
  admin_url: http://127.0.0.1:%[5]d
  require_dedup: false
http:
  listen: %[6]s
  pprof: %[7]t
log:
  level: info
`, r.id, filepath.Join(r.dir, "buffer.db"), mqttAddr, r.site, dead, r.httpAddr, os.Getenv("EDGE_BENCH_PPROF") != "")
}

// startEmbedded starts the rig's gateway as an embedded-broker gateway and
// returns its device listener's URL (tcp://host:port).
func (r *rig) startEmbedded() string {
	addr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(r.b))
	r.gw = harness.NewGateway(r.b, r.dir, r.embeddedConfig(addr), r.httpAddr)
	r.gw.Start()
	return "tcp://" + addr
}

// scanPayload is scan i of device dev of the site: its own topic
// (site/<site>/dock<k>/scanner/dev<dev>) and a JSON body like the
// simulator's.
func scanPayload(site string, dev, i int, buf []byte) (string, []byte) {
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	return fmt.Sprintf("site/%s/dock%d/scanner/dev%04d", site, dev%4+1, dev),
		fmt.Appendf(buf[:0], `{"barcode":"00%018d","symbology":"GS1-128","ts":%q,"device":"dev%04d","n":%d}`, 106141410000000000+dev*1_000_000+i, ts, dev, i)
}

// pipelined is what pipelinePublish measured.
type pipelined struct {
	start, end time.Time // first publish, last PUBACK
}

// pipelinePublish connects clients paho clients (MQTT 3.1.1, clean
// session) to broker, then has each publish scans QoS 1 scans of its own
// device as fast as acks come back, keeping at most window unacknowledged;
// it returns once every publish is acknowledged.
func pipelinePublish(b *testing.B, broker, site string, clients, scans, window int) pipelined {
	b.Helper()
	cs := make([]paho.Client, clients)
	for p := range cs {
		o := paho.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("%s-dev%04d", site, p)).
			SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false).
			SetConnectTimeout(10 * time.Second).SetWriteTimeout(30 * time.Second).SetKeepAlive(60 * time.Second)
		cs[p] = paho.NewClient(o)
		if tok := cs[p].Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
			b.Fatalf("publisher %d connect: %v", p, tok.Error())
		}
	}
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
		mu     sync.Mutex
		last   time.Time
	)
	start := time.Now()
	for p, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Disconnect(250)
			// Tokens complete in the order of the publishes (acks come back
			// in order), so the waiter frees one slot per ack.
			toks := make(chan paho.Token, window-1)
			done := make(chan time.Time)
			go func() {
				var t time.Time
				for tok := range toks {
					if !tok.WaitTimeout(2*time.Minute) || tok.Error() != nil {
						failed.Add(1)
					}
					t = time.Now()
				}
				done <- t
			}()
			buf := make([]byte, 0, 256)
			for i := range scans {
				topic, body := scanPayload(site, p, i, buf)
				toks <- c.Publish(topic, 1, false, bytes.Clone(body))
			}
			close(toks)
			t := <-done
			mu.Lock()
			if t.After(last) {
				last = t
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d publishes failed or were not acknowledged", f, clients*scans)
	}
	return pipelined{start: start, end: last}
}

func BenchmarkEmbeddedIngest(b *testing.B) {
	clients := envInt("EDGE_BENCH_EMBEDDED_CLIENTS", 10)
	scans := envInt("EDGE_BENCH_EMBEDDED_SCANS", 20_000)
	window := max(2, envInt("EDGE_BENCH_EMBEDDED_WINDOW", 100))
	n := clients * scans

	// The embedded broker: the devices' last PUBACK is the end, since each
	// PUBACK is written after the commit that holds the publish.
	re := newRig(b, "embedded")
	broker := re.startEmbedded()
	rss := sampleRSS(gatewayPID(b, re.gw.Config))
	re.profile("embedded-ingest", 8*time.Second)
	emb := pipelinePublish(b, broker, re.site, clients, scans, window)
	embMem := rss.end()
	// Every acknowledged publish must be in the buffer already; the counter
	// is bumped right after the commit, so give it a moment.
	waitFor(b, re.gw, 10*time.Second, fmt.Sprintf("%d events committed", n), func() bool { return re.accepted() >= float64(n) })
	if got := re.accepted(); got != float64(n) {
		b.Fatalf("embedded: %d publishes acknowledged, %.0f events accepted", n, got)
	}
	re.stop()
	embDur := emb.end.Sub(emb.start)

	// The site broker: the same devices publish to Mosquitto, which acks
	// them at once; the gateway's persistent session takes them from there
	// and the end is when the gateway has committed all of them.
	rm := newRig(b, "mosquitto")
	rm.gw = harness.NewGateway(b, rm.dir, strings.Replace(rm.config(true), "\nuplink:\n", "\nuplink:\n  require_dedup: false\n", 1), rm.httpAddr)
	rm.gw.Start()
	rss = sampleRSS(gatewayPID(b, rm.gw.Config))
	rm.profile("mosquitto-ingest", 8*time.Second)
	mos := pipelinePublish(b, rm.mqtt, rm.site, clients, scans, window)
	tDone := waitFor(b, rm.gw, 15*time.Minute, fmt.Sprintf("%d events committed", n), func() bool { return rm.accepted() >= float64(n) })
	mosMem := rss.end()
	rm.stop()
	mosDur := tDone.Sub(mos.start)

	embRate, mosRate := float64(n)/embDur.Seconds(), float64(n)/mosDur.Seconds()
	b.ReportMetric(embRate, "embedded_ev/s")
	b.ReportMetric(mosRate, "mosquitto_ev/s")
	b.ReportMetric(embRate/mosRate, "embedded/mosquitto")
	b.ReportMetric(float64(n)/mos.end.Sub(mos.start).Seconds(), "mosquitto_puback_ev/s")
	b.ReportMetric(embMem.rssPeak, "embedded_rss_peak_MiB")
	b.ReportMetric(mosMem.rssPeak, "mosquitto_rss_peak_MiB")
	b.ReportMetric(embMem.anonPeak, "embedded_anon_peak_MiB")
	b.ReportMetric(mosMem.anonPeak, "mosquitto_anon_peak_MiB")
	b.ReportMetric(float64(n), "events")
	b.Logf("embedded ingest: %d clients × %d QoS 1 scans, %d in flight each (MQTT 3.1.1, paho); embedded broker: first publish → last PUBACK (each after its commit) %s; "+
		"site Mosquitto: first publish → gateway accepted all %s (Mosquitto had acked all after %s)",
		clients, scans, window, embDur.Round(time.Millisecond), mosDur.Round(time.Millisecond), mos.end.Sub(mos.start).Round(time.Millisecond))
}

func BenchmarkEmbeddedDevicesRSS(b *testing.B) {
	devices := envInt("EDGE_BENCH_DEVICES", 1000)
	scans := envInt("EDGE_BENCH_DEVICE_SCANS", 3)
	const settle = 3 * time.Second

	r := newRig(b, "devices")
	broker := r.startEmbedded()
	addr := strings.TrimPrefix(broker, "tcp://")
	pid := gatewayPID(b, r.gw.Config)

	time.Sleep(settle)
	idle := settledMem(pid, settle)
	idleFDs := openFDs(pid)
	idleG, _ := scrape(r.httpAddr, "go_goroutines")

	// Connect the devices (32 at a time), each publishing its scans and
	// waiting for their PUBACKs; then they stay connected, idle.
	conns := make([]net.Conn, devices)
	b.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	t0 := time.Now()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	sem := make(chan struct{}, 32)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := rawDevice(addr, fmt.Sprintf("%s-dev%04d", r.site, i), r.site, i, scans)
			if err != nil {
				errOnce.Do(func() { firstErr = fmt.Errorf("device %d: %w", i, err) })
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	connectTime := time.Since(t0)
	waitFor(b, r.gw, time.Minute, "the devices' scans committed", func() bool { return r.accepted() >= float64(devices*scans) })

	time.Sleep(settle)
	busy := settledMem(pid, settle)
	busyFDs := openFDs(pid)
	busyG, _ := scrape(r.httpAddr, "go_goroutines")
	hwm := procMiB(pid, "VmHWM")
	if !r.gw.Running() {
		b.Fatalf("the gateway exited:\n%s", r.gw.Log())
	}
	for i, c := range conns {
		c.Close()
		conns[i] = nil
	}
	r.stop()

	b.ReportMetric(idle.rssMean, "rss_idle_MiB")
	b.ReportMetric(busy.rssMean, "rss_devices_MiB")
	b.ReportMetric((busy.rssMean-idle.rssMean)*1024/float64(devices), "rss_KiB/device")
	b.ReportMetric(idle.anonMean, "anon_idle_MiB")
	b.ReportMetric(busy.anonMean, "anon_devices_MiB")
	b.ReportMetric((busy.anonMean-idle.anonMean)*1024/float64(devices), "anon_KiB/device")
	b.ReportMetric(hwm, "hwm_MiB")
	b.ReportMetric(float64(idleFDs), "fds_idle")
	b.ReportMetric(float64(busyFDs), "fds_devices")
	if idleG > 0 && busyG > 0 {
		b.ReportMetric(idleG, "goroutines_idle")
		b.ReportMetric(busyG, "goroutines_devices")
	}
	b.ReportMetric(float64(devices), "devices")
	b.Logf("devices RSS: %d raw MQTT 3.1.1 devices (keepalive 60s) connected in %s, each published %d QoS 1 scans (all acknowledged after commit), then idle; "+
		"VmRSS and RssAnon are the means of %s of samples taken after %s of quiet, before and after",
		devices, connectTime.Round(time.Millisecond), scans, settle, settle)
}

// settledMem samples pid's memory for d.
func settledMem(pid int, d time.Duration) memStats {
	s := sampleRSS(pid)
	time.Sleep(d)
	return s.end()
}

// openFDs counts the open file descriptors of pid (-1 when unreadable).
func openFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

// rawDevice is a minimal MQTT 3.1.1 device on a bare TCP connection: it
// connects (clean session, keepalive 60s), publishes scans QoS 1 scans of
// device dev and reads their PUBACKs, and returns the open connection.
func rawDevice(addr, clientID, site string, dev, scans int) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (net.Conn, error) {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	var out bytes.Buffer
	connect := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: 4,
		Connect:         packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 60, ClientIdentifier: clientID},
	}
	if err := connect.ConnectEncode(&out); err != nil {
		return fail(err)
	}
	if _, err := c.Write(out.Bytes()); err != nil {
		return fail(err)
	}
	// CONNACK and PUBACK are 4 bytes each in MQTT 3.1.1.
	var in [4]byte
	if _, err := io.ReadFull(c, in[:]); err != nil {
		return fail(fmt.Errorf("connack: %w", err))
	}
	if in[0] != packets.Connack<<4 || in[3] != 0 {
		return fail(fmt.Errorf("connack: % x", in))
	}
	out.Reset()
	buf := make([]byte, 0, 256)
	for i := range scans {
		topic, body := scanPayload(site, dev, i, buf)
		pk := packets.Packet{
			FixedHeader:     packets.FixedHeader{Type: packets.Publish, Qos: 1},
			ProtocolVersion: 4, TopicName: topic, PacketID: uint16(i + 1), Payload: body,
		}
		if err := pk.PublishEncode(&out); err != nil {
			return fail(err)
		}
	}
	if _, err := c.Write(out.Bytes()); err != nil {
		return fail(err)
	}
	for i := range scans {
		if _, err := io.ReadFull(c, in[:]); err != nil {
			return fail(fmt.Errorf("puback %d: %w", i+1, err))
		}
		if in[0] != packets.Puback<<4 || int(in[2])<<8|int(in[3]) != i+1 {
			return fail(fmt.Errorf("puback %d: % x", i+1, in))
		}
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}
