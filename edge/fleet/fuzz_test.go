package fleet

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/edgegw/gateway/edge/config"
)

// fuzzLocalYAML is a gateway's local file; fuzzPushedYAML a valid pushed
// document (kept here, apart from the other tests' fixtures).
const (
	fuzzLocalYAML = `
gateway: {id: dock-7, groups: [east, docks], trusted_keys_file: /etc/edgegw/trusted_keys}
buffer: {path: /data/edgegw/buffer.db, disk_budget: 64MiB}
streams: [{name: scans}]
uplink: {service_url: "pulsar://127.0.0.1:6650", admin_url: "http://127.0.0.1:8080"}
http: {listen: "127.0.0.1:9108"}
fleet: {probation: 1s}
`
	fuzzPushedYAML = `
streams:
  - {name: scans, max_events: 5000}
  - {name: telemetry, overflow: drop-oldest}
uplink: {service_url: "pulsar://10.0.0.1:6650", admin_url: "http://10.0.0.1:8080"}
`
)

// fuzzKey is a fixed operator key, so that the committed seeds' signatures
// verify in every run.
func fuzzKey() (*PrivateKey, TrustedKeys) {
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, "edgegw fuzz operator key, tests!")
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	k := &PrivateKey{ID: KeyID(pub), Key: priv}
	return k, TrustedKeys{k.ID: {ID: k.ID, Key: pub}}
}

func fuzzLocal(t testing.TB) *config.Config {
	c, err := config.Parse([]byte(fuzzLocalYAML))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fuzzBundles are signed and unsigned bundles for the seed corpus.
func fuzzBundles(t testing.TB) [][]byte {
	k, _ := fuzzKey()
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var out [][]byte
	for i, b := range []*Bundle{
		{Target: GatewayTarget("dock-7"), Version: 7, IssuedAt: at, Document: []byte(fuzzPushedYAML)},
		{Target: GroupTarget("east"), Version: 8, IssuedAt: at, Document: []byte(fuzzPushedYAML)},
		{Target: GatewayTarget("dock-8"), Version: 9, IssuedAt: at, Document: []byte(fuzzPushedYAML)},
		{Target: GatewayTarget("dock-7"), Version: 10, IssuedAt: at, Document: []byte("gateway: {id: other}\n" + fuzzPushedYAML)},
		{Target: GatewayTarget("dock-7"), Version: 11, IssuedAt: at, Document: []byte("a: &a [*a]\n")},
		{Target: GatewayTarget("dock-7"), Version: 12, IssuedAt: at, Document: []byte("streams: [")},
	} {
		if i != 5 {
			b.Sign(k)
		}
		data, err := Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data)
		if i == 0 {
			flipped := append([]byte(nil), data...)
			flipped[len(flipped)-1] ^= 1 // signature no longer verifies
			out = append(out, flipped, data[:len(data)/2])
		}
	}
	return out
}

// FuzzVerify: a bundle as it arrives from the config topic. Unmarshal and
// Verify never panic, every refusal is a *RejectError, and nothing is
// accepted unless it is signed by a trusted key, for this gateway, with a
// document that leaves the local-only settings as they are.
func FuzzVerify(f *testing.F) {
	for _, b := range fuzzBundles(f) {
		f.Add(b)
	}
	_, keys := fuzzKey()
	local := fuzzLocal(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Unmarshal(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Unmarshal error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		cfg, err := Verify(b.Target.Key(), b, keys, local)
		if err != nil {
			var re *RejectError
			if !errors.As(err, &re) || re.Reason == "" {
				t.Fatalf("refusal is not a *RejectError: %v", err)
			}
			return
		}
		if b.CheckSignature(keys) != nil || !ForGateway(b.Target, local.Gateway.ID, local.Gateway.Groups) {
			t.Fatalf("accepted a bundle that is not signed for this gateway: %+v", b)
		}
		checkAccepted(t, cfg, local)
	})
}

// FuzzVerifyDocument: a correctly signed bundle for this gateway whose
// document is hostile (what a compromised operator key or a buggy tool could
// push). Verify never panics, and what it accepts is a valid config that
// keeps the local-only settings.
func FuzzVerifyDocument(f *testing.F) {
	for _, doc := range []string{fuzzPushedYAML, "", "streams: [{name: a}]\n", "gateway: {id: other}\n", "a: &a [*a]\n",
		"buffer: {path: /data/other.db}\n" + fuzzPushedYAML, "{{{{", "streams: *x\n"} {
		f.Add([]byte(doc))
	}
	k, keys := fuzzKey()
	local := fuzzLocal(f)
	f.Fuzz(func(t *testing.T, doc []byte) {
		if len(doc) == 0 || len(doc) > MaxDocument {
			return
		}
		b := &Bundle{Target: GatewayTarget(local.Gateway.ID), Version: 1, IssuedAt: time.Unix(0, 0), Document: doc}
		b.Sign(k)
		cfg, err := Verify(b.Target.Key(), b, keys, local)
		if err != nil {
			var re *RejectError
			if !errors.As(err, &re) || (re.Reason != ReasonInvalid && re.Reason != ReasonLocalOnly) {
				t.Fatalf("a signed bundle refused for %v", err)
			}
			return
		}
		checkAccepted(t, cfg, local)
	})
}

func checkAccepted(t *testing.T, cfg, local *config.Config) {
	t.Helper()
	if cfg == nil {
		t.Fatal("accepted without a config")
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("accepted an invalid config: %v", err)
	}
	if cfg.Gateway.ID != local.Gateway.ID || cfg.Gateway.TrustedKeysFile != local.Gateway.TrustedKeysFile ||
		cfg.Buffer.Path != local.Buffer.Path || cfg.HTTP.Listen != local.HTTP.Listen {
		t.Fatalf("a pushed document changed local-only settings: gateway %+v buffer %+v http %+v", cfg.Gateway, cfg.Buffer, cfg.HTTP)
	}
}

// TestWriteFuzzCorpus writes the seed bundles as the committed corpus
// (EDGE_WRITE_CORPUS=1).
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("EDGE_WRITE_CORPUS") == "" {
		t.Skip("writes the seed corpus only with EDGE_WRITE_CORPUS=1")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzVerify")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, b := range fuzzBundles(t) {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The seeds reach both sides of Verify: the first is accepted, the others
// are refused for the reasons they were made for.
func TestFuzzSeedsVerify(t *testing.T) {
	_, keys := fuzzKey()
	local := fuzzLocal(t)
	want := []Reason{"", ReasonBadSignature, ReasonMalformed, "", ReasonWrongTarget, ReasonLocalOnly, ReasonInvalid, ReasonUnsigned}
	for i, data := range fuzzBundles(t) {
		var got Reason
		b, err := Unmarshal(data)
		if err != nil {
			got = ReasonMalformed
		} else if _, err := Verify(b.Target.Key(), b, keys, local); err != nil {
			var re *RejectError
			if !errors.As(err, &re) {
				t.Fatalf("seed %d: %v", i, err)
			}
			got = re.Reason
		}
		if got != want[i] {
			t.Errorf("seed %d: %q, want %q", i, got, want[i])
		}
	}
}
