package fleet

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/edgegw/gateway/edge/config"
)

func TestBundleRoundTripAndSignature(t *testing.T) {
	e := newTestEnv(t)
	b := e.bundle(GroupTarget("east"), 42, pushedYAML)
	got, err := Unmarshal(e.wire(b))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Target.Equal(b.Target) || got.Version != 42 || !got.IssuedAt.Equal(b.IssuedAt) ||
		!bytes.Equal(got.Document, b.Document) || got.KeyID != e.key.ID || !got.Same(b) {
		t.Fatalf("round trip: got %+v want %+v", got, b)
	}
	if !got.verifySignature(e.key.Public()) {
		t.Fatal("signature does not verify after a round trip")
	}
	// Changing any covered field breaks the signature.
	for name, mutate := range map[string]func(*Bundle){
		"kind":      func(b *Bundle) { b.Target.Kind = KindGateway },
		"target":    func(b *Bundle) { b.Target.Name = "west" },
		"version":   func(b *Bundle) { b.Version++ },
		"issued_at": func(b *Bundle) { b.IssuedAt = b.IssuedAt.Add(time.Nanosecond) },
		"key_id":    func(b *Bundle) { b.KeyID = e.other.ID },
		"document":  func(b *Bundle) { b.Document = append(append([]byte(nil), b.Document...), ' ') },
	} {
		c := *got
		mutate(&c)
		if c.verifySignature(e.key.Public()) {
			t.Errorf("changing %s keeps the signature valid", name)
		}
	}
}

// The signing bytes are a documented, stable format (bundle.cddl): pin them.
func TestSigningBytesGolden(t *testing.T) {
	b := &Bundle{Target: GatewayTarget("gw-1"), Version: 7, IssuedAt: time.Unix(0, 0x0102030405060708), KeyID: "ab", Document: []byte("x: 1\n")}
	want := hex.EncodeToString([]byte(signingDomain)) +
		"01" + "00000004" + hex.EncodeToString([]byte("gw-1")) +
		"0000000000000007" + "0102030405060708" +
		"00000002" + hex.EncodeToString([]byte("ab")) +
		"00000005" + hex.EncodeToString([]byte("x: 1\n"))
	if got := hex.EncodeToString(b.SigningBytes()); got != want {
		t.Fatalf("signing bytes\n got %s\nwant %s", got, want)
	}
}

func TestUnmarshalRefusesMalformed(t *testing.T) {
	e := newTestEnv(t)
	good := e.wire(e.bundle(GatewayTarget("dock-7"), 1, pushedYAML))
	enc := func(v any) []byte {
		b, err := cbor.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var m map[string]any
	if err := cbor.Unmarshal(good, &m); err != nil {
		t.Fatal(err)
	}
	with := func(k string, v any) []byte {
		c := map[string]any{}
		for kk, vv := range m {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return enc(c)
	}
	for name, data := range map[string][]byte{
		"empty":         nil,
		"not cbor":      []byte("version: 3"),
		"truncated":     good[:len(good)-3],
		"unknown field": with("extra", 1),
		"other format":  with("format", 2),
		"bad kind":      with("kind", "everyone"),
		"bad target":    with("target", "../etc"),
		"text version":  with("version", "3"),
		"huge":          append(append([]byte(nil), good...), make([]byte, maxWire)...),
	} {
		if _, err := Unmarshal(data); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

func TestKeysAndTargets(t *testing.T) {
	for key, want := range map[string]Target{"gw:dock-7": GatewayTarget("dock-7"), "group:east": GroupTarget("east")} {
		got, err := ParseKey(key)
		if err != nil || !got.Equal(want) || got.Key() != key {
			t.Errorf("%s: %+v %v", key, got, err)
		}
	}
	for _, key := range []string{"", "dock-7", "gw:", "group:a b", "gateway:x"} {
		if _, err := ParseKey(key); err == nil {
			t.Errorf("%q accepted", key)
		}
	}
}

// A pushed document is bounded before anything decodes it: an encoded
// bundle over maxWire is refused unread, and no bundle carries a document
// the config parser would refuse for its size.
func TestBundleDocumentBound(t *testing.T) {
	if MaxDocument > config.MaxSize {
		t.Fatalf("MaxDocument %d is over the config limit %d", MaxDocument, config.MaxSize)
	}
	e := newTestEnv(t)
	b := e.bundle(GroupTarget("east"), 1, pushedYAML)
	b.Document = bytes.Repeat([]byte("#"), MaxDocument+1)
	if _, err := Marshal(b); err == nil {
		t.Fatal("Marshal took a document over MaxDocument")
	}
	// A hand-encoded bundle with an oversized document.
	w := wireBundle{Format: wireFormat, Kind: string(KindGroup), Target: "east", Version: 1, Document: b.Document}
	data, err := encMode.Marshal(&w)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unmarshal(data); !errors.Is(err, ErrMalformed) {
		t.Fatalf("oversized document: %v", err)
	}
	// Input over maxWire is refused before decoding: the allocations do not
	// grow with the input.
	huge := make([]byte, 8<<20)
	if allocs := testing.AllocsPerRun(10, func() { _, _ = Unmarshal(huge) }); allocs > 5 {
		t.Fatalf("Unmarshal of 8 MiB: %v allocations", allocs)
	}
}
