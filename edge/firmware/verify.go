package firmware

import (
	"crypto/ed25519"
	"fmt"

	"github.com/edgegw/gateway/edge/fleet"
)

// Reason says why a gateway refused a release.
type Reason string

// The reasons: Check's in the order it checks them, then the download's
// and the install's.
const (
	ReasonMalformed     Reason = "malformed"      // the message is not a manifest
	ReasonNoTrust       Reason = "trusted-keys"   // the gateway trusts no operator key
	ReasonUnsigned      Reason = "unsigned"       // no key ID or no signature
	ReasonUnknownKey    Reason = "unknown-key"    // signed by a key not in the trusted-keys file
	ReasonBadSignature  Reason = "bad-signature"  // the signature does not verify (in the firmware domain)
	ReasonWrongTarget   Reason = "wrong-target"   // not for this gateway, or published under another key
	ReasonWrongPlatform Reason = "wrong-platform" // built for another GOOS/GOARCH/GOARM
	ReasonStale         Reason = "stale-version"  // not newer than what runs or was tried
	ReasonStoreFormat   Reason = "store-format"   // the build could not read the store, or a rollback could not after it
	ReasonTampered      Reason = "tampered"       // a part, the payload or the image does not match its signed hash
	ReasonWrongArch     Reason = "wrong-arch"     // the image is not an executable for this platform
	ReasonInstall       Reason = "install-failed" // the slot could not be written (disk full, I/O error)
)

// RefuseError is a refused release: the reason and the details.
type RefuseError struct {
	Reason Reason
	Detail string
}

func (e *RefuseError) Error() string { return string(e.Reason) + ": " + e.Detail }

func refuse(r Reason, format string, args ...any) *RefuseError {
	return &RefuseError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// Gateway is what Check compares a manifest with.
type Gateway struct {
	ID          string
	Groups      []string
	Platform    string // PlatformOf the running binary
	Version     uint64 // the release running (0: the packaged binary) or, if higher, the last one tried
	StoreFormat uint32 // buffer.FormatVersion of the running binary
	Keys        fleet.TrustedKeys
}

// Check verifies a manifest read under message key for gateway g; it
// returns a *RefuseError. A manifest that passes may still be refused by
// the download (ReasonTampered) or the install (ReasonWrongArch).
func Check(key string, m *Manifest, g Gateway) error {
	if len(g.Keys) == 0 {
		return refuse(ReasonNoTrust, "no trusted operator keys (gateway.trusted_keys_file)")
	}
	if m.KeyID == "" || len(m.Signature) == 0 {
		return refuse(ReasonUnsigned, "%s carries no signature", m)
	}
	tk, ok := g.Keys[m.KeyID]
	if !ok {
		return refuse(ReasonUnknownKey, "%s is signed by key %q, which is not in the trusted-keys file", m, m.KeyID)
	}
	if len(m.Signature) != ed25519.SignatureSize || !ed25519.Verify(tk.Key, m.SigningBytes(), m.Signature) {
		return refuse(ReasonBadSignature, "%s: the signature does not verify with key %s as a firmware manifest", m, m.KeyID)
	}
	if ManifestKey(m.Target, m.Platform) != key {
		return refuse(ReasonWrongTarget, "%s is for %s but was published under key %q", m, m.Target, key)
	}
	t, _ := fleet.ParseKey(m.Target)
	if !fleet.ForGateway(t, g.ID, g.Groups) {
		return refuse(ReasonWrongTarget, "%s is for %s, which is neither this gateway (%s) nor one of its groups %v", m, m.Target, g.ID, g.Groups)
	}
	if m.Platform != g.Platform {
		return refuse(ReasonWrongPlatform, "%s: this gateway runs on %s", m, g.Platform)
	}
	if m.Version <= g.Version {
		return refuse(ReasonStale, "%s is not newer than version %d, which this gateway runs or tried", m, g.Version)
	}
	switch {
	case m.StoreFormat < g.StoreFormat:
		return refuse(ReasonStoreFormat, "%s reads buffer format %d at most; the buffer is in format %d", m, m.StoreFormat, g.StoreFormat)
	case m.StoreFormat > g.StoreFormat:
		return refuse(ReasonStoreFormat, "%s would upgrade the buffer to format %d, which the running build (format %d) could not read after a rollback; install it with the package", m, m.StoreFormat, g.StoreFormat)
	}
	return nil
}

// Refusal returns err as a *RefuseError, wrapping other errors as
// ReasonInstall.
func Refusal(err error) *RefuseError {
	if re, ok := err.(*RefuseError); ok {
		return re
	}
	return refuse(ReasonInstall, "%v", err)
}
