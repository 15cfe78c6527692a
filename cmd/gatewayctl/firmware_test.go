package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgegw/gateway/edge/firmware"
	"github.com/edgegw/gateway/edge/fleet"
)

// release reads make firmware's output: the gateway binary and its
// VERSION beside it (imageInfo reads the platform from a binary's build
// information); the delta is there only with --base.
func TestReleaseFromDist(t *testing.T) {
	self, err := os.Executable() // a Go binary with build information
	if err != nil {
		t.Fatal(err)
	}
	if platform, _ := imageInfo(self); platform != "linux/amd64" && platform != "linux/arm64" {
		t.Fatalf("platform of this test binary: %q", platform)
	}
	whole, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	img := whole[:min(len(whole), 1<<20)] // an ELF head is enough, and zstd's best level is slow under -race
	dir := t.TempDir()
	key, err := fleet.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "operator.key")
	if err := fleet.WritePrivateKey(keyFile, key); err != nil {
		t.Fatal(err)
	}
	dist := filepath.Join(dir, "linux-amd64")
	if err := os.MkdirAll(dist, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dist, "gateway"), img, 0o755); err != nil {
		t.Fatal(err)
	}

	r := &releaseFlags{dir: dist, keyFile: keyFile, platform: "linux/amd64", partSize: firmware.DefaultPartSize}
	if _, _, _, err := r.release("gw:dock-7"); err == nil || !strings.Contains(err.Error(), "--build") {
		t.Fatalf("without a build name: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dist, "VERSION"), []byte("v1.8.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, datas, k, err := r.release("gw:dock-7")
	if err != nil {
		t.Fatal(err)
	}
	if m.Build != "v1.8.0" || m.Platform != "linux/amd64" || m.Size != int64(len(img)) || len(m.Payloads) != 1 || len(datas) != 1 || k.ID != key.ID {
		t.Fatalf("release: build %q platform %q size %d payloads %d", m.Build, m.Platform, m.Size, len(m.Payloads))
	}
	r.base = filepath.Join(dist, "gateway")
	m, _, _, err = r.release("group:canary")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Payloads) != 2 || m.Payloads[1].Encoding != firmware.EncodingDelta || m.Payloads[1].Size*100 > m.Payloads[0].Size {
		t.Fatalf("delta against the image itself: %+v", m.Payloads)
	}
	if res := pushResultOf(m); res.DeltaBytes != m.Payloads[1].Size || res.Parts != len(m.Payloads[0].Parts)+len(m.Payloads[1].Parts) {
		t.Fatalf("push result %+v", res)
	}
}
