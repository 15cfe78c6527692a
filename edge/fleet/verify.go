package fleet

import (
	"fmt"
	"slices"
	"strings"

	"github.com/edgegw/gateway/edge/config"
)

// Reason says why a gateway refused a bundle.
type Reason string

// The reasons, in the order Verify checks them.
const (
	ReasonMalformed    Reason = "malformed"        // the message is not a bundle
	ReasonNoTrust      Reason = "trusted-keys"     // the gateway's trusted-keys file is missing or invalid
	ReasonUnsigned     Reason = "unsigned"         // no key ID or no signature
	ReasonUnknownKey   Reason = "unknown-key"      // signed by a key not in the trusted-keys file
	ReasonBadSignature Reason = "bad-signature"    // the signature does not verify
	ReasonWrongTarget  Reason = "wrong-target"     // not for this gateway, or published under another key
	ReasonStale        Reason = "stale-version"    // version <= the one applied: a replay or a rollback
	ReasonLocalOnly    Reason = "local-only"       // tries to change a local-only setting
	ReasonInvalid      Reason = "invalid-document" // the document is not a valid config
)

// RejectError is a refused bundle: the reason and the details.
type RejectError struct {
	Reason Reason
	Detail string
}

func (e *RejectError) Error() string { return string(e.Reason) + ": " + e.Detail }

func reject(r Reason, format string, args ...any) *RejectError {
	return &RejectError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// Verify checks a bundle read under message key for the gateway whose local
// file is local, with the operator keys it trusts, and returns the config to
// run (the document merged with the local-only settings; see Merge). The
// version is not checked here: the caller compares it with what it runs.
// Errors are *RejectError.
func Verify(key string, b *Bundle, keys TrustedKeys, local *config.Config) (*config.Config, error) {
	if len(keys) == 0 {
		return nil, reject(ReasonNoTrust, "no trusted operator keys (gateway.trusted_keys_file)")
	}
	if err := b.CheckSignature(keys); err != nil {
		return nil, err
	}
	if b.Target.Key() != key {
		return nil, reject(ReasonWrongTarget, "version %d is for %s but was published under key %q", b.Version, b.Target, key)
	}
	if !ForGateway(b.Target, local.Gateway.ID, local.Gateway.Groups) {
		return nil, reject(ReasonWrongTarget, "version %d is for %s, which is neither this gateway (%s) nor one of its groups %v",
			b.Version, b.Target, local.Gateway.ID, local.Gateway.Groups)
	}
	return Merge(local, b.Document)
}

// CheckSignature checks that b is signed by one of keys: the error is a
// *RejectError (ReasonUnsigned, ReasonUnknownKey or ReasonBadSignature).
func (b *Bundle) CheckSignature(keys TrustedKeys) error {
	if b.KeyID == "" || len(b.Signature) == 0 {
		return reject(ReasonUnsigned, "version %d for %s carries no signature", b.Version, b.Target)
	}
	tk, ok := keys[b.KeyID]
	if !ok {
		return reject(ReasonUnknownKey, "version %d for %s is signed by key %q, which is not in the trusted-keys file", b.Version, b.Target, b.KeyID)
	}
	if !b.verifySignature(tk.Key) {
		return reject(ReasonBadSignature, "version %d for %s: the signature does not verify with key %s", b.Version, b.Target, b.KeyID)
	}
	return nil
}

// ForGateway reports whether t names gateway id or one of its groups.
func ForGateway(t Target, id string, groups []string) bool {
	switch t.Kind {
	case KindGateway:
		return t.Name == id
	case KindGroup:
		return slices.Contains(groups, t.Name)
	}
	return false
}

// Select picks, from the latest message of each config topic key, the key
// whose bundle applies to gateway id: its own key ("gw:<id>") wins; else the
// group bundle with the highest version among its groups (the group listed
// first wins a tie; an undecodable one counts as version 0, so that it is
// still reported). ok is false when no key applies.
func Select(latest map[string][]byte, id string, groups []string) (key string, ok bool) {
	if _, ok := latest[GatewayTarget(id).Key()]; ok {
		return GatewayTarget(id).Key(), true
	}
	var best uint64
	for _, g := range groups {
		k := GroupTarget(g).Key()
		data, found := latest[k]
		if !found {
			continue
		}
		var v uint64
		if b, err := Unmarshal(data); err == nil {
			v = b.Version
		}
		if !ok || v > best {
			key, best, ok = k, v, true
		}
	}
	return key, ok
}

// Keys returns the config topic keys gateway id listens to.
func Keys(id string, groups []string) []string {
	out := []string{GatewayTarget(id).Key()}
	for _, g := range groups {
		out = append(out, GroupTarget(g).Key())
	}
	return out
}

// oneLine joins a multi-line error (config.Errors) for status reasons.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
