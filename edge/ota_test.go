package edge

import (
	"testing"
	"time"

	"github.com/edgegw/gateway/edge/firmware"
	"github.com/edgegw/gateway/edge/fleet"
	"github.com/edgegw/gateway/uplink"
)

func otaForTest(t *testing.T) (*ota, *pageClock) {
	t.Helper()
	clk := &pageClock{t: time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)}
	cfg := pageConfig(t)
	cfg.Gateway.Groups = []string{"canary", "all"}
	g := New(cfg, Options{Logger: discardLogger(), Now: clk.Now, Build: Build{Target: "linux/arm/v7"}})
	return newOTA(g, t.TempDir(), cfg), clk
}

// The gateway's own manifest wins; else the newest of its groups'; keys of
// other platforms and strangers are not its own.
func TestOTAPick(t *testing.T) {
	o, _ := otaForTest(t)
	if o.platform != "linux/arm/v7" {
		t.Fatalf("platform %q", o.platform)
	}
	manifest := func(target string, v uint64) uplink.KeyedMessage {
		m := &firmware.Manifest{Target: target, Platform: o.platform, Version: v}
		return uplink.KeyedMessage{Payload: m.Marshal()}
	}
	key := func(target string) string { return firmware.ManifestKey(target, o.platform) }
	latest := map[string]uplink.KeyedMessage{
		key("group:canary"): manifest("group:canary", 5),
		key("group:all"):    manifest("group:all", 7),
		key("group:other"):  manifest("group:other", 9),
		firmware.ManifestKey("gw:gw-page-1", "linux/arm64"): manifest("gw:gw-page-1", 11),
	}
	if k, _, ok := o.pick(latest); !ok || k != key("group:all") {
		t.Fatalf("pick = %q %v, want the newest group release", k, ok)
	}
	latest[key("gw:gw-page-1")] = manifest("gw:gw-page-1", 3)
	if k, _, ok := o.pick(latest); !ok || k != key("gw:gw-page-1") {
		t.Fatalf("pick = %q %v, want the gateway's own", k, ok)
	}
}

// The heartbeat's firmware state: the launcher's decisions from the state
// file, the gateway's own when newer; probation whenever one is on trial.
func TestOTAStatus(t *testing.T) {
	o, clk := otaForTest(t)
	if s := o.status(); s.State != firmware.StateIdle || s.Platform != "linux/arm/v7" || len(s.Groups) != 2 {
		t.Fatalf("fresh: %+v", *s)
	}
	o.set(fleet.Firmware{State: firmware.StateDownloading, Version: 4, Percent: 50})
	if s := o.status(); s.State != firmware.StateDownloading || s.Percent != 50 {
		t.Fatalf("downloading: %+v", *s)
	}
	clk.Add(time.Minute)
	if _, err := o.dir.Update(func(st *firmware.State) error {
		st.Trial = &firmware.Trial{Release: firmware.Release{Slot: firmware.SlotA, Version: 4}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if s := o.status(); s.State != firmware.StateProbation || s.Version != 4 {
		t.Fatalf("in probation: %+v", *s)
	}
	if _, err := o.dir.Update(func(st *firmware.State) error {
		st.Trial = nil
		st.Last = firmware.Decision{State: firmware.StateRolledBack, Version: 4, Reason: "exited", At: clk.Now()}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if s := o.status(); s.State != firmware.StateRolledBack || s.Reason != "exited" || s.Running != 0 {
		t.Fatalf("rolled back: %+v", *s)
	}
	clk.Add(time.Minute)
	o.set(fleet.Firmware{State: firmware.StateRefused, Version: 5, Reason: "bad-signature: ..."})
	if s := o.status(); s.State != firmware.StateRefused || s.Version != 5 {
		t.Fatalf("refused after the rollback: %+v", *s)
	}
}
