package fleet

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/edgegw/gateway/units"
	"github.com/fxamacker/cbor/v2"
)

// Kind says what a bundle's target names.
type Kind string

// The target kinds.
const (
	KindGateway Kind = "gateway" // one gateway, by its ID
	KindGroup   Kind = "group"   // every gateway listing the label in gateway.groups
)

// Key prefixes of the config topic: a bundle for gateway "dock-7" has the
// message key "gw:dock-7", one for group "east" the key "group:east".
const (
	keyPrefixGateway = "gw:"
	keyPrefixGroup   = "group:"
)

// MaxDocument is the largest config document a bundle may carry.
const MaxDocument = 256 << 10

// maxWire bounds an encoded bundle.
const maxWire = MaxDocument + 4<<10

// Target is who a bundle is for.
type Target struct {
	Kind Kind
	Name string // gateway ID or group label
}

// GatewayTarget and GroupTarget build targets.
func GatewayTarget(id string) Target    { return Target{Kind: KindGateway, Name: id} }
func GroupTarget(label string) Target   { return Target{Kind: KindGroup, Name: label} }
func (t Target) String() string         { return t.Key() }
func (t Target) Equal(o Target) bool    { return t.Kind == o.Kind && t.Name == o.Name }
func (t Target) kindByte() (byte, bool) { return kindByte(t.Kind) }

func kindByte(k Kind) (byte, bool) {
	switch k {
	case KindGateway:
		return 1, true
	case KindGroup:
		return 2, true
	}
	return 0, false
}

// Key is the config topic's message key for the target.
func (t Target) Key() string {
	if t.Kind == KindGroup {
		return keyPrefixGroup + t.Name
	}
	return keyPrefixGateway + t.Name
}

// Validate checks the kind and the name (the rules of gateway.id).
func (t Target) Validate() error {
	if _, ok := t.kindByte(); !ok {
		return fmt.Errorf("target kind %q: want %q or %q", t.Kind, KindGateway, KindGroup)
	}
	if !units.ValidName(t.Name) {
		return fmt.Errorf("target name %q: %s", t.Name, units.NameRule)
	}
	return nil
}

// ParseKey reads a config topic message key ("gw:<id>" or "group:<label>").
func ParseKey(key string) (Target, error) {
	var t Target
	switch {
	case strings.HasPrefix(key, keyPrefixGateway):
		t = GatewayTarget(strings.TrimPrefix(key, keyPrefixGateway))
	case strings.HasPrefix(key, keyPrefixGroup):
		t = GroupTarget(strings.TrimPrefix(key, keyPrefixGroup))
	default:
		return t, fmt.Errorf("key %q: want gw:<gateway-id> or group:<label>", key)
	}
	return t, t.Validate()
}

// Bundle is one signed config push. The signature covers every other field
// through SigningBytes.
type Bundle struct {
	Target    Target
	Version   uint64    // strictly increasing; a gateway refuses any version <= the one it runs
	IssuedAt  time.Time // kept to the nanosecond
	Document  []byte    // the config YAML (without local-only settings)
	KeyID     string    // the signing key, as listed in the trusted-keys file
	Signature []byte    // ed25519 over SigningBytes
}

// signingDomain starts SigningBytes, so that a signature over a bundle can
// never be taken for a signature over anything else.
const signingDomain = "edgegw config bundle v1\n"

// SigningBytes is the canonical encoding the signature covers: the domain
// string "edgegw config bundle v1\n", then
//
//	kind      1 byte: 1 gateway, 2 group
//	target    u32 length + UTF-8 bytes
//	version   u64
//	issued_at i64, Unix time in nanoseconds
//	key_id    u32 length + UTF-8 bytes
//	document  u32 length + bytes
//
// with every integer big-endian. Every variable-length field is
// length-prefixed, so no two different bundles share an encoding.
func (b *Bundle) SigningBytes() []byte {
	var buf bytes.Buffer
	buf.WriteString(signingDomain)
	k, _ := b.Target.kindByte()
	buf.WriteByte(k)
	lp := func(s []byte) {
		buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(s))))
		buf.Write(s)
	}
	lp([]byte(b.Target.Name))
	buf.Write(binary.BigEndian.AppendUint64(nil, b.Version))
	buf.Write(binary.BigEndian.AppendUint64(nil, uint64(b.IssuedAt.UnixNano())))
	lp([]byte(b.KeyID))
	lp(b.Document)
	return buf.Bytes()
}

// Sign sets KeyID and Signature with k.
func (b *Bundle) Sign(k *PrivateKey) {
	b.KeyID = k.ID
	b.Signature = ed25519.Sign(k.Key, b.SigningBytes())
}

// verifySignature checks the signature with pub.
func (b *Bundle) verifySignature(pub ed25519.PublicKey) bool {
	return len(b.Signature) == ed25519.SignatureSize && ed25519.Verify(pub, b.SigningBytes(), b.Signature)
}

// Same reports whether b and o are the same signed bundle.
func (b *Bundle) Same(o *Bundle) bool {
	return b != nil && o != nil && b.Version == o.Version && bytes.Equal(b.Signature, o.Signature)
}

// wireBundle is the encoded form (see bundle.cddl), core deterministic CBOR.
type wireBundle struct {
	Format    uint64 `cbor:"format"`
	Kind      string `cbor:"kind"`
	Target    string `cbor:"target"`
	Version   uint64 `cbor:"version"`
	IssuedAt  int64  `cbor:"issued_at"`
	Document  []byte `cbor:"document"`
	KeyID     string `cbor:"key_id"`
	Signature []byte `cbor:"signature"`
}

const wireFormat = 1

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	if encMode, err = cbor.CoreDetEncOptions().EncMode(); err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		MaxNestedLevels:   4,
		MaxArrayElements:  16,
		MaxMapPairs:       16,
		TagsMd:            cbor.TagsForbidden,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// ErrMalformed is wrapped by every error of Unmarshal.
var ErrMalformed = errors.New("malformed bundle")

// Marshal encodes b. It refuses a bundle whose target is invalid or whose
// document is empty or larger than MaxDocument; it does not check the
// signature.
func Marshal(b *Bundle) ([]byte, error) {
	if err := b.Target.Validate(); err != nil {
		return nil, err
	}
	if len(b.Document) == 0 || len(b.Document) > MaxDocument {
		return nil, fmt.Errorf("document: %d bytes, want 1 to %d", len(b.Document), MaxDocument)
	}
	return encMode.Marshal(&wireBundle{
		Format: wireFormat, Kind: string(b.Target.Kind), Target: b.Target.Name, Version: b.Version,
		IssuedAt: b.IssuedAt.UnixNano(), Document: b.Document, KeyID: b.KeyID, Signature: b.Signature,
	})
}

// Unmarshal decodes a bundle strictly: unknown or duplicate fields, another
// format, an invalid target or an oversized input are errors wrapping
// ErrMalformed. It does not check the signature.
func Unmarshal(data []byte) (*Bundle, error) {
	if len(data) > maxWire {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(data))
	}
	var w wireBundle
	if err := decMode.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if w.Format != wireFormat {
		return nil, fmt.Errorf("%w: format %d, want %d", ErrMalformed, w.Format, wireFormat)
	}
	b := &Bundle{Target: Target{Kind: Kind(w.Kind), Name: w.Target}, Version: w.Version,
		IssuedAt: time.Unix(0, w.IssuedAt).UTC(), Document: w.Document, KeyID: w.KeyID, Signature: w.Signature}
	if err := b.Target.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(b.Document) > MaxDocument {
		return nil, fmt.Errorf("%w: document of %d bytes", ErrMalformed, len(b.Document))
	}
	return b, nil
}
