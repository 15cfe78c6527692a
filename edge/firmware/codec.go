package firmware

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// The payload encodings.
const (
	EncodingZstd  = "zstd"       // the image, zstd-compressed
	EncodingDelta = "zstd-delta" // the image, zstd-compressed with the base image as raw dictionary
)

// DefaultPartSize is the size of an image part on the images topic.
const DefaultPartSize = 512 << 10

// maxImage bounds a decoded image (and the window of a delta).
const maxImage = 256 << 20

// Encode compresses image; with base set, as a delta against base (zstd with
// base as raw dictionary: what the new build shares with the old costs
// little more than a reference). The result is split into parts of partSize
// (DefaultPartSize when 0).
func Encode(image, base []byte, partSize int) (Payload, []byte, error) {
	if partSize <= 0 {
		partSize = DefaultPartSize
	}
	opts := []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1)}
	p := Payload{Encoding: EncodingZstd}
	if base != nil {
		p.Encoding = EncodingDelta
		sum := sha256.Sum256(base)
		p.BaseSHA256 = sum[:]
		opts = append(opts, zstd.WithEncoderDictRaw(0, base), zstd.WithWindowSize(windowFor(len(base))))
	}
	enc, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		return Payload{}, nil, err
	}
	data := enc.EncodeAll(image, nil)
	_ = enc.Close()
	p.Size = int64(len(data))
	p.PartSize = int64(partSize)
	for off := 0; off < len(data); off += partSize {
		sum := sha256.Sum256(data[off:min(off+partSize, len(data))])
		p.Parts = append(p.Parts, sum[:])
	}
	all := sha256.Sum256(data)
	p.SHA256 = all[:]
	return p, data, nil
}

// windowFor is the window of a delta against a base of n bytes: a power of
// two above n by a margin. A byte of the image refers to the same byte of
// the base from about n bytes back (more where the new build grew), so a
// window of exactly n, as a base of 1 MiB would get, loses most matches.
func windowFor(n int) int {
	need := n + n/8 + 1<<20
	w := zstd.MinWindowSize
	for w < need && w < zstd.MaxWindowSize {
		w <<= 1
	}
	return w
}

// Decode writes the image that payload data decodes to into w, reading the
// base image from base for a delta. It stops after limit bytes.
func Decode(w io.Writer, p *Payload, data io.Reader, base []byte, limit int64) error {
	opts := []zstd.DOption{zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxImage), zstd.WithDecoderLowmem(true)}
	if p.Encoding == EncodingDelta {
		if base == nil {
			return errors.New("a delta needs its base image")
		}
		if sum := sha256.Sum256(base); !bytes.Equal(sum[:], p.BaseSHA256) {
			return errors.New("the base image is not the one the delta was made against")
		}
		opts = append(opts, zstd.WithDecoderDictRaw(0, base), zstd.WithDecoderMaxWindow(uint64(windowFor(len(base)))))
	} else if p.Encoding != EncodingZstd {
		return fmt.Errorf("encoding %q: want %s or %s", p.Encoding, EncodingZstd, EncodingDelta)
	}
	dec, err := zstd.NewReader(data, opts...)
	if err != nil {
		return err
	}
	defer dec.Close()
	n, err := io.Copy(w, io.LimitReader(dec, limit+1))
	if err != nil {
		return err
	}
	if n > limit {
		return fmt.Errorf("the image decodes to more than %d bytes", limit)
	}
	return nil
}
