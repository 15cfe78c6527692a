package fault

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgegw/gateway/test/harness"
	"github.com/edgegw/gateway/test/testenv"
)

// The custody tests run the real gateway on its embedded broker, with the
// uplink down (nothing listens on its Pulsar port), and check from the
// device's side: every publish a device saw acknowledged is in the buffer
// file afterwards, read back with the buffer package once the gateway is
// gone.

// TestEmbeddedCustodyMosquittoPub: 10 mosquitto_pub -q 1 -l clients, 10,000
// scans each, against the embedded broker with the uplink down: every
// client exits 0 (all its publishes acknowledged) and the buffer holds all
// 100,000, each once.
func TestEmbeddedCustodyMosquittoPub(t *testing.T) {
	needMosquittoPub(t)
	s := harness.NewEmbedded(t, t.TempDir(), "")
	s.GW.Start()
	host, port, _ := strings.Cut(strings.TrimPrefix(s.Broker, "tcp://"), ":")
	took := mosquittoPubs(t, host, port, func(c int) string { return fmt.Sprintf("site/dock%d/scanner/mp%d", c, c) })
	s.GW.Stop()
	checkAllStored(t, harness.StoredScans(t, s.BufferDB))
	t.Logf("embedded broker: %d scans from %d mosquitto_pub clients acknowledged and all in the buffer (%.0f scans/s)", pubClients*pubPer, pubClients, float64(pubClients*pubPer)/took.Seconds())
}

// TestSiteMosquittoCustody is the same load through the shared site
// Mosquitto (queue limits raised, as the install docs say) to the
// gateway's persistent session: every scan Mosquitto acknowledged reaches
// the buffer, each once.
func TestSiteMosquittoCustody(t *testing.T) {
	needMosquittoPub(t)
	mqttURL := testenv.MQTT(t)
	dir := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	dead := harness.FreePort(t)
	id := fmt.Sprintf("custody-site-%d", time.Now().UnixNano()%1e9)
	root := "custody/" + id
	db := filepath.Join(dir, "buffer.db")
	cfg := harness.GatewayYAML(harness.GatewayConfig{
		ID: id, BufferPath: db, MQTT: mqttURL, Root: root,
		ServiceURL: fmt.Sprintf("pulsar://127.0.0.1:%d", dead), AdminURL: fmt.Sprintf("http://127.0.0.1:%d", dead),
		Namespace: "public/custody", HTTP: httpAddr,
	})
	cfg = strings.Replace(cfg, "  send_timeout: 10s", "  require_dedup: false\n  send_timeout: 10s", 1)
	gw := harness.NewGateway(t, dir, cfg, httpAddr)
	gw.Start()
	host, port, _ := strings.Cut(strings.TrimPrefix(mqttURL, "tcp://"), ":")
	took := mosquittoPubs(t, host, port, func(c int) string { return fmt.Sprintf("%s/dock%d/scanner/mp%d", root, c, c) })
	gw.Eventually(5*time.Minute, "all scans ingested", func() bool {
		return gw.Metric("edge_gateway_ingest_events_total", `stream="scans"`, `result="accepted"`) >= pubClients*pubPer
	})
	gw.Stop()
	checkAllStored(t, harness.StoredScans(t, db))
	t.Logf("site Mosquitto: %d scans from %d mosquitto_pub clients acknowledged by Mosquitto (%.0f scans/s) and all in the gateway's buffer", pubClients*pubPer, pubClients, float64(pubClients*pubPer)/took.Seconds())
}

const pubClients, pubPer = 10, 10000

func needMosquittoPub(t *testing.T) {
	if _, err := exec.LookPath("mosquitto_pub"); err != nil {
		t.Skip("mosquitto_pub not installed (test/deps.sh installs mosquitto-clients)")
	}
}

// mosquittoPubs runs pubClients mosquitto_pub -q 1 -l clients, each sending
// pubPer scans (pub "mp<c>", n 0…) to topic(c), and fails the test unless
// every one exits 0, i.e. saw every publish acknowledged.
func mosquittoPubs(t *testing.T, host, port string, topic func(c int) string) time.Duration {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, pubClients)
	start := time.Now()
	for c := range pubClients {
		var in bytes.Buffer
		pub := fmt.Sprintf("mp%d", c)
		for n := range pubPer {
			in.WriteString(harness.ScanLine(pub, n))
			in.WriteByte('\n')
		}
		cmd := exec.Command("mosquitto_pub", "-h", host, "-p", port, "-q", "1", "-l", "-i", pub+"-"+port, "-t", topic(c))
		cmd.Stdin = &in
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[c] = fmt.Errorf("%s: %v: %s", pub, err, out)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// checkAllStored fails unless got holds every scan mosquittoPubs sent,
// each once, and nothing else.
func checkAllStored(t *testing.T, got map[string]int) {
	t.Helper()
	missing, dup := 0, 0
	for c := range pubClients {
		for n := range pubPer {
			switch got[fmt.Sprintf("mp%d/%d", c, n)] {
			case 0:
				missing++
			case 1:
			default:
				dup++
			}
		}
	}
	if missing > 0 || dup > 0 || len(got) != pubClients*pubPer {
		t.Fatalf("%d acknowledged scans missing from the buffer, %d stored twice, %d distinct stored (want %d)", missing, dup, len(got), pubClients*pubPer)
	}
}

// TestEmbeddedCustodyKill9: the gateway is SIGKILLed in the middle of a
// burst from pipelining devices; after a restart every scan whose PUBACK a
// device saw is in the buffer.
func TestEmbeddedCustodyKill9(t *testing.T) {
	s := harness.NewEmbedded(t, t.TempDir(), "")
	acks := harness.NewAckLog()
	s.CrashMidBurst(t, acks, 3, "k", s.GW.Kill)
	s.GW.Start()
	s.GW.Stop()
	got := harness.StoredScans(t, s.BufferDB)
	acks.Missing(t, got, "kill -9")
	t.Logf("%d scans acknowledged across 3 SIGKILLs mid-burst (%d sent), all in the buffer; %d stored in all", len(acks.Acked), acks.Sent.Load(), len(got))
}

// TestEmbeddedCustodyDiskFull: the buffer's file system (a real 24 MiB
// tmpfs) fills while devices publish: no scan is acknowledged that is not
// stored, the devices keep the rest, and once space returns everything is
// stored and acknowledged without a restart.
func TestEmbeddedCustodyDiskFull(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=24m,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): run as root to test a full disk", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	// Leave about 4 MiB for the buffer.
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 20<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	// config and log off the full file system
	s := harness.NewEmbedded(t, t.TempDir(), filepath.Join(dir, "buffer.db"))
	s.GW.Start()
	acks := harness.NewAckLog()
	const devices, per = 3, 10000
	var wg sync.WaitGroup
	for d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acks.Burst(t, s.Broker, fmt.Sprintf("df%d", d), per, 100)
		}()
	}
	s.GW.Eventually(2*time.Minute, "ingest paused on the full disk", func() bool {
		return s.GW.Metric("edge_gateway_mqtt_full_retries_total") > 0
	})
	held := acks.N.Load()
	if held >= devices*per {
		t.Fatalf("all %d scans acknowledged on a full disk", held)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if got := acks.N.Load(); got != devices*per {
		t.Fatalf("%d of %d scans acknowledged after space returned", got, devices*per)
	}
	s.GW.Stop()
	got := harness.StoredScans(t, s.BufferDB)
	missing := 0
	for d := range devices {
		for n := range per {
			if got[fmt.Sprintf("df%d/%d", d, n)] == 0 {
				missing++
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d acknowledged scans missing", missing)
	}
	t.Logf("disk full at %d of %d acknowledged; after space returned all %d acknowledged and stored (%d distinct in the buffer)", held, devices*per, devices*per, len(got))
}

// TestEmbeddedCustodyAcrossApplies: devices keep publishing through the
// embedded broker while the config is reloaded five times (SIGHUP, each
// time with other stream limits and the same broker section): every
// acknowledged scan is in the buffer once, no device is disconnected (the
// broker and its sessions survive an apply that does not change it), and
// nothing a device sent twice is stored twice.
func TestEmbeddedCustodyAcrossApplies(t *testing.T) {
	s := harness.NewEmbedded(t, t.TempDir(), "")
	s.GW.Start()
	orig, err := os.ReadFile(s.GW.Config)
	if err != nil {
		t.Fatal(err)
	}
	acks := harness.NewAckLog()
	var lost atomic.Int64
	var wg sync.WaitGroup
	const devices, per = 3, 6000
	for d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acks.BurstWith(t, s.Broker, fmt.Sprintf("ap%d", d), per, 50, func() { lost.Add(1) })
		}()
	}
	for i := 1; i <= 5; i++ {
		testenv.Eventually(t, time.Minute, "scans flowing", func() bool { return acks.N.Load() >= int64(i*devices*per/7) })
		cfg := bytes.Replace(orig, []byte("overflow: reject-new"), []byte(fmt.Sprintf("overflow: reject-new\n    max_events: %d", 10_000_000+i)), 1)
		if err := os.WriteFile(s.GW.Config, cfg, 0o600); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if err := s.GW.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		s.GW.Eventually(30*time.Second, fmt.Sprintf("reload %d applied", i), func() bool {
			return strings.Count(s.GW.Log(), "config reloaded") >= i
		})
		t.Logf("reload %d applied in %s, %d scans acknowledged so far", i, time.Since(t0).Round(time.Millisecond), acks.N.Load())
	}
	wg.Wait()
	if got := acks.N.Load(); got != devices*per {
		t.Fatalf("%d of %d scans acknowledged across 5 applies", got, devices*per)
	}
	if n := lost.Load(); n > 0 {
		t.Errorf("%d device connections lost across applies that kept the broker section", n)
	}
	s.GW.Stop()
	got := harness.StoredScans(t, s.BufferDB)
	missing, twice := 0, 0
	for k := range acks.Acked {
		switch got[k] {
		case 0:
			missing++
		case 1:
		default:
			twice++
		}
	}
	if missing > 0 || twice > 0 || len(got) != devices*per {
		t.Fatalf("across 5 applies: %d acknowledged scans missing, %d stored twice, %d distinct stored (want %d)", missing, twice, len(got), devices*per)
	}
	t.Logf("%d scans from %d devices across 5 config applies: all acknowledged, each stored once, no device disconnected", devices*per, devices)
}

// TestEmbeddedPersistenceFileAcrossApply: with broker.persistence_file set,
// an apply that changes the broker section restarts the broker on the same
// file, and ingest goes on (issue: it used to leave ingest dead while the
// gateway reported the config applied).
func TestEmbeddedPersistenceFileAcrossApply(t *testing.T) {
	dir := t.TempDir()
	s := harness.NewEmbedded(t, dir, "")
	cfg, err := os.ReadFile(s.GW.Config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = bytes.Replace(cfg, []byte("  allow_anonymous: true\n"), []byte("  allow_anonymous: true\n  persistence_file: "+filepath.Join(dir, "broker.db")+"\n"), 1)
	if err := os.WriteFile(s.GW.Config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	s.GW.Start()
	acks := harness.NewAckLog()
	acks.Burst(t, s.Broker, "pf-before", 300, 20)
	changed := bytes.Replace(cfg, []byte("  allow_anonymous: true\n"), []byte("  allow_anonymous: true\n  max_inflight: 512\n"), 1)
	if err := os.WriteFile(s.GW.Config, changed, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.GW.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	s.GW.Eventually(30*time.Second, "reload applied", func() bool { return strings.Count(s.GW.Log(), "config reloaded") >= 1 })
	testenv.Eventually(t, 30*time.Second, "the restarted broker accepts devices", func() error {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(s.Broker).SetClientID("pf-probe").SetConnectTimeout(2 * time.Second))
		tok := c.Connect()
		if !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
			return fmt.Errorf("connect: %v", tok.Error())
		}
		c.Disconnect(10)
		return nil
	})
	acks.Burst(t, s.Broker, "pf-after", 300, 20)
	if got := acks.N.Load(); got != 600 {
		t.Fatalf("%d of 600 scans acknowledged across an apply that restarted the broker on its persistence file", got)
	}
	s.GW.Stop()
	got := harness.StoredScans(t, s.BufferDB)
	for k := range acks.Acked {
		if got[k] != 1 {
			t.Fatalf("scan %s stored %d times", k, got[k])
		}
	}
	t.Logf("600 scans acknowledged and stored once across an apply that restarted the broker on its persistence file")
}
