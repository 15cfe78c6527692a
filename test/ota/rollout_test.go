package ota

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/edge/firmware"
	"github.com/edgegw/gateway/edge/fleet"
	"github.com/edgegw/gateway/test/harness"
	"github.com/edgegw/gateway/uplink"
)

// 5. gatewayctl firmware rollout: v2 goes to the canary group, then to the
// rest, and every gateway commits it; a v3 that exits at start is rolled
// back on the canary, the rollout halts with the reason, and the rest of
// the fleet never sees v3.
func TestRollout(t *testing.T) {
	f := harness.NewFleet(t, "ota-rollout")
	canary := newOTAGateway(t, f, "canary", "canary", "all")
	rest := newOTAGateway(t, f, "rest", "all")
	for _, o := range []*otaGateway{canary, rest} {
		o.waitFirmware(t, 30*time.Second, "uplink online", func(s *fleet.Status, _ *fleet.Firmware) bool { return s.Uplink == fleet.UplinkOnline })
	}
	rollout := func(image, build string) (string, error) {
		return f.Ctl("firmware", "rollout", "--canary", "canary", "--group", "all", "--image", image, "--build", build,
			"--platform", "linux/amd64", "--key", f.KeyFile, "--wave-timeout", "2m", "--poll", "500ms")
	}
	out, err := rollout(gatewayBuild(t, "v2"), "v2")
	if err != nil {
		t.Fatalf("rollout of v2: %v\n%s", err, out)
	}
	t.Logf("rollout of v2:\n%s", out)
	var v2 uint64
	for _, o := range []*otaGateway{canary, rest} {
		hb := o.waitFirmware(t, 30*time.Second, "v2 committed", func(s *fleet.Status, fw *fleet.Firmware) bool {
			return fw.State == firmware.StateCommitted && s.Build.Version == "v2"
		})
		if v2 == 0 {
			v2 = hb.Firmware.Running
		}
		if hb.Firmware.Running != v2 {
			t.Fatalf("%s runs release %d, the canary %d", o.ID, hb.Firmware.Running, v2)
		}
	}

	out, err = rollout(faultyBuild(t, "exit", "amd64"), "v3-exit")
	if err == nil || !strings.Contains(out, "wave canary halted") || !strings.Contains(out, "exited in probation") {
		t.Fatalf("rollout of a v3 that exits at start: %v\n%s", err, out)
	}
	t.Logf("rollout of v3 halted:\n%s", out)
	hb := canary.waitFirmware(t, 30*time.Second, "v2 running again on the canary", func(s *fleet.Status, fw *fleet.Firmware) bool {
		return fw.State == firmware.StateRolledBack && fw.Running == v2 && s.Build.Version == "v2"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, err := f.Control().Read(ctx, f.Control().Topic(firmware.ManifestTopic))
	if err != nil {
		t.Fatal(err)
	}
	m, err := firmware.Unmarshal(uplink.Latest(msgs)[firmware.ManifestKey("group:all", "linux/amd64")].Payload)
	if err != nil || m.Version != v2 {
		t.Fatalf("the rest's manifest after the halted rollout: %+v %v; want version %d", m, err, v2)
	}
	if fw := f.Heartbeat(rest.ID).Firmware; fw.Running != v2 || fw.Version != v2 {
		t.Fatalf("the rest's firmware after the halted rollout: %+v", *fw)
	}
	t.Logf("canary: %s", hb.Firmware.Reason)
}
