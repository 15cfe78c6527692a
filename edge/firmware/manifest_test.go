package firmware

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/edge/fleet"
)

func TestCheckReasons(t *testing.T) {
	e := newEnv(t)
	img := fakeELF(62, 10_000, 1)
	key := ManifestKey("gw:van-1", "linux/amd64")
	for _, tc := range []struct {
		name   string
		key    string
		mutate func(m *Manifest)
		gw     func(g *Gateway)
		want   Reason
	}{
		{name: "ok"},
		{name: "group", key: ManifestKey("group:canary", "linux/amd64"), mutate: func(m *Manifest) { m.Target = "group:canary"; m.Sign(e.key) }},
		{name: "no keys", gw: func(g *Gateway) { g.Keys = nil }, want: ReasonNoTrust},
		{name: "unsigned", mutate: func(m *Manifest) { m.Signature = nil }, want: ReasonUnsigned},
		{name: "unknown key", mutate: func(m *Manifest) { m.Sign(e.other) }, want: ReasonUnknownKey},
		{name: "bad signature", mutate: func(m *Manifest) { m.Version++ }, want: ReasonBadSignature},
		{name: "other key's signature", mutate: func(m *Manifest) { s := m.Signature; m.Sign(e.other); m.KeyID = e.key.ID; _ = s }, want: ReasonBadSignature},
		{name: "published under another key", key: ManifestKey("gw:van-2", "linux/amd64"), want: ReasonWrongTarget},
		{name: "another gateway", key: ManifestKey("gw:van-2", "linux/amd64"), mutate: func(m *Manifest) { m.Target = "gw:van-2"; m.Sign(e.key) }, want: ReasonWrongTarget},
		{name: "wrong platform", key: ManifestKey("gw:van-1", "linux/arm64"), mutate: func(m *Manifest) { m.Platform = "linux/arm64"; m.Sign(e.key) }, want: ReasonWrongPlatform},
		{name: "stale", mutate: func(m *Manifest) { m.Version = 3; m.Sign(e.key) }, want: ReasonStale},
		{name: "store too new", mutate: func(m *Manifest) { m.StoreFormat = 5; m.Sign(e.key) }, want: ReasonStoreFormat},
		{name: "store too old", mutate: func(m *Manifest) { m.StoreFormat = 3; m.Sign(e.key) }, want: ReasonStoreFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := e.release(t, "gw:van-1", 4, img, nil)
			if tc.mutate != nil {
				tc.mutate(m)
			}
			g := e.gw
			if tc.gw != nil {
				tc.gw(&g)
			}
			k := key
			if tc.key != "" {
				k = tc.key
			}
			err := Check(k, m, g)
			if got := reason(err); got != tc.want || (tc.want == "") != (err == nil) {
				t.Fatalf("Check: %v, want reason %q", err, tc.want)
			}
			if err != nil && tc.want != ReasonNoTrust && !strings.Contains(err.Error(), fmt.Sprintf("version %d (", m.Version)) {
				t.Errorf("the refusal does not name the version: %v", err)
			}
		})
	}
}

// A config bundle's signature, made with the same key over the same bytes
// a manifest would be, never verifies as a manifest's: the domains differ.
func TestSignatureDomains(t *testing.T) {
	e := newEnv(t)
	m, _ := e.release(t, "gw:van-1", 4, fakeELF(62, 1000, 2), nil)
	b := &fleet.Bundle{Target: fleet.GatewayTarget("van-1"), Version: 4, IssuedAt: m.IssuedAt, Document: m.SigningBytes()}
	b.Sign(e.key)
	m.Signature = b.Signature
	if err := Check(ManifestKey("gw:van-1", "linux/amd64"), m, e.gw); reason(err) != ReasonBadSignature {
		t.Fatalf("a config bundle signature passed as a manifest's: %v", err)
	}
	if bytes.HasPrefix(m.SigningBytes(), []byte("edgegw config bundle")) {
		t.Fatal("manifest signing bytes start with the config domain")
	}
}

func TestManifestRoundTrip(t *testing.T) {
	e := newEnv(t)
	m, _ := e.release(t, "group:canary", 9, fakeELF(62, 50_000, 3), fakeELF(62, 50_000, 4))
	got, err := Unmarshal(m.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.SigningBytes(), m.SigningBytes()) || !got.IssuedAt.Equal(m.IssuedAt) || len(got.Payloads) != 2 {
		t.Fatalf("round trip changed the manifest:\n%+v\n%+v", got, m)
	}
	bad := *m
	bad.Payloads = []Payload{m.Payloads[1]}
	if _, err := Unmarshal(bad.Marshal()); err == nil || !strings.Contains(err.Error(), "first must be the full image") {
		t.Fatalf("a manifest with only a delta: %v", err)
	}
	if _, err := Unmarshal([]byte(`{"target":"gw:x","extra":1}`)); err == nil {
		t.Fatal("unknown field accepted")
	}
	_ = time.Now
}

func TestPlatformOf(t *testing.T) {
	for in, want := range map[[3]string]string{
		{"linux", "arm", "7"}:  "linux/arm/v7",
		{"linux", "arm64", ""}: "linux/arm64",
		{"linux", "amd64", ""}: "linux/amd64",
		{"linux", "arm", "v6"}: "linux/arm/v6",
	} {
		if got := PlatformOf(in[0], in[1], in[2]); got != want {
			t.Errorf("PlatformOf%v = %q, want %q", in, got, want)
		}
	}
}
