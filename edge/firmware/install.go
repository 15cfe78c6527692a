package firmware

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
)

// Install decodes a downloaded payload into the slot the running release
// does not use, checks the image (size, SHA-256, an executable for the
// platform), fsyncs it, renames it into place, fsyncs the directory, and
// records it as pending in the state file: the launcher starts it in
// probation at the next restart. base is the running binary, for a delta.
// Errors are *RefuseError (ReasonTampered, ReasonWrongArch) or I/O errors.
func (d Dir) Install(m *Manifest, p *Payload, payload string, base []byte, uplinkRequired bool) error {
	st, err := d.Load()
	if err != nil {
		return err
	}
	if st.Trial != nil || st.Pending != nil {
		return fmt.Errorf("a release is already pending or in probation")
	}
	f, err := os.Open(payload)
	if err != nil {
		return err
	}
	defer f.Close()
	ph := sha256.New()
	if n, err := io.Copy(ph, f); err != nil {
		return err
	} else if n != p.Size || !bytes.Equal(ph.Sum(nil), p.SHA256) {
		return refuse(ReasonTampered, "%s: the downloaded payload does not match its signed sha256", m)
	}
	if _, err := f.Seek(0, 0); err != nil {
		return err
	}

	slot := st.Current.Slot.other()
	path := d.SlotPath(slot, "")
	tmp := path + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o700)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	w := &headWriter{h: sha256.New()}
	if err := Decode(io.MultiWriter(out, w), p, f, base, m.Size); err != nil {
		out.Close()
		return refuse(ReasonTampered, "%s: the payload does not decode: %v", m, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if w.n != m.Size || !bytes.Equal(w.h.Sum(nil), m.SHA256) {
		return refuse(ReasonTampered, "%s: the image (%d bytes) does not match its signed size and sha256", m, w.n)
	}
	if err := checkELF(w.head, m.Platform); err != nil {
		return refuse(ReasonWrongArch, "%s: %v", m, err)
	}
	if err := commitRename(tmp, path); err != nil {
		return err
	}
	_, err = d.Update(func(st *State) error {
		if st.Trial != nil || st.Pending != nil {
			return fmt.Errorf("a release is already pending or in probation")
		}
		st.Pending = &Trial{Release: Release{Slot: slot, Version: m.Version, Build: m.Build}, UplinkRequired: uplinkRequired}
		return nil
	})
	return err
}

// headWriter hashes and counts what passes, keeping the first bytes.
type headWriter struct {
	h    hash.Hash
	n    int64
	head []byte
}

func (w *headWriter) Write(b []byte) (int, error) {
	if len(w.head) < 64 {
		w.head = append(w.head, b[:min(len(b), 64-len(w.head))]...)
	}
	w.n += int64(len(b))
	return w.h.Write(b)
}
