package firmware

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// download feeds every part of payload pi of m into a Download of dir.
func download(t *testing.T, d Dir, p *Payload, data []byte) *Download {
	t.Helper()
	dl, err := d.OpenDownload(p)
	if err != nil {
		t.Fatal(err)
	}
	for i, part := range parts(p, data) {
		if err := dl.Add(i, part, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if !dl.Done() || dl.Percent() != 100 {
		t.Fatalf("download not done: %d of %d parts", dl.Parts(), len(p.Parts))
	}
	return dl
}

func TestInstallFullAndDelta(t *testing.T) {
	e := newEnv(t)
	base := fakeELF(62, 200_000, 7)
	img := append(append([]byte{}, base[:150_000]...), fakeELF(62, 50_000, 8)...) // shares most of base
	m, datas := e.release(t, "gw:van-1", 4, img, base)
	full, delta := &m.Payloads[0], &m.Payloads[1]
	if delta.Size*3 > full.Size {
		t.Errorf("delta of %d bytes is not much smaller than the full payload's %d", delta.Size, full.Size)
	}
	for i, p := range []*Payload{full, delta} {
		d := Dir(t.TempDir())
		dl := download(t, d, p, datas[i])
		if err := d.Install(m, p, dl.Path(), base, true); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(d.SlotPath(SlotA, ""))
		if err != nil || !bytes.Equal(got, img) {
			t.Fatalf("slot a does not hold the image (%v)", err)
		}
		st, err := d.Load()
		if err != nil || st.Pending == nil || st.Pending.Slot != SlotA || st.Pending.Version != 4 || !st.Pending.UplinkRequired {
			t.Fatalf("state after install: %+v %v", st, err)
		}
		if err := d.Install(m, p, dl.Path(), base, true); err == nil {
			t.Fatal("a second install while one is pending")
		}
	}
}

func TestInstallRefusals(t *testing.T) {
	e := newEnv(t)
	t.Run("wrong arch", func(t *testing.T) {
		m, datas := e.release(t, "gw:van-1", 4, fakeELF(183, 10_000, 1), nil) // an arm64 image labelled amd64
		d := Dir(t.TempDir())
		dl := download(t, d, &m.Payloads[0], datas[0])
		err := d.Install(m, &m.Payloads[0], dl.Path(), nil, false)
		if reason(err) != ReasonWrongArch {
			t.Fatalf("Install: %v, want %s", err, ReasonWrongArch)
		}
		if _, err := os.Stat(d.SlotPath(SlotA, "")); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("a refused image was left in the slot")
		}
		if st, _ := d.Load(); st.Pending != nil {
			t.Fatal("a refused image is pending")
		}
	})
	t.Run("tampered part", func(t *testing.T) {
		m, datas := e.release(t, "gw:van-1", 4, fakeELF(62, 20_000, 2), nil)
		p := &m.Payloads[0]
		d := Dir(t.TempDir())
		dl, err := d.OpenDownload(p)
		if err != nil {
			t.Fatal(err)
		}
		ps := parts(p, datas[0])
		bad := append([]byte{}, ps[0]...)
		bad[10] ^= 1
		if err := dl.Add(0, bad, nil); reason(err) != ReasonTampered {
			t.Fatalf("Add of a tampered part: %v", err)
		}
		if dl.Parts() != 0 {
			t.Fatal("a tampered part was kept")
		}
	})
	t.Run("delta against another base", func(t *testing.T) {
		base := fakeELF(62, 20_000, 3)
		m, datas := e.release(t, "gw:van-1", 4, fakeELF(62, 20_000, 4), base)
		d := Dir(t.TempDir())
		dl := download(t, d, &m.Payloads[1], datas[1])
		if err := d.Install(m, &m.Payloads[1], dl.Path(), fakeELF(62, 20_000, 5), false); reason(err) != ReasonTampered {
			t.Fatalf("Install: %v", err)
		}
	})
}

// A download interrupted (the process gone, a partial part written after
// the last recorded one) continues from the last recorded part, in the
// same file.
func TestDownloadResumes(t *testing.T) {
	e := newEnv(t)
	img := fakeELF(62, 60_000, 9)
	m, datas := e.release(t, "gw:van-1", 4, img, nil)
	p := &m.Payloads[0]
	ps := parts(p, datas[0])
	if len(ps) < 3 {
		t.Fatalf("want at least 3 parts, got %d", len(ps))
	}
	d := Dir(t.TempDir())
	dl, err := d.OpenDownload(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := dl.Add(i, ps[i], []byte{'m', byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dl.f.Write(ps[2][:100]); err != nil { // a part half written, not recorded
		t.Fatal(err)
	}
	dl.Close()

	dl, err = d.OpenDownload(p)
	if err != nil {
		t.Fatal(err)
	}
	if dl.Parts() != 2 || !bytes.Equal(dl.MsgID(), []byte{'m', 1}) {
		t.Fatalf("resumed at part %d, message %q; want 2, m\\x01", dl.Parts(), dl.MsgID())
	}
	if err := dl.Add(4, ps[min(4, len(ps)-1)], nil); !errors.Is(err, ErrPartMissing) && len(ps) > 4 {
		t.Fatalf("a part after a gap: %v", err)
	}
	for i := range ps {
		if err := dl.Add(i, ps[i], nil); err != nil { // parts on disk are skipped
			t.Fatal(err)
		}
	}
	got, _ := os.ReadFile(dl.Path())
	if !bytes.Equal(got, datas[0]) {
		t.Fatal("the resumed payload differs from the one sent")
	}
	ents, _ := os.ReadDir(filepath.Join(string(d), "download"))
	if len(ents) != 1 {
		t.Fatalf("%d downloads on disk, want 1", len(ents))
	}
}

// A gateway killed during an install (slot-a.tmp half written, or slot-a
// renamed into place but not yet recorded as pending) installs again at
// its next start from the download still on disk: the state file never
// points at a slot that was not completely written.
func TestInstallAfterInterruptedInstall(t *testing.T) {
	e := newEnv(t)
	img := fakeELF(62, 30_000, 11)
	m, datas := e.release(t, "gw:van-1", 4, img, nil)
	d := Dir(t.TempDir())
	dl := download(t, d, &m.Payloads[0], datas[0])
	slot := d.SlotPath(SlotA, "")
	for _, leftover := range []string{slot + ".tmp", slot} {
		if err := os.WriteFile(leftover, []byte("half an image"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := d.Load(); st.Pending != nil {
		t.Fatal("pending before the install")
	}
	if err := d.Install(m, &m.Payloads[0], dl.Path(), nil, false); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(slot)
	st, _ := d.Load()
	if !bytes.Equal(got, img) || st.Pending == nil || st.Pending.Slot != SlotA {
		t.Fatalf("after the second install: slot holds the image %v, state %+v", bytes.Equal(got, img), st)
	}
	if _, err := os.Stat(slot + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the temporary file was left behind")
	}
}
