package firmware

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Download is a payload being downloaded into the firmware directory,
// part by part, in order: each part is checked against the manifest's hash
// before it is appended, and after each part the count and the message ID
// to read on from are written (atomically), so that a restart continues
// where the last part on disk ends and never starts a second copy.
type Download struct {
	dir  string
	p    *Payload
	prog progress
	f    *os.File
}

// progress is download/<id>/progress.json.
type progress struct {
	Parts int    `json:"parts"`            // parts on disk
	MsgID []byte `json:"msg_id,omitempty"` // the images topic message of the last part on disk
}

// ErrPartMissing is returned by Add for a part after a gap: the parts
// before it were not seen (the reader must start again from the topic's
// earliest message).
var ErrPartMissing = errors.New("firmware: part missing before this one")

// OpenDownload opens payload p's download under the firmware directory,
// resuming one a previous run left. Downloads of other payloads are
// removed: only one is kept.
func (d Dir) OpenDownload(p *Payload) (*Download, error) {
	root := filepath.Join(string(d), "download")
	if ents, err := os.ReadDir(root); err == nil {
		for _, e := range ents {
			if e.Name() != p.ID() {
				_ = os.RemoveAll(filepath.Join(root, e.Name()))
			}
		}
	}
	dl := &Download{dir: filepath.Join(root, p.ID()), p: p}
	if err := os.MkdirAll(dl.dir, 0o700); err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(dl.progPath()); err == nil {
		if json.Unmarshal(b, &dl.prog) != nil || dl.prog.Parts > len(p.Parts) {
			dl.prog = progress{}
		}
	}
	f, err := os.OpenFile(dl.Path(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	// Bytes after the last recorded part were written by a run that died
	// before recording it: drop them.
	if err := f.Truncate(dl.have()); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(dl.have(), 0); err != nil {
		f.Close()
		return nil, err
	}
	dl.f = f
	return dl, nil
}

func (dl *Download) progPath() string { return filepath.Join(dl.dir, "progress.json") }

// Path is the payload file.
func (dl *Download) Path() string { return filepath.Join(dl.dir, "payload") }

// have is the bytes of the recorded parts.
func (dl *Download) have() int64 {
	return min(int64(dl.prog.Parts)*dl.p.PartSize, dl.p.Size)
}

// Parts is the number of parts on disk; MsgID the message to read on from
// (nil: from the earliest).
func (dl *Download) Parts() int    { return dl.prog.Parts }
func (dl *Download) MsgID() []byte { return dl.prog.MsgID }
func (dl *Download) Done() bool    { return dl.prog.Parts == len(dl.p.Parts) }
func (dl *Download) Bytes() int64  { return dl.have() }
func (dl *Download) Percent() float64 {
	return 100 * float64(dl.have()) / float64(dl.p.Size)
}

// Add takes part i, read from message msgID. A part already on disk is
// ignored; one after a gap is ErrPartMissing; one whose hash differs from
// the manifest's is a *RefuseError (ReasonTampered) and is not kept.
func (dl *Download) Add(i int, data, msgID []byte) error {
	switch {
	case i < dl.prog.Parts:
		return nil
	case i >= len(dl.p.Parts):
		return refuse(ReasonTampered, "part %d of a payload of %d parts", i, len(dl.p.Parts))
	case i > dl.prog.Parts:
		return fmt.Errorf("%w: got part %d, have %d", ErrPartMissing, i, dl.prog.Parts)
	}
	if int64(len(data)) != dl.p.partLen(i) {
		return refuse(ReasonTampered, "part %d has %d bytes, the manifest says %d", i, len(data), dl.p.partLen(i))
	}
	if sum := sha256.Sum256(data); !bytes.Equal(sum[:], dl.p.Parts[i]) {
		return refuse(ReasonTampered, "part %d does not match its signed sha256", i)
	}
	if _, err := dl.f.Write(data); err != nil {
		return err
	}
	if err := dl.f.Sync(); err != nil {
		return err
	}
	next := progress{Parts: i + 1, MsgID: msgID}
	b, _ := json.Marshal(next)
	if err := writeFileAtomic(dl.progPath(), b, 0o600); err != nil {
		return err
	}
	dl.prog = next
	return nil
}

// RemoveDownloads deletes every download (after a refusal).
func (d Dir) RemoveDownloads() error { return os.RemoveAll(filepath.Join(string(d), "download")) }

// Close closes the payload file; the download stays on disk.
func (dl *Download) Close() error { return dl.f.Close() }

// Remove closes and deletes the download.
func (dl *Download) Remove() error {
	dl.f.Close()
	return os.RemoveAll(dl.dir)
}
