package fleet

import (
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrivateKeyFiles(t *testing.T) {
	dir := t.TempDir()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "op.key")
	if err := WritePrivateKey(path, k); err != nil {
		t.Fatal(err)
	}
	if err := WritePrivateKey(path, k); err == nil {
		t.Fatal("overwrote an existing key file")
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	got, err := LoadPrivateKey(path)
	if err != nil || got.ID != k.ID || !got.Key.Equal(k.Key) {
		t.Fatalf("load: %v %v", got, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPrivateKey(path); err == nil || !strings.Contains(err.Error(), "too open") {
		t.Fatalf("a world-readable key was accepted: %v", err)
	}
	// base64 seed and base64 64-byte key.
	for _, raw := range [][]byte{k.Key.Seed(), k.Key} {
		got, err := ParsePrivateKey([]byte(base64.StdEncoding.EncodeToString(raw) + "\n"))
		if err != nil || got.ID != k.ID {
			t.Fatalf("base64 %d bytes: %v %v", len(raw), got, err)
		}
	}
	bad := append(append([]byte(nil), k.Key.Seed()...), make([]byte, 32)...)
	if _, err := ParsePrivateKey([]byte(base64.StdEncoding.EncodeToString(bad))); err == nil {
		t.Fatal("a 64-byte key whose public half does not match was accepted")
	}
}

func TestTrustedKeysFile(t *testing.T) {
	a, _ := GenerateKey()
	b, _ := GenerateKey()
	good := "# comment\n\n" + TrustedLine(a.Public(), "alice  laptop") + "\n" + TrustedLine(b.Public(), "") + "\n"
	keys, err := ParseTrustedKeys([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[a.ID].Comment != "alice laptop" || !keys[b.ID].Key.Equal(b.Public()) {
		t.Fatalf("keys %+v", keys)
	}
	pubB64 := base64.StdEncoding.EncodeToString(a.Public())
	for name, tc := range map[string]struct{ text, want string }{
		"short line":   {"abc ed25519\n", "line 1: want <key_id>"},
		"rsa":          {a.ID + " rsa " + pubB64, `line 1: key type "rsa"`},
		"bad base64":   {a.ID + " ed25519 !!!", "line 1: public key"},
		"wrong length": {a.ID + " ed25519 " + base64.StdEncoding.EncodeToString(make([]byte, 31)), "line 1: public key"},
		"wrong id":     {b.ID + " ed25519 " + pubB64, "does not match the key"},
		"duplicate":    {"#\n" + TrustedLine(a.Public(), "") + "\n" + TrustedLine(a.Public(), "again"), "line 3: key " + a.ID + " listed twice"},
	} {
		if _, err := ParseTrustedKeys([]byte(tc.text)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}
	path := filepath.Join(t.TempDir(), "empty")
	_ = os.WriteFile(path, []byte("# nobody\n"), 0o644)
	if _, err := LoadTrustedKeys(path); err == nil {
		t.Fatal("an empty trusted-keys file was accepted")
	}
	if KeyID(ed25519.PublicKey(make([]byte, 32))) != "66687aadf862bd77" {
		t.Fatalf("KeyID changed: %s", KeyID(make([]byte, 32)))
	}
}
