package fleet

import (
	"errors"
	"slices"
	"strings"
	"testing"

	_ "github.com/edgegw/gateway/drivers/mqtt" // a real driver section
)

func TestVerifyRefuses(t *testing.T) {
	e := newTestEnv(t)
	me := GatewayTarget("dock-7")
	for _, tc := range []struct {
		name   string
		key    string
		bundle func() *Bundle
		want   Reason
		detail string
	}{
		{"unsigned", me.Key(), func() *Bundle {
			b := e.bundle(me, 3, pushedYAML)
			b.Signature = nil
			return b
		}, ReasonUnsigned, "no signature"},
		{"unknown key", me.Key(), func() *Bundle {
			b := e.bundle(me, 3, pushedYAML)
			b.Sign(e.other)
			return b
		}, ReasonUnknownKey, e.other.ID},
		{"forged signature", me.Key(), func() *Bundle {
			b := e.bundle(me, 3, pushedYAML)
			b.Signature = e.bundle(me, 3, pushedYAML+"\n# x\n").Signature
			return b
		}, ReasonBadSignature, "does not verify"},
		{"trusted key ID, other key", me.Key(), func() *Bundle {
			b := e.bundle(me, 3, pushedYAML)
			b.Sign(e.other)
			b.KeyID = e.key.ID
			return b
		}, ReasonBadSignature, ""},
		{"other gateway", "gw:dock-8", func() *Bundle { return e.bundle(GatewayTarget("dock-8"), 3, pushedYAML) }, ReasonWrongTarget, "neither this gateway"},
		{"other group", "group:west", func() *Bundle { return e.bundle(GroupTarget("west"), 3, pushedYAML) }, ReasonWrongTarget, "neither"},
		{"published under another key", "group:east", func() *Bundle { return e.bundle(me, 3, pushedYAML) }, ReasonWrongTarget, "published under"},
		{"invalid document", me.Key(), func() *Bundle { return e.bundle(me, 3, "streams: []\n") }, ReasonInvalid, "at least one stream"},
		{"unknown field", me.Key(), func() *Bundle { return e.bundle(me, 3, pushedYAML+"uplinks: {}\n") }, ReasonInvalid, "uplinks"},
		{"not yaml", me.Key(), func() *Bundle { return e.bundle(me, 3, "streams: [") }, ReasonInvalid, ""},
		{"changes gateway.id", me.Key(), func() *Bundle { return e.bundle(me, 3, pushedYAML+"gateway:\n  id: dock-8\n") }, ReasonLocalOnly, "gateway.id"},
		{"changes groups", me.Key(), func() *Bundle { return e.bundle(me, 3, pushedYAML+"gateway:\n  groups: [west]\n") }, ReasonLocalOnly, "gateway.groups"},
		{"changes trusted keys", me.Key(), func() *Bundle {
			return e.bundle(me, 3, pushedYAML+"gateway:\n  trusted_keys_file: other/keys\n")
		}, ReasonLocalOnly, "gateway.trusted_keys_file"},
		{"changes buffer path", me.Key(), func() *Bundle { return e.bundle(me, 3, pushedYAML+"buffer:\n  path: other.db\n") }, ReasonLocalOnly, "buffer.path"},
		{"changes disk budget", me.Key(), func() *Bundle { return e.bundle(me, 3, pushedYAML+"buffer:\n  disk_budget: 1GiB\n") }, ReasonLocalOnly, "buffer.disk_budget"},
		{"changes probation", me.Key(), func() *Bundle { return e.bundle(me, 3, pushedYAML+"fleet:\n  probation: 1h\n") }, ReasonLocalOnly, "fleet.probation"},
		{"changes http", me.Key(), func() *Bundle { return e.bundle(me, 3, pushedYAML+"http:\n  listen: 0.0.0.0:80\n") }, ReasonLocalOnly, "http.listen"},
		{"section as a scalar", me.Key(), func() *Bundle { return e.bundle(me, 3, pushedYAML+"log: loud\n") }, ReasonLocalOnly, "log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(tc.key, tc.bundle(), e.keys, e.local)
			var re *RejectError
			if !errors.As(err, &re) || re.Reason != tc.want || !strings.Contains(re.Detail, tc.detail) {
				t.Fatalf("got %v, want %s containing %q", err, tc.want, tc.detail)
			}
		})
	}
	if _, err := Verify(me.Key(), e.bundle(me, 3, pushedYAML), nil, e.local); err == nil {
		t.Fatal("accepted with no trusted keys")
	}
}

func TestVerifyMergesLocalOnlySettings(t *testing.T) {
	e := newTestEnv(t)
	// Local-only settings repeated with the local values are accepted, in
	// any spelling.
	doc := pushedYAML + `
gateway:
  id: dock-7
  groups: [east, docks]
buffer:
  disk_budget: 67108864
fleet:
  probation: 1000ms
log: {}
`
	for _, key := range []string{"gw:dock-7", "group:east", "group:docks"} {
		tgt, _ := ParseKey(key)
		cfg, err := Verify(key, e.bundle(tgt, 9, doc), e.keys, e.local)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if cfg.Gateway.ID != "dock-7" || cfg.Buffer.Path != e.local.Buffer.Path || cfg.Gateway.TrustedKeysFile != e.local.Gateway.TrustedKeysFile ||
			cfg.HTTP.Listen != "127.0.0.1:9108" || cfg.Fleet.Probation != e.local.Fleet.Probation || !slices.Equal(cfg.Gateway.Groups, []string{"east", "docks"}) {
			t.Fatalf("local-only settings not merged: %+v %+v %+v", cfg.Gateway, cfg.Buffer, cfg.HTTP)
		}
		if len(cfg.Streams) != 2 || cfg.Streams[0].MaxEvents != 5000 || cfg.Uplink.ServiceURL != "pulsar://10.0.0.1:6650" {
			t.Fatalf("document not applied: %+v %+v", cfg.Streams, cfg.Uplink)
		}
	}
}

func TestCheckDocument(t *testing.T) {
	if lo, err := CheckDocument([]byte(pushedYAML)); err != nil || len(lo) != 0 {
		t.Fatalf("%v %v", lo, err)
	}
	lo, err := CheckDocument([]byte(pushedYAML + "gateway:\n  id: x\nbuffer:\n  path: y\n"))
	if err != nil || !slices.Equal(lo, []string{"gateway.id", "buffer.path"}) {
		t.Fatalf("%v %v", lo, err)
	}
	if _, err := CheckDocument([]byte("streams:\n  - name: scans\n    overflow: nope\n")); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("want an error naming line 3, got %v", err)
	}
}

func TestSelect(t *testing.T) {
	e := newTestEnv(t)
	w := func(tg Target, v uint64) []byte { return e.wire(e.bundle(tg, v, pushedYAML)) }
	for _, tc := range []struct {
		name   string
		latest map[string][]byte
		want   string
	}{
		{"none", map[string][]byte{"gw:other": w(GatewayTarget("other"), 1), "group:west": w(GroupTarget("west"), 2)}, ""},
		{"own key wins", map[string][]byte{"gw:dock-7": w(GatewayTarget("dock-7"), 1), "group:east": w(GroupTarget("east"), 9)}, "gw:dock-7"},
		{"newest group", map[string][]byte{"group:east": w(GroupTarget("east"), 3), "group:docks": w(GroupTarget("docks"), 4)}, "group:docks"},
		{"tie: first group", map[string][]byte{"group:east": w(GroupTarget("east"), 4), "group:docks": w(GroupTarget("docks"), 4)}, "group:east"},
		{"undecodable group still selected", map[string][]byte{"group:docks": []byte("junk")}, "group:docks"},
	} {
		got, ok := Select(tc.latest, "dock-7", []string{"east", "docks"})
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("%s: got %q %v, want %q", tc.name, got, ok, tc.want)
		}
	}
}

// A dry run refuses what a gateway would refuse at start: an MQTT source
// on the embedded broker with no broker: section (gatewayctl config push
// --dry-run calls CheckDocument).
func TestCheckDocumentEmbeddedWithoutBroker(t *testing.T) {
	doc := pushedYAML + `sources:
  - name: devices
    driver: mqtt
    mqtt:
      brokers: [embedded]
      subscriptions:
        - {topic: site/+/scan, kind: scan}
`
	_, err := CheckDocument([]byte(doc))
	if err == nil || !strings.Contains(err.Error(), "broker") {
		t.Fatalf("want a refusal naming the missing broker section, got %v", err)
	}
	if _, err := CheckDocument([]byte(doc + "broker:\n  allow_anonymous: true\n")); err != nil {
		t.Fatalf("with a broker section: %v", err)
	}
}
