package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// The ingest journal (path + ".journal") is where a group commit becomes
// durable when it can: one append of one frame and one fdatasync, a page or
// two of flash, instead of the handful of pages (leaf, branches, freelist,
// meta) a bbolt commit writes. The transaction's changes are applied to a
// bbolt write transaction that stays open across group commits and is
// committed ("moved") in one go when the journal is half full, when
// Options.MoveInterval has passed since the oldest commit not yet moved, before a compaction or check, and on
// Close; until then readers see the journaled entries through an in-memory
// overlay (read.go).
//
// A frame is
//
//	magic   uint32 BE  journalMagic
//	length  uint32 BE  of the payload
//	gen     uint64 BE  generation
//	prev    uint64 BE  where the previous frame ended (0 for the first)
//	crc     uint32 BE  CRC-32C of the 24 bytes above and the payload
//	payload            ops (jop), in the order the transaction made them
//
// Frames are written from offset 0 on, each where the previous one ended or,
// when that makes the write touch fewer flash pages, at the next page
// boundary: a frame that fits in a page then costs exactly one page per
// fdatasync, the floor, instead of two whenever it straddles a boundary.
// A frame names where its predecessor ended, so replay follows the chain
// and never skips over a damaged frame to a later one. The generation of the
// frames being written is one more than the generation the bbolt file says
// it holds (meta "journal"): every bbolt commit that includes journaled
// frames records their generation in the same transaction, and the journal
// then starts again at offset 0 with the next generation. Replay (Open)
// applies the frames of exactly that next generation, in order, up to the
// first that is torn, fails its CRC or is of another generation: frames left
// from earlier generations are never replayed, and nothing is replayed twice.
// The file is preallocated and zeroed once, so that an fdatasync writes the
// frame's pages and no file metadata.
type journal struct {
	f    *os.File
	size int64
	off  int64  // where the next frame goes
	gen  uint64 // generation of the frames being written
	// dirty is where the frames written without a sync begin (-1: none):
	// the next sync writes their pages, counted then.
	dirty int64
	// tail is the content of the page that holds off, from its start to
	// off: every write is of whole pages (see write).
	tail []byte
}

const (
	journalSuffix = ".journal"
	journalMagic  = 0x45474a31 // "EGJ1"
	frameHeader   = 28
	journalPage   = 4096
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// preallocate reserves the file's blocks (so that a full disk fails here,
// not at an append) and writes zeros over them (so that no later write
// converts an unwritten extent: a metadata change each fdatasync would have
// to write), syncs, and drops the zeros from the page cache: written in one
// go they sit in large folios, and dirtying a byte of one would account,
// and write, the whole folio.
func preallocate(f *os.File, from, to int64) error {
	fd := int(f.Fd())
	if err := unix.Fallocate(fd, 0, from, to-from); err != nil &&
		!errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	zero := make([]byte, 1<<20)
	for off := from; off < to; off += int64(len(zero)) {
		n := min(int64(len(zero)), to-off)
		if _, err := f.WriteAt(zero[:n], off); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	_ = unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
	return nil
}

// frameOf encodes ops as a frame of generation gen that follows a frame
// ending at prev.
func frameOf(gen, prev uint64, ops []jop) []byte {
	n := 0
	for _, o := range ops {
		n += o.encodedLen()
	}
	buf := make([]byte, frameHeader, frameHeader+n)
	for _, o := range ops {
		buf = o.append(buf)
	}
	binary.BigEndian.PutUint32(buf[0:], journalMagic)
	binary.BigEndian.PutUint32(buf[4:], uint32(len(buf)-frameHeader))
	binary.BigEndian.PutUint64(buf[8:], gen)
	binary.BigEndian.PutUint64(buf[16:], prev)
	crc := crc32.Update(crc32.Checksum(buf[:24], castagnoli), castagnoli, buf[frameHeader:])
	binary.BigEndian.PutUint32(buf[24:], crc)
	return buf
}

// pages is the number of flash pages a write of n bytes at off touches.
func pages(off, n int64) int64 {
	return (off+n+journalPage-1)/journalPage - off/journalPage
}

// place returns where a frame of n bytes goes: at the current offset, or
// at the next page boundary if the write then touches fewer pages; ok is
// false when it does not fit in the file.
func (j *journal) place(n int) (at int64, ok bool) {
	at = j.off
	if next := (j.off + journalPage - 1) / journalPage * journalPage; pages(next, int64(n)) < pages(j.off, int64(n)) {
		at = next
	}
	return at, at+int64(n) <= j.size
}

// write writes frame at at (see place) and, if sync, syncs it with the
// frames written before it without a sync; it returns the bytes that
// reached the storage (whole pages, each counted once however many frames
// dirtied it). On error the offset does not move: the next frame
// overwrites whatever part of this one was written.
//
// It writes whole pages: the start of the first page (earlier frames, kept
// in tail) and zeros after the frame to the end of its last page. A write
// of part of a page that is not in the page cache (the journal's pages are
// dropped at every move) would make the kernel read the page first, a
// disk read on the path of every commit; a whole page is just replaced.
func (j *journal) write(frame []byte, at int64, sync bool) (int64, error) {
	start := at / journalPage * journalPage
	buf := make([]byte, 0, (at-start+int64(len(frame))+journalPage-1)/journalPage*journalPage)
	if start == j.off/journalPage*journalPage {
		buf = append(buf, j.tail...)
	}
	buf = append(buf, make([]byte, at-start-int64(len(buf)))...)
	buf = append(buf, frame...)
	end := start + int64(len(buf))
	buf = buf[:cap(buf)] // zeros to the end of the page
	if _, err := j.f.WriteAt(buf, start); err != nil {
		return 0, err
	}
	defer func() {
		if j.off == end {
			last := end / journalPage * journalPage
			j.tail = append(j.tail[:0], buf[last-start:end-start]...)
		}
	}()
	from := at
	if j.dirty >= 0 {
		from = j.dirty
	}
	if !sync {
		j.dirty = from
		j.off = at + int64(len(frame))
		return 0, nil
	}
	if err := unix.Fdatasync(int(j.f.Fd())); err != nil {
		return 0, err
	}
	j.dirty = -1
	j.off = at + int64(len(frame))
	return pages(from, j.off-from) * journalPage, nil
}

// reset starts the next generation at offset 0. The bbolt commit that
// recorded the current generation must be durable.
//
// It also drops the journal's pages from the page cache (they are clean:
// synced): a large frame (a big batch) leaves its pages in large folios,
// and the kernel writes, and accounts, a whole folio when one byte of it
// is dirtied, so the small frames that overwrite them next would each
// write tens of KB instead of a page (BenchmarkFlashWrites measured 23 KB
// per event at 20 events/s after a 1,000-event batch, 4.6 KB without).
//
// Pages still dirty (frames written without a sync, see Ack) are not
// dropped, and a large frame of them would keep its large folios: they
// are synced first (their content is in the file now; this only makes
// them clean).
func (j *journal) reset() {
	if j.dirty >= 0 {
		_ = unix.Fdatasync(int(j.f.Fd()))
	}
	j.off, j.dirty, j.tail = 0, -1, j.tail[:0]
	j.gen++
	_ = unix.Fadvise(int(j.f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

func (j *journal) close() error { return j.f.Close() }

// readFrames returns the ops of the chain of frames of generation gen
// from offset 0 on, stopping at the first frame that is torn, has a bad
// CRC, belongs to another generation or does not follow its predecessor;
// and where they end.
func readFrames(r io.ReaderAt, size int64, gen uint64) (frames [][]jop, end int64, err error) {
	for {
		ops, next, err := readFrame(r, size, gen, end, end)
		if err == nil && ops == nil && end%journalPage != 0 {
			// Not right after its predecessor: at the next page boundary?
			ops, next, err = readFrame(r, size, gen, end, (end+journalPage-1)/journalPage*journalPage)
		}
		if err != nil {
			return nil, end, err
		}
		if ops == nil {
			return frames, end, nil
		}
		frames = append(frames, ops)
		end = next
	}
}

// readFrame reads the frame at off, which must follow a frame ending at
// prev; nil ops if there is none.
func readFrame(r io.ReaderAt, size int64, gen uint64, prev, off int64) ([]jop, int64, error) {
	var hdr [frameHeader]byte
	if off+frameHeader > size {
		return nil, 0, nil
	}
	if _, err := r.ReadAt(hdr[:], off); err != nil {
		return nil, 0, nil // short file: a torn end
	}
	n := int64(binary.BigEndian.Uint32(hdr[4:]))
	if binary.BigEndian.Uint32(hdr[0:]) != journalMagic || binary.BigEndian.Uint64(hdr[8:]) != gen ||
		binary.BigEndian.Uint64(hdr[16:]) != uint64(prev) || off+frameHeader+n > size {
		return nil, 0, nil
	}
	payload := make([]byte, n)
	if _, err := r.ReadAt(payload, off+frameHeader); err != nil {
		return nil, 0, nil
	}
	crc := crc32.Update(crc32.Checksum(hdr[:24], castagnoli), castagnoli, payload)
	if crc != binary.BigEndian.Uint32(hdr[24:]) {
		return nil, 0, nil
	}
	ops, err := decodeOps(payload)
	if err != nil {
		// A frame with a good CRC that does not decode was written by a
		// different build: refuse rather than guess.
		return nil, 0, fmt.Errorf("%w: journal frame at %d: %v", ErrCorrupt, off, err)
	}
	if ops == nil {
		ops = []jop{} // an empty frame is still a frame
	}
	return ops, off + frameHeader + n, nil
}
