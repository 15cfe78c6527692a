package main

import (
	"math"
	"strings"
	"testing"

	"github.com/edgegw/gateway/edge/fleet"
	"github.com/edgegw/gateway/uplink"
)

// The version `config push` assigns: one more than the highest known, or
// the one asked for if it is newer; the message is the signed bundle.
func TestBundleMessage(t *testing.T) {
	k, err := fleet.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := fleet.ParseTrustedKeys([]byte(fleet.TrustedLine(k.Public(), "") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	bundleAt := func(v uint64) uplink.KeyedMessage {
		b := &fleet.Bundle{Target: fleet.GroupTarget("east"), Version: v, Document: []byte("streams: []\n")}
		b.Sign(k)
		data, err := fleet.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		return uplink.KeyedMessage{Key: "group:east", Payload: data}
	}
	read := []uplink.KeyedMessage{bundleAt(4), {Key: "junk", Payload: []byte("not a bundle")}, bundleAt(2)}
	if h, _ := highestVersion(read, 0, keys); h != 4 {
		t.Errorf("highest of the topic = %d, want 4", h)
	}
	if h, _ := highestVersion(read, 9, keys); h != 9 {
		t.Errorf("highest with a reported 9 = %d, want 9", h)
	}
	for _, tc := range []struct {
		requested, highest, want uint64
		err                      string
	}{
		{0, 4, 5, ""},
		{0, 0, 1, ""},
		{7, 4, 7, ""},
		{4, 4, 0, "version 4 exists already"},
		{3, 4, 0, "version 4 exists already"},
		{0, math.MaxUint64, 0, "no next version"},
		{0, MaxVersion, 0, "ceiling of 2^53"},
		{0, MaxVersion - 1, MaxVersion, ""},
		{MaxVersion + 1, 4, 0, "above the ceiling"},
	} {
		b := &fleet.Bundle{Target: fleet.GatewayTarget("dock-1"), Version: tc.requested, Document: []byte("streams: []\n")}
		m, err := bundleMessage(b, k, tc.requested, tc.highest)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: err %v, want %q", tc, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		got, err := fleet.Unmarshal(m.Payload)
		if err != nil || got.Version != tc.want || m.Key != "gw:dock-1" || m.Properties["key_id"] != k.ID || got.CheckSignature(keys) != nil {
			t.Errorf("%+v: message %+v, bundle %+v, %v", tc, m, got, err)
		}
	}
}

// A bundle signed by a key the operator does not trust, at version 2^64-1,
// does not set the next version: it is ignored, and named.
func TestHighestVersionIgnoresUntrusted(t *testing.T) {
	k, _ := fleet.GenerateKey()
	rogue, _ := fleet.GenerateKey()
	keys, err := operatorKeys("", k)
	if err != nil {
		t.Fatal(err)
	}
	msg := func(key *fleet.PrivateKey, v uint64) uplink.KeyedMessage {
		b := &fleet.Bundle{Target: fleet.GatewayTarget("dock-1"), Version: v, Document: []byte("streams: []\n")}
		b.Sign(key)
		data, err := fleet.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		return uplink.KeyedMessage{Key: "gw:dock-1", Payload: data}
	}
	forged := msg(k, math.MaxUint64-1)
	fb, _ := fleet.Unmarshal(forged.Payload)
	fb.Version++ // the signature no longer verifies
	forged.Payload, _ = fleet.Marshal(fb)
	read := []uplink.KeyedMessage{msg(k, 7), msg(rogue, math.MaxUint64), forged}
	h, ignored := highestVersion(read, 0, keys)
	if h != 7 || len(ignored) != 2 || !strings.Contains(strings.Join(ignored, "\n"), "version 18446744073709551615") ||
		!strings.Contains(strings.Join(ignored, "\n"), "unknown-key") || !strings.Contains(strings.Join(ignored, "\n"), "bad-signature") {
		t.Fatalf("highest %d, ignored %q", h, ignored)
	}
}
