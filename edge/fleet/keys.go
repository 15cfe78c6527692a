package fleet

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/edgegw/gateway/edge/config"
)

// PrivateKey is an operator's signing key.
type PrivateKey struct {
	ID  string // KeyID of the public key
	Key ed25519.PrivateKey
}

// Public returns the public half.
func (k *PrivateKey) Public() ed25519.PublicKey { return k.Key.Public().(ed25519.PublicKey) }

// KeyID is the identifier of a public key: the first 8 bytes of its SHA-256,
// in hex (16 characters). Being derived from the key, it cannot name a
// different key than the one it was computed from.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// GenerateKey makes a new operator key.
func GenerateKey() (*PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &PrivateKey{ID: KeyID(pub), Key: priv}, nil
}

// TrustedLine is the line of the trusted-keys file that lists pub:
// "<key_id> ed25519 <base64 public key> [comment]".
func TrustedLine(pub ed25519.PublicKey, comment string) string {
	line := KeyID(pub) + " ed25519 " + base64.StdEncoding.EncodeToString(pub)
	if c := strings.Join(strings.Fields(comment), " "); c != "" {
		line += " " + c
	}
	return line
}

// MarshalPrivateKey encodes k as PEM (PKCS #8, "PRIVATE KEY"), the form
// `openssl genpkey -algorithm ed25519` writes too.
func MarshalPrivateKey(k *PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.Key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKey reads a PEM PKCS #8 ed25519 key, or a single line of
// base64 holding the 32-byte seed or the 64-byte private key.
func ParsePrivateKey(data []byte) (*PrivateKey, error) {
	if blk, _ := pem.Decode(data); blk != nil {
		if blk.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("PEM block %q: want PRIVATE KEY (PKCS #8)", blk.Type)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("key is a %T, want ed25519", k)
		}
		return &PrivateKey{ID: KeyID(priv.Public().(ed25519.PublicKey)), Key: priv}, nil
	}
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(data)))
	if err != nil {
		return nil, errors.New("neither PEM nor base64")
	}
	var priv ed25519.PrivateKey
	switch len(raw) {
	case ed25519.SeedSize:
		priv = ed25519.NewKeyFromSeed(raw)
	case ed25519.PrivateKeySize:
		priv = ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
		if !bytes.Equal(priv, raw) {
			return nil, errors.New("base64 private key: public half does not match the seed")
		}
	default:
		return nil, fmt.Errorf("base64 key of %d bytes: want a 32-byte seed or a 64-byte private key", len(raw))
	}
	return &PrivateKey{ID: KeyID(priv.Public().(ed25519.PublicKey)), Key: priv}, nil
}

// LoadPrivateKey reads a private key file, refusing one that group or others
// may read (like ssh does).
func LoadPrivateKey(path string) (*PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: permissions %04o are too open: the key must be readable by its owner only (chmod 600)", path, fi.Mode().Perm())
	}
	data, err := config.ReadFile(path) // bounded: a key file is small
	if err != nil {
		return nil, err
	}
	k, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// WritePrivateKey writes k as PEM to path with mode 0600; it refuses to
// replace an existing file.
func WritePrivateKey(path string, k *PrivateKey) error {
	b, err := MarshalPrivateKey(k)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// TrustedKey is one line of the trusted-keys file.
type TrustedKey struct {
	ID      string
	Key     ed25519.PublicKey
	Comment string
}

// TrustedKeys are the operator keys a gateway accepts, by key ID.
type TrustedKeys map[string]TrustedKey

// ParseTrustedKeys reads a trusted-keys file: one key per line,
//
//	<key_id> ed25519 <base64 public key> [comment]
//
// Blank lines and lines starting with '#' are ignored. The key ID must be
// KeyID of the key (it catches keys pasted onto the wrong line). Errors name
// the line.
func ParseTrustedKeys(data []byte) (TrustedKeys, error) {
	keys := TrustedKeys{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	var errs []error
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("line %d: %s", n, fmt.Sprintf(format, args...)))
		}
		if len(f) < 3 {
			bad("want <key_id> ed25519 <base64 public key> [comment]")
			continue
		}
		if f[1] != "ed25519" {
			bad("key type %q: only ed25519", f[1])
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(f[2])
		if err != nil || len(raw) != ed25519.PublicKeySize {
			bad("public key: want %d bytes of base64", ed25519.PublicKeySize)
			continue
		}
		pub := ed25519.PublicKey(raw)
		if id := KeyID(pub); f[0] != id {
			bad("key ID %q does not match the key (its ID is %s)", f[0], id)
			continue
		}
		if _, dup := keys[f[0]]; dup {
			bad("key %s listed twice", f[0])
			continue
		}
		keys[f[0]] = TrustedKey{ID: f[0], Key: pub, Comment: strings.Join(f[3:], " ")}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return keys, nil
}

// LoadTrustedKeys reads a trusted-keys file. An empty file (no keys) is an
// error: a gateway that trusts no key cannot take any config.
func LoadTrustedKeys(path string) (TrustedKeys, error) {
	data, err := config.ReadFile(path) // bounded: a key file is small
	if err != nil {
		return nil, err
	}
	keys, err := ParseTrustedKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no keys", path)
	}
	return keys, nil
}
