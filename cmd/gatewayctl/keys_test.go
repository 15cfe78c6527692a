package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/edgegw/gateway/edge/fleet"
)

// ctl runs gatewayctl with args and returns its output.
func runCtl(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRoot(func(string) string { return "" }, &out, &errb)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func mustCtl(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, err := runCtl(t, args...)
	if err != nil {
		t.Fatalf("gatewayctl %s: %v\n%s", strings.Join(args, " "), err, errs)
	}
	return out
}

func TestKeysGenAndShow(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	var gen keyInfo
	if err := json.Unmarshal([]byte(mustCtl(t, "keys", "gen", "--out", dir, "--comment", "ops on call", "-o", "json")), &gen); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "operator.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v", fi, err)
	}
	pub, _ := os.ReadFile(filepath.Join(dir, "operator.pub"))
	keys, err := fleet.ParseTrustedKeys(pub)
	if err != nil || keys[gen.KeyID].Comment != "ops on call" || strings.TrimSpace(string(pub)) != gen.TrustedLine {
		t.Fatalf("operator.pub %q is not a trusted-keys line for %s: %v", pub, gen.KeyID, err)
	}
	// show works on the private key and on the .pub file, and agrees.
	for _, f := range []string{"operator.key", "operator.pub"} {
		out := mustCtl(t, "keys", "show", "--key", filepath.Join(dir, f))
		if !strings.Contains(out, "key ID: "+gen.KeyID) || !strings.Contains(out, gen.PublicKey) {
			t.Fatalf("keys show %s:\n%s", f, out)
		}
	}
	// Never overwrites a key.
	if _, _, err := runCtl(t, "keys", "gen", "--out", dir); err == nil {
		t.Fatal("keys gen replaced an existing key")
	}
	if _, _, err := runCtl(t, "keys", "gen"); err == nil {
		t.Fatal("keys gen without --out succeeded")
	}
}

func TestVersion(t *testing.T) {
	out := mustCtl(t, "version")
	if !strings.HasPrefix(out, "gatewayctl dev (commit unknown, go") || !strings.Contains(out, runtime.GOOS+"/") {
		t.Fatalf("version printed %q", out)
	}
}
