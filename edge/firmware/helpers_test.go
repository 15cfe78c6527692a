package firmware

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/edgegw/gateway/edge/fleet"
)

// fakeELF is an image that passes the ELF check for linux/amd64 (machine
// 62), followed by n pseudo-random bytes from seed.
func fakeELF(machine uint16, n int, seed uint64) []byte {
	h := make([]byte, 64)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = 2, 1, 1
	binary.LittleEndian.PutUint16(h[16:], 2)
	binary.LittleEndian.PutUint16(h[18:], machine)
	r := rand.New(rand.NewPCG(seed, seed))
	body := make([]byte, n)
	for i := range body {
		body[i] = byte(r.IntN(16)) // compressible, like code
	}
	return append(h, body...)
}

type env struct {
	key   *fleet.PrivateKey
	other *fleet.PrivateKey
	gw    Gateway
}

func newEnv(t *testing.T) *env {
	t.Helper()
	k, err := fleet.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	o, err := fleet.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return &env{key: k, other: o, gw: Gateway{ID: "van-1", Groups: []string{"canary"}, Platform: "linux/amd64", Version: 3, StoreFormat: 4,
		Keys: fleet.TrustedKeys{k.ID: {ID: k.ID, Key: k.Public()}}}}
}

// release builds a signed manifest for image (and a delta against base when
// base is set) and returns it with the payloads' bytes.
func (e *env) release(t *testing.T, target string, version uint64, image, base []byte) (*Manifest, [][]byte) {
	t.Helper()
	sum := sha256.Sum256(image)
	m := &Manifest{Target: target, Platform: "linux/amd64", Version: version, Build: "v1.2.3", IssuedAt: time.Unix(1700000000, 5),
		Size: int64(len(image)), SHA256: sum[:], StoreFormat: 4}
	p, data, err := Encode(image, nil, 4<<10)
	if err != nil {
		t.Fatal(err)
	}
	m.Payloads = append(m.Payloads, p)
	datas := [][]byte{data}
	if base != nil {
		p, data, err := Encode(image, base, 4<<10)
		if err != nil {
			t.Fatal(err)
		}
		m.Payloads = append(m.Payloads, p)
		datas = append(datas, data)
	}
	m.Sign(e.key)
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m, datas
}

// parts cuts payload data as the images topic carries it.
func parts(p *Payload, data []byte) [][]byte {
	var out [][]byte
	for off := int64(0); off < int64(len(data)); off += p.PartSize {
		out = append(out, data[off:min(off+p.PartSize, int64(len(data)))])
	}
	return out
}

func reason(err error) Reason {
	if re, ok := err.(*RefuseError); ok {
		return re.Reason
	}
	return ""
}

var _ = bytes.Equal
