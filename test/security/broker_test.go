package security

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/harness"
)

// TestEmbeddedBrokerIdleSockets runs the real gateway binary with the
// embedded broker at its default connect_timeout (10s) and max_connections
// (2048) and opens 2,000 sockets that never send CONNECT: the broker must
// close them all at the deadline and give back their file descriptors,
// while a device that connected properly stays. It logs the gateway's RSS
// (VmRSS in /proc/PID/status) and open fds (/proc/PID/fd) before, with the
// sockets open, and after the deadline.
//
// EDGE_GATEWAY_BIN runs another gateway binary instead (e.g. one built
// before the fix, to compare the figures; it then fails on the deadline).
func TestEmbeddedBrokerIdleSockets(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	const (
		n           = 2000
		deadline    = 10 * time.Second // the default connect_timeout
		devicePass  = "Ib3-idle-device-pw"
		deviceTopic = "site/dock3/scanner/sc-1"
	)
	dir := t.TempDir()
	userFile := writeSecret(t, dir, "dock3.pass", devicePass)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	brokerPort := harness.FreePort(t)
	brokerAddr := fmt.Sprintf("127.0.0.1:%d", brokerPort)
	// The uplink points at a closed port: an offline uplink does not make
	// the gateway unready, and this test needs no Pulsar.
	cfg := fmt.Sprintf(`
gateway:
  id: gw-idle-sockets
buffer:
  path: %[1]s/buffer.db
  disk_budget: 64MiB
streams:
  - {name: scans, priority: 10, overflow: reject-new}
broker:
  listen: %[2]s
  users:
    - {username: dock3, password_file: %[3]s, publish: [site/dock3/#]}
sources:
  - name: vehicle
    driver: mqtt
    mqtt:
      brokers: [embedded]
      subscriptions:
        - {topic: "site/+dock/scanner/+device", kind: scan, source: "van-{dock}-{device}"}
uplink:
  service_url: pulsar://127.0.0.1:%[4]d
  admin_url: http://127.0.0.1:%[4]d
  require_dedup: false
http:
  listen: %[5]s
log:
  level: info
`, filepath.Join(dir, "state"), brokerAddr, userFile, harness.FreePort(t), httpAddr)
	g := harness.NewGateway(t, dir, cfg, httpAddr)
	if bin := os.Getenv("EDGE_GATEWAY_BIN"); bin != "" {
		g.UseBinary(bin)
	}
	g.Start()
	pid, err := listenerPID(brokerPort)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := plainClient(t, "tcp://"+brokerAddr, "sc-1", "dock3", devicePass)
	if err != nil {
		t.Fatalf("device: %v", err)
	}
	rss0, fds0 := procUsage(t, pid)

	start := time.Now()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	for range n {
		c, err := net.DialTimeout("tcp", brokerAddr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	g.Eventually(5*time.Second, "the gateway holds the sockets", func() bool {
		_, fds := procUsage(t, pid)
		return fds >= fds0+n
	})
	rss1, fds1 := procUsage(t, pid)
	opened := time.Since(start)
	t.Logf("gateway pid %d, %d idle sockets: before RSS %d KiB, fds %d; with the sockets (after %v) RSS %d KiB (%+d), fds %d (%+d)",
		pid, n, rss0, fds0, opened.Round(time.Millisecond), rss1, rss1-rss0, fds1, fds1-fds0)

	// All closed by the server within the deadline (+ slack for a loaded
	// machine), counted from the last dial.
	for i, c := range conns {
		_ = c.SetReadDeadline(start.Add(opened + deadline + 5*time.Second))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("socket %d still open %v after it was opened (connect_timeout %v)", i, time.Since(start), deadline)
		}
	}
	closedAfter := time.Since(start)
	if closedAfter < deadline {
		t.Fatalf("idle sockets closed after %v, before the connect_timeout %v", closedAfter, deadline)
	}
	g.Eventually(5*time.Second, "fds given back", func() bool {
		_, fds := procUsage(t, pid)
		return fds <= fds0+5
	})
	rss2, fds2 := procUsage(t, pid)
	t.Logf("after the deadline (all closed %v after the first dial): RSS %d KiB (%+d vs before), fds %d (%+d)",
		closedAfter.Round(time.Millisecond), rss2, rss2-rss0, fds2, fds2-fds0)

	if !dev.IsConnectionOpen() {
		t.Fatal("the device that connected properly was disconnected")
	}
	if tok := dev.Publish(deviceTopic, 1, false, `{"n":1}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("device publish after the idle sockets: %v", tok.Error())
	}
	// Rate-limited: a few lines for 2,000 sockets.
	if l := strings.Count(g.Log(), "sent no CONNECT within connect_timeout"); l == 0 || l > 10 {
		t.Fatalf("%d log lines about the idle sockets, want 1 to 10:\n%s", l, g.Log())
	}
}

// listenerPID is the process that listens on the loopback TCP port (found
// through the socket's inode in /proc/net/tcp and /proc/PID/fd).
func listenerPID(port int) (int, error) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	want := fmt.Sprintf(":%04X", port)
	inode := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		// sl local_address rem_address st ... inode (field 9)
		if len(fs) > 9 && strings.HasSuffix(fs[1], want) && fs[3] == "0A" {
			inode = fs[9]
		}
	}
	if inode == "" {
		return 0, fmt.Errorf("no listener on port %d in /proc/net/tcp", port)
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	target := "socket:[" + inode + "]"
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		if err != nil {
			continue // not ours, or gone
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name())); err == nil && l == target {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no process holds %s", target)
}

// procUsage is the process's VmRSS in KiB and its number of open fds.
func procUsage(t *testing.T, pid int) (rssKiB, fds int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rssKiB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return rssKiB, len(ents)
}
