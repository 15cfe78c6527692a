package firmware

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/harness"
)

// runBin runs a firmware binary under qemu-user (or natively) and returns its
// stdout, stderr and exit code.
func runBin(t *testing.T, target, bin string, args ...string) (stdout, stderr string, rc int) {
	t.Helper()
	argv := append(append(harness.QEMU(t, target), bin), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	return out.String(), errb.String(), 0
}

// Under emulation each ARM gateway says what it is, and validates every
// gateway config shipped in configs/ and the package's default config.
func TestQEMUVersionAndValidate(t *testing.T) {
	b := firmware(t)
	configs, err := filepath.Glob(filepath.Join(b.src, "configs", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range configs {
		if filepath.Base(f) != "sink.yaml" { // the cloud sink's config
			files = append(files, f)
		}
	}
	if len(files) < 3 {
		t.Fatalf("found %d gateway configs in configs/, want at least dev, warehouse and vehicle", len(files))
	}
	files = append(files, filepath.Join(b.src, "packaging", "gateway.yaml"))
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("gateway:\n  id: \"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, target := range qemuTargets {
		t.Run(targetDir(target), func(t *testing.T) {
			t.Parallel()
			gw := b.bin(target, "gateway")
			out, errb, rc := runBin(t, target, gw, "version")
			want := fmt.Sprintf("gateway %s (commit %s, %s, %s)\n", testVersion, testCommit, runtime.Version(), target)
			if rc != 0 || out != want {
				t.Errorf("gateway version: rc %d, output %q (stderr %q), want %q", rc, out, errb, want)
			}

			out, errb, rc = runBin(t, target, gw, append([]string{"validate"}, files...)...)
			if rc != 0 {
				t.Errorf("gateway validate: rc %d\n%s%s", rc, out, errb)
			}
			for _, f := range files {
				if !strings.Contains(out, f+": ok\n") {
					t.Errorf("gateway validate did not say %s: ok; output:\n%s", f, out)
				}
			}
			if _, errb, rc := runBin(t, target, gw, "validate", bad); rc != 1 || !strings.Contains(errb, "gateway.id") {
				t.Errorf("gateway validate of a config without an ID: rc %d, stderr %q; want rc 1 naming gateway.id", rc, errb)
			}

			// gatewayctl has no version subcommand (yet): its help proves
			// that it starts under emulation.
			if out, errb, rc := runBin(t, target, b.bin(target, "gatewayctl"), "--help"); rc != 0 || !strings.Contains(out+errb, "gatewayctl") {
				t.Errorf("gatewayctl --help: rc %d\n%s%s", rc, out, errb)
			}
		})
	}
}

// Under emulation each ARM gateway carries a few hundred scans from real
// MQTT publishers (Mosquitto) to Pulsar exactly once and in order, reports
// its build on the status page, and stops cleanly on SIGTERM.
func TestQEMUEndToEnd(t *testing.T) {
	b := firmware(t)
	for _, target := range qemuTargets {
		t.Run(targetDir(target), func(t *testing.T) {
			t.Parallel()
			s := harness.NewSetup(t, "fw-"+strings.ReplaceAll(targetDir(target), "linux-", ""), harness.Options{})
			s.Gateway.UseBinary(b.bin(target, "gateway"), harness.QEMU(t, target)...)
			col := harness.Collect(t, s.Topic("scans"))
			s.Gateway.Start()
			waitSubscribed(t, s)

			const pubs, perPub = 2, 150
			want := map[string]int{}
			var wg sync.WaitGroup
			for p := range pubs {
				name := fmt.Sprintf("pub%d", p)
				want[name] = perPub
				pub := harness.NewPublisher(t, s.MQTT, s.ID+"-"+name)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := 1; n <= perPub; n++ {
						if err := pub.Publish(s.ScanTopic(fmt.Sprintf("dock%d", p+1), "scn-"+name), harness.ScanPayload(name, n)); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			s.Gateway.Eventually(2*time.Minute, "all scans in Pulsar", func() bool { return col.Len() >= pubs*perPub })
			s.Gateway.Eventually(time.Minute, "buffer drained", s.Gateway.Drained)
			msgs := col.Messages()
			if probs := harness.Summarise(msgs).ExactlyOnce(want, true); probs != "" {
				t.Fatalf("delivery: %s", probs)
			}
			for _, m := range msgs {
				if m.Event.Gateway != s.ID || m.Event.Stream != "scans" {
					t.Fatalf("event from gateway %q stream %q, want %q scans", m.Event.Gateway, m.Event.Stream, s.ID)
				}
			}
			if v, c := buildOf(t, s.Gateway.HTTP); v != testVersion || c != testCommit {
				t.Errorf("status page says version %q commit %q, want %q %q", v, c, testVersion, testCommit)
			}
			s.Gateway.Stop() // fails the test unless it exits within 30s
			if log := s.Gateway.Log(); !strings.Contains(log, "msg=stopping") || !strings.Contains(log, `msg="gateway stopped"`) {
				t.Errorf("no clean stop in the log (SIGTERM through qemu):\n%s", log)
			}
		})
	}
}

// buildOf reads version and commit from the gateway's /status.json.
func buildOf(t *testing.T, addr string) (version, commit string) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Version string `json:"version"`
		Commit  string `json:"commit"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.Version, st.Commit
}

// waitSubscribed returns once the gateway's MQTT subscriptions are in place.
// /readyz answers before the first SUBSCRIBE reaches the broker (it means
// "store open and ingest running"), and a message published before that,
// on a client ID with no session yet, is lost; under emulation the gap is
// long enough for a whole test's worth of messages. The probe is a reading
// on the telemetry stream (one SUBSCRIBE carries every filter), which these
// tests do not check.
func waitSubscribed(t *testing.T, s *harness.Setup) {
	t.Helper()
	probe := harness.NewPublisher(t, s.MQTT, s.ID+"-probe")
	defer probe.Close()
	// A new stream's first seq is not 1 (the gateway seeds it from the
	// clock): wait for the next seq to move.
	next := func() (uint64, bool) {
		st, ok := s.Gateway.Status()
		if !ok {
			return 0, false
		}
		tel, ok := st.Stream("telemetry")
		return tel.NextSeq, ok
	}
	var start uint64
	s.Gateway.Eventually(time.Minute, "the telemetry stream on the status page", func() bool {
		n, ok := next()
		start = n
		return ok
	})
	var last time.Time
	s.Gateway.Eventually(time.Minute, "the gateway's MQTT subscriptions", func() bool {
		if n, ok := next(); ok && n > start {
			return true
		}
		if time.Since(last) > 250*time.Millisecond {
			last = time.Now()
			probe.MustPublish(s.Root+"/sensor/probe", readingPayload("probe", 1))
		}
		return false
	})
}
