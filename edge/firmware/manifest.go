package firmware

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/edgegw/gateway/edge/fleet"
)

// The Pulsar topics of firmware, in the uplink's tenant and namespace.
const (
	ManifestTopic = "firmware"        // compacted; key: ManifestKey
	ImageTopic    = "firmware-images" // payload parts; key: PartKey
)

// Manifest is one signed release for one platform. The signature covers
// every other field through SigningBytes.
type Manifest struct {
	Target      string    `json:"target"`   // fleet target key: "gw:<id>" or "group:<label>"
	Platform    string    `json:"platform"` // GOOS/GOARCH[/vN]: linux/arm64, linux/arm/v7, linux/amd64
	Version     uint64    `json:"version"`  // grows per target and platform; a gateway refuses any version <= the one it runs
	Build       string    `json:"build"`    // the image's own version stamp (gateway version prints it)
	IssuedAt    time.Time `json:"issued_at"`
	Size        int64     `json:"size"`         // the full image
	SHA256      []byte    `json:"sha256"`       // the full image
	StoreFormat uint32    `json:"store_format"` // buffer.FormatVersion of the image's build
	Payloads    []Payload `json:"payloads"`     // the full payload first; a delta may follow
	KeyID       string    `json:"key_id"`
	Signature   []byte    `json:"signature"`
}

// Payload is one encoding of the image as it travels: its bytes cut into
// parts of PartSize (the last one shorter), each with its SHA-256.
type Payload struct {
	Encoding   string   `json:"encoding"`              // EncodingZstd or EncodingDelta
	BaseSHA256 []byte   `json:"base_sha256,omitempty"` // a delta's base image
	Size       int64    `json:"size"`
	SHA256     []byte   `json:"sha256"`
	PartSize   int64    `json:"part_size"`
	Parts      [][]byte `json:"parts"`
}

// ID names the payload on the images topic: the first 16 hex digits of its
// SHA-256. The same image pushed to two targets travels once.
func (p *Payload) ID() string {
	if len(p.SHA256) < 8 {
		return ""
	}
	return hex.EncodeToString(p.SHA256[:8])
}

// PartKey is the images topic key of part i of payload id.
func PartKey(id string, i int) string { return fmt.Sprintf("%s/%d", id, i) }

// ManifestKey is the manifest topic key of a release for target (a fleet
// target key) and platform: "gw:dock-7|linux/arm64".
func ManifestKey(target, platform string) string { return target + "|" + platform }

// maxManifest bounds an encoded manifest (a 256 MiB image in 512 KiB parts
// lists 512 hashes per payload).
const maxManifest = 256 << 10

var (
	platformRe = regexp.MustCompile(`^linux/(amd64|arm64|arm/v[5-7]|386|riscv64)$`)
	buildRe    = regexp.MustCompile(`^[\x21-\x7e]{1,64}$`)
)

// signingDomain starts SigningBytes. It differs from the config bundles'
// ("edgegw config bundle v1\n"), so that neither signature verifies as the
// other even with the same key.
const signingDomain = "edgegw firmware manifest v1\n"

// SigningBytes is the canonical encoding the signature covers: the domain
// string, then every field but the signature, integers as big-endian u64,
// variable-length fields as a u32 length and the bytes, payloads as a u32
// count followed by each payload's fields and part hashes.
func (m *Manifest) SigningBytes() []byte {
	var b bytes.Buffer
	b.WriteString(signingDomain)
	u64 := func(v uint64) { b.Write(binary.BigEndian.AppendUint64(nil, v)) }
	lp := func(s []byte) {
		b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(s))))
		b.Write(s)
	}
	lp([]byte(m.Target))
	lp([]byte(m.Platform))
	u64(m.Version)
	lp([]byte(m.Build))
	u64(uint64(m.IssuedAt.UnixNano()))
	u64(uint64(m.Size))
	lp(m.SHA256)
	u64(uint64(m.StoreFormat))
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(m.Payloads))))
	for _, p := range m.Payloads {
		lp([]byte(p.Encoding))
		lp(p.BaseSHA256)
		u64(uint64(p.Size))
		lp(p.SHA256)
		u64(uint64(p.PartSize))
		b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(p.Parts))))
		for _, h := range p.Parts {
			lp(h)
		}
	}
	lp([]byte(m.KeyID))
	return b.Bytes()
}

// Sign sets KeyID and Signature with k.
func (m *Manifest) Sign(k *fleet.PrivateKey) {
	m.KeyID = k.ID
	m.Signature = ed25519.Sign(k.Key, m.SigningBytes())
}

// Marshal encodes m as JSON.
func (m *Manifest) Marshal() []byte {
	b, _ := json.Marshal(m)
	return b
}

// Unmarshal decodes a manifest and checks its shape (not its signature).
func Unmarshal(data []byte) (*Manifest, error) {
	if len(data) > maxManifest {
		return nil, fmt.Errorf("manifest of %d bytes: at most %d", len(data), maxManifest)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return &m, m.Validate()
}

// Validate checks the manifest's shape: target, platform, sizes, hashes and
// that each payload's parts add up to its size.
func (m *Manifest) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, err := fleet.ParseKey(m.Target); err != nil {
		bad("target: %v", err)
	}
	if !platformRe.MatchString(m.Platform) {
		bad("platform %q: want linux/<arch>[/vN]", m.Platform)
	}
	if m.Version == 0 {
		bad("version 0: versions start at 1")
	}
	if !buildRe.MatchString(m.Build) {
		bad("build %q: want 1-64 printable characters without spaces", m.Build)
	}
	if m.Size <= 0 || m.Size > maxImage {
		bad("size %d: want 1 to %d bytes", m.Size, maxImage)
	}
	if len(m.SHA256) != 32 {
		bad("sha256: want 32 bytes")
	}
	if len(m.Payloads) == 0 || m.Payloads[0].Encoding != EncodingZstd {
		bad("payloads: the first must be the full image (%s)", EncodingZstd)
	}
	for i, p := range m.Payloads {
		if err := p.validate(); err != nil {
			bad("payload %d: %v", i, err)
		}
	}
	return errors.Join(errs...)
}

func (p *Payload) validate() error {
	switch {
	case p.Encoding != EncodingZstd && p.Encoding != EncodingDelta:
		return fmt.Errorf("encoding %q", p.Encoding)
	case (p.Encoding == EncodingDelta) != (len(p.BaseSHA256) == 32):
		return errors.New("a delta, and only a delta, names its base's sha256")
	case len(p.SHA256) != 32:
		return errors.New("sha256: want 32 bytes")
	case p.PartSize < 4<<10 || p.PartSize > 4<<20:
		return fmt.Errorf("part size %d: want 4 KiB to 4 MiB", p.PartSize)
	case p.Size <= 0 || p.Size > maxImage:
		return fmt.Errorf("size %d", p.Size)
	case int64(len(p.Parts)) != (p.Size+p.PartSize-1)/p.PartSize:
		return fmt.Errorf("%d parts of %d bytes cannot hold %d bytes", len(p.Parts), p.PartSize, p.Size)
	}
	for i, h := range p.Parts {
		if len(h) != 32 {
			return fmt.Errorf("part %d: sha256 of %d bytes", i, len(h))
		}
	}
	return nil
}

// partLen is the length of part i.
func (p *Payload) partLen(i int) int64 {
	return min(p.PartSize, p.Size-int64(i)*p.PartSize)
}

// String names the release in messages: "version 7 (v1.4.2) for linux/arm64".
func (m *Manifest) String() string {
	return fmt.Sprintf("version %d (%s) for %s", m.Version, m.Build, m.Platform)
}

// PlatformOf names a platform from GOOS, GOARCH and GOARM ("7" ->
// "linux/arm/v7").
func PlatformOf(goos, goarch, goarm string) string {
	p := goos + "/" + goarch
	if goarch == "arm" && goarm != "" {
		p += "/v" + strings.TrimPrefix(goarm, "v")
	}
	return p
}
