package ota

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/edge/firmware"
	"github.com/edgegw/gateway/edge/fleet"
	"github.com/edgegw/gateway/test/harness"
)

// 6. An arm64 gateway v1 under qemu-user takes v2 for linux/arm64 (the
// delta against v1): it reports its platform, downloads, decodes the delta,
// checks the arm64 image, installs it in slot a, marks it pending and
// exits 3 for its launcher. The launcher part runs on amd64 above: under
// qemu-user a launcher cannot start an arm64 slot unless binfmt_misc
// handles arm64 (exec of a foreign ELF), so it runs only where it is
// registered.
func TestARM64UnderQEMU(t *testing.T) {
	prefix := harness.QEMU(t, "linux/arm64")
	f := harness.NewFleet(t, "ota-arm64")
	g := f.NewGateway("arm64", harness.FleetOptions{})
	v1 := build(t, "./cmd/gateway", "arm64", "version", "v1")
	v2 := build(t, "./cmd/gateway", "arm64", "version", "v2")
	o := &otaGateway{FleetGateway: g, f: f, dir: filepath.Join(filepath.Dir(g.Config), "firmware")}
	if binfmtARM64() {
		g.UseBinary(v1)
		g.UseArgs("launch", "-firmware-dir", o.dir, "-probation", "60s", "-settle", "1s", "-stop-timeout", "5s")
	} else {
		t.Log("binfmt_misc does not run arm64 binaries here: the gateway runs without its launcher (gateway run -firmware-dir) under " + prefix[0])
		g.UseBinary(v1, prefix...)
		g.UseArgs("run", "-firmware-dir", o.dir)
	}
	g.Start()
	o.waitFirmware(t, time.Minute, "first heartbeat from linux/arm64", func(s *fleet.Status, fw *fleet.Firmware) bool {
		return fw.Platform == "linux/arm64" && fw.State == firmware.StateIdle && s.Build.Version == "v1" && s.Uplink == fleet.UplinkOnline
	})
	r := o.push(t, "--image", v2, "--build", "v2", "--base", v1)
	t.Logf("arm64 v2 pushed as version %d: image %d bytes, full payload %d, delta %d", r.Version, r.ImageBytes, r.FullBytes, r.DeltaBytes)
	if binfmtARM64() {
		o.waitFirmware(t, 3*time.Minute, "v2 committed", func(s *fleet.Status, fw *fleet.Firmware) bool {
			return fw.State == firmware.StateCommitted && fw.Running == r.Version && s.Build.Version == "v2"
		})
		return
	}
	d := firmware.Dir(o.dir)
	g.Eventually(3*time.Minute, "v2 installed and pending, the gateway stopped for its launcher", func() error {
		st, err := d.Load()
		if err != nil {
			return err
		}
		if st.Pending == nil || st.Pending.Version != r.Version || st.Pending.Slot != firmware.SlotA || !st.Pending.UplinkRequired {
			return fmt.Errorf("state %+v", st)
		}
		if g.Running() {
			return fmt.Errorf("still running")
		}
		return nil
	})
	slot, _ := os.ReadFile(d.SlotPath(firmware.SlotA, ""))
	want, _ := os.ReadFile(v2)
	if sha256.Sum256(slot) != sha256.Sum256(want) {
		t.Fatal("slot a does not hold arm64 v2")
	}
	log := g.Log()
	if !strings.Contains(log, "encoding=zstd-delta") || !strings.Contains(log, "stopped to restart into the new firmware release") {
		t.Fatalf("gateway log lacks the delta install or the restart:\n%s", log)
	}
	t.Log("passed under qemu: download, delta, arm64 image check, install, exit 3; the launcher's probation of an arm64 slot needs binfmt_misc for arm64 (not registered here)")
}

// binfmtARM64 reports whether this machine runs arm64 binaries directly.
func binfmtARM64() bool {
	b, err := os.ReadFile("/proc/sys/fs/binfmt_misc/qemu-aarch64")
	return err == nil && strings.HasPrefix(string(b), "enabled")
}
