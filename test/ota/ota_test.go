package ota

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegw/gateway/buffer"
	"github.com/edgegw/gateway/edge/firmware"
	"github.com/edgegw/gateway/edge/fleet"
	"github.com/edgegw/gateway/test/harness"
	"github.com/edgegw/gateway/test/testenv"
	"github.com/edgegw/gateway/uplink"
)

var (
	buildMu sync.Mutex
	builds  = map[string]string{}
	binDir  string
)

// build builds pkg for goarch with -X main.<key>=<val> into a binary shared
// by the tests of this process.
func build(t *testing.T, pkg, goarch, key, val string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	id := pkg + "|" + goarch + "|" + val
	if p, ok := builds[id]; ok {
		return p
	}
	if binDir == "" {
		d, err := os.MkdirTemp("", "edgegw-ota-")
		if err != nil {
			t.Fatal(err)
		}
		binDir = d
	}
	out := filepath.Join(binDir, fmt.Sprintf("%s-%s-%s", filepath.Base(pkg), goarch, val))
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main."+key+"="+val, "-o", out, pkg)
	cmd.Dir = testenv.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	builds[id] = out
	return out
}

func gatewayBuild(t *testing.T, version string) string {
	return build(t, "./cmd/gateway", "amd64", "version", version)
}

func faultyBuild(t *testing.T, mode, goarch string) string {
	return build(t, "./test/ota/faulty", goarch, "mode", mode)
}

// otaGateway is a fleet gateway run by `gateway launch` from binary v1.
type otaGateway struct {
	*harness.FleetGateway
	f   *harness.Fleet
	dir string // firmware directory
}

func newOTAGateway(t *testing.T, f *harness.Fleet, name string, groups ...string) *otaGateway {
	t.Helper()
	return newOTAGatewaySettle(t, f, name, "1s", groups...)
}

// newOTAGatewaySettle is newOTAGateway with the launcher's -settle.
func newOTAGatewaySettle(t *testing.T, f *harness.Fleet, name, settle string, groups ...string) *otaGateway {
	t.Helper()
	g := f.NewGateway(name, harness.FleetOptions{Groups: groups})
	o := &otaGateway{FleetGateway: g, f: f, dir: filepath.Join(filepath.Dir(g.Config), "firmware")}
	g.UseBinary(gatewayBuild(t, "v1"))
	g.UseArgs("launch", "-firmware-dir", o.dir, "-probation", "8s", "-settle", settle, "-stop-timeout", "2s")
	g.Start()
	o.waitFirmware(t, 30*time.Second, "first heartbeat with firmware", func(s *fleet.Status, fw *fleet.Firmware) bool {
		return fw.State == firmware.StateIdle && fw.Running == 0 && s.Build.Version == "v1"
	})
	return o
}

// waitFirmware waits for a heartbeat whose firmware section satisfies
// cond and returns it.
func (o *otaGateway) waitFirmware(t *testing.T, timeout time.Duration, msg string, cond func(*fleet.Status, *fleet.Firmware) bool) *fleet.Status {
	t.Helper()
	var hb *fleet.Status
	o.Eventually(timeout, msg, func() error {
		hb = o.f.Heartbeat(o.ID)
		switch {
		case hb == nil:
			return fmt.Errorf("no heartbeat yet")
		case hb.Firmware == nil:
			return fmt.Errorf("heartbeat without firmware (build %s)", hb.Build.Version)
		case cond(hb, hb.Firmware):
			return nil
		}
		b, _ := json.Marshal(hb.Firmware)
		return fmt.Errorf("build %s, firmware %s", hb.Build.Version, b)
	})
	return hb
}

// push runs gatewayctl firmware push for the gateway and returns its result.
func (o *otaGateway) push(t *testing.T, args ...string) firmwarePush {
	t.Helper()
	all := append([]string{"firmware", "push", "--target", o.ID, "--key", o.f.KeyFile, "-o", "json"}, args...)
	out, err := o.f.Ctl(all...)
	if err != nil {
		t.Fatalf("gatewayctl firmware push: %v\n%s", err, out)
	}
	var r firmwarePush
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &r); err != nil || r.Version == 0 {
		t.Fatalf("firmware push output %q: %v", out, err)
	}
	return r
}

type firmwarePush struct {
	Version    uint64 `json:"version"`
	ImageBytes int64  `json:"image_bytes"`
	FullBytes  int64  `json:"full_bytes"`
	DeltaBytes int64  `json:"delta_bytes"`
}

// 1. v1 under the launcher takes v2 (pushed as full image and delta
// against v1): it downloads the delta, restarts into v2, which passes
// probation and is committed; scans flow before, during and after, each
// delivered exactly once.
func TestPushCommitted(t *testing.T) {
	f := harness.NewFleet(t, "ota-commit")
	o := newOTAGateway(t, f, "gw")
	col := harness.Collect(t, f.Topic("scans"))
	o.WarmUp(col)
	traffic := harness.StartTraffic(t, f.MQTT, o.ID+"-traffic", o.ScanTopic("dock1", "scn1"), "traffic", 50*time.Millisecond)

	r := o.push(t, "--image", gatewayBuild(t, "v2"), "--build", "v2", "--base", gatewayBuild(t, "v1"))
	t.Logf("v2 pushed as version %d: image %d bytes, full payload %d, delta %d", r.Version, r.ImageBytes, r.FullBytes, r.DeltaBytes)
	if r.DeltaBytes == 0 || r.DeltaBytes >= r.FullBytes {
		t.Fatalf("delta of %d bytes, full payload %d", r.DeltaBytes, r.FullBytes)
	}
	hb := o.waitFirmware(t, 2*time.Minute, "v2 committed", func(s *fleet.Status, fw *fleet.Firmware) bool {
		return fw.State == firmware.StateCommitted && fw.Running == r.Version && s.Build.Version == "v2"
	})
	t.Logf("committed: %+v", *hb.Firmware)
	st, err := firmware.Dir(o.dir).Load()
	if err != nil || st.Current.Version != r.Version || st.Previous == nil || st.Previous.Slot != firmware.SlotPackaged {
		t.Fatalf("state file after commit: %+v %v", st, err)
	}
	slot, _ := os.ReadFile(firmware.Dir(o.dir).SlotPath(st.Current.Slot, ""))
	v2, _ := os.ReadFile(gatewayBuild(t, "v2"))
	if sha256.Sum256(slot) != sha256.Sum256(v2) {
		t.Fatal("the committed slot is not v2")
	}
	if !strings.Contains(o.Log(), "encoding=zstd-delta") {
		t.Error("the gateway did not take the delta")
	}

	want := map[string]int{"traffic": traffic.Stop()}
	o.Eventually(2*time.Minute, "every scan in Pulsar", func() error {
		scans := harness.WithoutPub(col.Messages(), "warmup")
		if len(scans) >= want["traffic"] && o.Drained() {
			return nil
		}
		return fmt.Errorf("%d of %d scans", len(scans), want["traffic"])
	})
	if probs := harness.Summarise(harness.WithoutPub(col.Messages(), "warmup")).ExactlyOnce(want, true); probs != "" {
		t.Fatalf("delivery: %s", probs)
	}
	out, err := f.Ctl("firmware", "status")
	if err != nil || !strings.Contains(out, o.ID) || !strings.Contains(out, "committed") {
		t.Fatalf("gatewayctl firmware status: %v\n%s", err, out)
	}
}

// 2. Broken releases are rolled back by the launcher, with no operator:
// one that exits at start, one that never becomes ready (and ignores
// SIGTERM), one that runs but never reaches Pulsar where v1 did. The
// reason reaches the status topic, and v1 runs again.
func TestRollback(t *testing.T) {
	for _, tc := range []struct{ mode, reason string }{
		{"exit", "exited in probation"},
		{"hang", "was not ready within 8s"},
		{"offline", "the uplink is not online"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			f := harness.NewFleet(t, "ota-rollback-"+tc.mode)
			o := newOTAGateway(t, f, tc.mode)
			o.waitFirmware(t, 30*time.Second, "uplink online", func(s *fleet.Status, _ *fleet.Firmware) bool { return s.Uplink == fleet.UplinkOnline })
			r := o.push(t, "--image", faultyBuild(t, tc.mode, "amd64"), "--platform", "linux/amd64", "--build", "v3-"+tc.mode)
			hb := o.waitFirmware(t, 2*time.Minute, "v3 rolled back", func(s *fleet.Status, fw *fleet.Firmware) bool {
				return fw.State == firmware.StateRolledBack && fw.Version == r.Version && s.Build.Version == "v1"
			})
			if !strings.Contains(hb.Firmware.Reason, tc.reason) || hb.Firmware.Running != 0 {
				t.Fatalf("rolled back with %+v, want reason containing %q", *hb.Firmware, tc.reason)
			}
			t.Logf("rolled back: %s", hb.Firmware.Reason)
		})
	}
}

// 3. Releases refused before anything is installed: a manifest whose
// signature does not verify, an image for another architecture labelled as
// this gateway's, and a tampered part. Each is reported with its reason;
// v1 keeps running and no slot is written.
func TestRefused(t *testing.T) {
	rogue, err := fleet.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	v2 := gatewayBuild(t, "v2")
	for _, tc := range []struct {
		name   string
		image  string
		forge  func(m *firmware.Manifest, parts [][]byte)
		reason firmware.Reason
	}{
		{"bad signature", v2, func(m *firmware.Manifest, _ [][]byte) { id := m.KeyID; m.Sign(rogue); m.KeyID = id }, firmware.ReasonBadSignature},
		{"wrong arch", faultyBuild(t, "exit", "arm64"), nil, firmware.ReasonWrongArch},
		{"tampered part", v2, func(_ *firmware.Manifest, parts [][]byte) { parts[1][100] ^= 0x40 }, firmware.ReasonTampered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A namespace each: parts of the same image, published by
			// another case, would be taken in place of the tampered one.
			f := harness.NewFleet(t, "ota-refused")
			key, err := fleet.LoadPrivateKey(f.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			o := newOTAGateway(t, f, strings.ReplaceAll(tc.name, " ", "-"))
			m := publishRelease(t, f, key, "gw:"+o.ID, tc.image, 0, tc.forge)
			hb := o.waitFirmware(t, time.Minute, string(tc.reason), func(s *fleet.Status, fw *fleet.Firmware) bool {
				return fw.State == firmware.StateRefused && fw.Version == m.Version
			})
			if !strings.HasPrefix(hb.Firmware.Reason, string(tc.reason)+":") || hb.Build.Version != "v1" {
				t.Fatalf("refused with %+v, build %s; want reason %s", *hb.Firmware, hb.Build.Version, tc.reason)
			}
			t.Logf("refused: %s", hb.Firmware.Reason)
			if _, err := os.Stat(firmware.Dir(o.dir).SlotPath(firmware.SlotA, "")); err == nil {
				t.Fatal("a refused image was written to a slot")
			}
		})
	}
}

// 4. kill -9 of the launcher and the gateway in the middle of a download
// (the first parts published, the rest not yet): the restarted gateway
// continues from the parts on disk, in the same file, and commits.
func TestKillMidDownloadResumes(t *testing.T) {
	f := harness.NewFleet(t, "ota-resume")
	key, err := fleet.LoadPrivateKey(f.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	o := newOTAGateway(t, f, "gw")
	const first = 3
	var held [][]byte
	var payload *firmware.Payload
	m := publishRelease(t, f, key, "gw:"+o.ID, gatewayBuild(t, "v2"), first, func(m *firmware.Manifest, parts [][]byte) {
		held, payload = parts, &m.Payloads[0]
	})
	if len(held) <= first {
		t.Fatalf("want more than %d parts, got %d", first, len(held))
	}
	prog := filepath.Join(o.dir, "download", payload.ID(), "progress.json")
	o.Eventually(time.Minute, fmt.Sprintf("%d parts on disk", first), func() error {
		var p struct{ Parts int }
		b, err := os.ReadFile(prog)
		if err == nil {
			err = json.Unmarshal(b, &p)
		}
		if err == nil && p.Parts == first {
			return nil
		}
		return fmt.Errorf("progress %s: %v", b, err)
	})
	o.Kill()
	o.Start()
	publishParts(t, f, payload, held[first:], first)
	o.waitFirmware(t, 2*time.Minute, "v2 committed after the resumed download", func(s *fleet.Status, fw *fleet.Firmware) bool {
		return fw.State == firmware.StateCommitted && fw.Running == m.Version && s.Build.Version == "v2"
	})
	if !strings.Contains(o.Log(), "resuming a download") || !strings.Contains(o.Log(), fmt.Sprintf("parts=%d", first)) {
		t.Fatalf("the restarted gateway did not resume at part %d:\n%s", first, o.Log())
	}
}

// publishRelease builds a full-image release of image for target, lets
// forge change the manifest and the parts, publishes the first n parts
// (0: all) and the manifest.
func publishRelease(t *testing.T, f *harness.Fleet, key *fleet.PrivateKey, target, image string, n int,
	forge func(*firmware.Manifest, [][]byte)) *firmware.Manifest {
	t.Helper()
	img, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	p, data, err := firmware.Encode(img, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(img)
	m := &firmware.Manifest{Target: target, Platform: "linux/amd64", Version: uint64(time.Now().UnixNano() / 1e6), Build: "v2",
		IssuedAt: time.Now(), Size: int64(len(img)), SHA256: sum[:], StoreFormat: buffer.FormatVersion, Payloads: []firmware.Payload{p}}
	m.Sign(key)
	var parts [][]byte
	for off := int64(0); off < p.Size; off += p.PartSize {
		parts = append(parts, append([]byte(nil), data[off:min(off+p.PartSize, p.Size)]...))
	}
	if forge != nil {
		forge(m, parts)
	}
	if n <= 0 || n > len(parts) {
		n = len(parts)
	}
	publishParts(t, f, &m.Payloads[0], parts[:n], 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctl := f.Control()
	err = ctl.PublishExclusive(ctx, ctl.Topic(firmware.ManifestTopic), func([]uplink.KeyedMessage) (uplink.KeyedMessage, error) {
		return uplink.KeyedMessage{Key: firmware.ManifestKey(target, m.Platform), Payload: m.Marshal()}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func publishParts(t *testing.T, f *harness.Fleet, p *firmware.Payload, parts [][]byte, from int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctl := f.Control()
	for i, b := range parts {
		if err := ctl.Publish(ctx, ctl.Topic(firmware.ImageTopic), uplink.KeyedMessage{Key: firmware.PartKey(p.ID(), from+i), Payload: b}); err != nil {
			t.Fatal(err)
		}
	}
}

// 7. kill -9 of the launcher and the gateway while v2 is in probation: the
// next start counts a second attempt and v2 is committed; killed in
// probation twice, a release is rolled back (launcher unit tests), so a
// release that takes the board down cannot loop.
func TestKillInProbation(t *testing.T) {
	f := harness.NewFleet(t, "ota-probation")
	o := newOTAGatewaySettle(t, f, "gw", "10s") // probation outlasts the kill

	d := firmware.Dir(o.dir)
	r := o.push(t, "--image", gatewayBuild(t, "v2"), "--build", "v2")
	o.Eventually(time.Minute, "v2 in probation", func() error {
		st, err := d.Load()
		if err == nil && st.Trial != nil && st.Trial.Version == r.Version {
			return nil
		}
		return fmt.Errorf("state %+v %v", st, err)
	})
	o.Kill()
	o.Start()
	o.waitFirmware(t, 2*time.Minute, "v2 committed after the kill in probation", func(s *fleet.Status, fw *fleet.Firmware) bool {
		return fw.State == firmware.StateCommitted && fw.Running == r.Version && s.Build.Version == "v2"
	})
	if !strings.Contains(o.Log(), "attempt=2") {
		t.Fatalf("the second start in probation was not counted:\n%s", o.Log())
	}
}
