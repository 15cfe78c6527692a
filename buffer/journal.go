package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"

	"github.com/klauspost/compress/zstd"
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
//	magic   uint32 BE  journalMagic, or journalMagicZ: the payload is compressed
//	length  uint32 BE  of the payload as stored
//	gen     uint64 BE  generation
//	prev    uint64 BE  where the previous frame ended (0 for the first)
//	crc     uint32 BE  CRC-32C of the 24 bytes above and the payload as stored
//	payload            ops (jop), in the order the transaction made them; with
//	                   journalMagicZ, one zstd frame (content size in its
//	                   header) that decodes to them
//
// A frame is compressed (format 6; format 5 wrote journalMagic frames only,
// which are read as before) when its ops take at least compressMin bytes
// and the zstd frame is smaller: a busy commit of a few KB then fits in
// fewer pages, each synced page holding more events. The CRC covers the
// stored bytes, so a torn or damaged compressed frame ends the chain like
// any other; one with a good CRC that does not decompress was not written
// by this code, and is ErrCorrupt like ops that do not decode. What a
// generation's frames decode to is bounded (journalInflate), so replaying a
// hostile file cannot take much more memory than a real one. The journal
// is moved when its frames, as decoded, would fill half of it (moveDue):
// the file receives, and the open transaction holds, as much per move as
// with uncompressed frames; what compression saves is pages per sync.
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
	// raw, frame and wbuf are frameOf's encoded ops, the frame, and
	// write's page-aligned copy, reused from one commit to the next (up to
	// journalKeep bytes each); zenc compresses frames (made when the first
	// frame is worth it). One goroutine (the committer) builds and writes
	// frames.
	raw, frame, wbuf []byte
	zenc             *zstd.Encoder
	// grown is how much more than they take in the file the frames of
	// this generation decode to, at most (journalInflate-1) times size;
	// growth is that of the frame last built (frameOf), added to grown
	// when write writes it.
	grown, growth int64
}

const (
	journalSuffix = ".journal"
	journalMagic  = 0x45474a31 // "EGJ1": the payload is the ops
	journalMagicZ = 0x45474a5a // "EGJZ": the payload is the ops, zstd-compressed
	frameHeader   = 28
	journalPage   = 4096
	// compressMin is the smallest payload worth compressing: below it a
	// frame is well within a page either way (one event is ~300 bytes of
	// ops, its stream's record included).
	compressMin = 512
	// journalInflate bounds what the frames of one generation decode to,
	// as a multiple of the journal's size: the writer stores frames
	// uncompressed beyond it, replay refuses a file that says more
	// (readFrames). Moves keep a generation to about half the journal
	// (moveDue): only a hostile file, or one huge batch, comes near it.
	journalInflate = 4
	// journalKeep is the largest buffer the journal keeps for the next
	// frame; a larger one (a big batch) is left to the garbage collector.
	journalKeep = 64 << 10
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

// frameOf encodes ops as the frame of the current generation that follows
// a frame ending at prev, compressed if that makes it smaller (and its ops
// take at least compressMin bytes, and the generation stays within
// journalInflate). The frame is in j's buffer, valid until the next call.
func (j *journal) frameOf(prev uint64, ops []jop) []byte {
	j.raw = appendOps(drop(j.raw), ops)
	var enc *zstd.Encoder
	if len(j.raw) >= compressMin && j.grown+int64(len(j.raw)) <= (journalInflate-1)*j.size {
		enc = j.encoder()
	}
	var z bool
	j.frame, z = appendFrame(drop(j.frame), j.gen, prev, j.raw, enc)
	j.growth = 0
	if z {
		j.growth = int64(len(j.raw) - (len(j.frame) - frameHeader))
	}
	return j.frame
}

// holds is how many bytes the journal's frames would take uncompressed
// (padding included) once frame, the one frameOf built last, is written at
// at: what a move would then carry into the file.
func (j *journal) holds(at int64, frame []byte) int64 {
	return at + int64(len(frame)) + j.grown + j.growth
}

// appendOps appends the encoding of ops to buf: a frame's payload.
func appendOps(buf []byte, ops []jop) []byte {
	n := 0
	for i := range ops {
		n += ops[i].encodedLen()
	}
	buf = slices.Grow(buf, n)
	for i := range ops {
		buf = ops[i].append(buf)
	}
	return buf
}

// drop empties buf for reuse, or returns nil if it is larger than the
// journal keeps.
func drop(buf []byte) []byte {
	if cap(buf) > journalKeep {
		return nil
	}
	return buf[:0]
}

// encoder returns the journal's zstd encoder, nil if there is none (frames
// are then stored as they are).
func (j *journal) encoder() *zstd.Encoder {
	if j.zenc == nil {
		// The frame's CRC covers the stored bytes: no zstd checksum.
		j.zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
			zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false))
	}
	return j.zenc
}

// appendFrame appends to dst the frame of generation gen, following a frame
// ending at prev, whose payload is ops (encoded), compressed with enc if
// enc is not nil and that makes it smaller; compressed says whether it did.
func appendFrame(dst []byte, gen, prev uint64, ops []byte, enc *zstd.Encoder) (frame []byte, compressed bool) {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeader)...)
	magic := uint32(journalMagic)
	if enc != nil {
		dst = enc.EncodeAll(ops, dst)
		if len(dst)-start-frameHeader < len(ops) {
			magic = journalMagicZ
		} else {
			dst = dst[:start+frameHeader]
		}
	}
	if magic == journalMagic {
		dst = append(dst, ops...)
	}
	f := dst[start:]
	binary.BigEndian.PutUint32(f[0:], magic)
	binary.BigEndian.PutUint32(f[4:], uint32(len(f)-frameHeader))
	binary.BigEndian.PutUint64(f[8:], gen)
	binary.BigEndian.PutUint64(f[16:], prev)
	crc := crc32.Update(crc32.Checksum(f[:24], castagnoli), castagnoli, f[frameHeader:])
	binary.BigEndian.PutUint32(f[24:], crc)
	return dst, magic == journalMagicZ
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
//
// frame must be the one frameOf built last.
func (j *journal) write(frame []byte, at int64, sync bool) (int64, error) {
	start := at / journalPage * journalPage
	n := (at - start + int64(len(frame)) + journalPage - 1) / journalPage * journalPage
	if int64(cap(j.wbuf)) < n {
		j.wbuf = make([]byte, 0, n)
	}
	buf := j.wbuf[:0]
	if n > journalKeep {
		j.wbuf = nil
	}
	if start == j.off/journalPage*journalPage {
		buf = append(buf, j.tail...)
	}
	buf = append(buf, make([]byte, at-start-int64(len(buf)))...)
	buf = append(buf, frame...)
	end := start + int64(len(buf))
	buf = buf[:n]
	clear(buf[end-start:]) // zeros to the end of the page
	if _, err := j.f.WriteAt(buf, start); err != nil {
		return 0, err
	}
	j.grown += j.growth
	j.growth = 0
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
	j.grown, j.growth = 0, 0
	j.gen++
	_ = unix.Fadvise(int(j.f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

func (j *journal) close() error { return j.f.Close() }

// readFrames returns the ops of the chain of frames of generation gen
// from offset 0 on, stopping at the first frame that is torn, has a bad
// CRC, belongs to another generation or does not follow its predecessor;
// and where they end. size is the journal's size.
func readFrames(r io.ReaderAt, size int64, gen uint64) (frames [][]jop, end int64, err error) {
	fr := frameReader{r: r, size: size, gen: gen, left: (journalInflate - 1) * size}
	defer fr.close()
	for {
		ops, next, err := fr.read(end, end)
		if err == nil && ops == nil && end%journalPage != 0 {
			// Not right after its predecessor: at the next page boundary?
			ops, next, err = fr.read(end, (end+journalPage-1)/journalPage*journalPage)
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

// frameReader reads the frames of one generation (readFrames).
type frameReader struct {
	r    io.ReaderAt
	size int64
	gen  uint64
	// left is how much more than they take in the file the frames still
	// to read may decode to (journalInflate): more was not written by
	// this code.
	left int64
	dec  *zstd.Decoder // made at the first compressed frame
	zbuf []byte        // a compressed payload as stored
}

func (fr *frameReader) close() {
	if fr.dec != nil {
		fr.dec.Close()
	}
}

// read reads the frame at off, which must follow a frame ending at prev;
// nil ops if there is none.
func (fr *frameReader) read(prev, off int64) ([]jop, int64, error) {
	var hdr [frameHeader]byte
	if off+frameHeader > fr.size {
		return nil, 0, nil
	}
	if _, err := fr.r.ReadAt(hdr[:], off); err != nil {
		return nil, 0, nil // short file: a torn end
	}
	n := int64(binary.BigEndian.Uint32(hdr[4:]))
	magic := binary.BigEndian.Uint32(hdr[0:])
	if magic != journalMagic && magic != journalMagicZ || binary.BigEndian.Uint64(hdr[8:]) != fr.gen ||
		binary.BigEndian.Uint64(hdr[16:]) != uint64(prev) || off+frameHeader+n > fr.size {
		return nil, 0, nil
	}
	var payload []byte
	if magic == journalMagicZ {
		if int64(cap(fr.zbuf)) < n {
			fr.zbuf = make([]byte, n)
		}
		payload = fr.zbuf[:n]
	} else {
		payload = make([]byte, n) // the ops point into it
	}
	if _, err := fr.r.ReadAt(payload, off+frameHeader); err != nil {
		return nil, 0, nil
	}
	crc := crc32.Update(crc32.Checksum(hdr[:24], castagnoli), castagnoli, payload)
	if crc != binary.BigEndian.Uint32(hdr[24:]) {
		return nil, 0, nil
	}
	// A frame with a good CRC that does not decompress or decode was
	// written by a different build: refuse rather than guess.
	if magic == journalMagicZ {
		var err error
		if payload, err = fr.inflate(payload); err != nil {
			return nil, 0, fmt.Errorf("%w: journal frame at %d: zstd: %v", ErrCorrupt, off, err)
		}
	}
	ops, err := decodeOps(payload)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: journal frame at %d: %v", ErrCorrupt, off, err)
	}
	if ops == nil {
		ops = []jop{} // an empty frame is still a frame
	}
	return ops, off + frameHeader + n, nil
}

// inflate decompresses the payload of a compressed frame into a new buffer
// of the size its zstd header gives, which must be within fr.left.
func (fr *frameReader) inflate(z []byte) ([]byte, error) {
	var h zstd.Header
	if err := h.Decode(z); err != nil {
		return nil, err
	}
	limit := fr.left + int64(len(z))
	if !h.HasFCS || h.FrameContentSize > uint64(limit) {
		return nil, fmt.Errorf("content size %d (given: %v) over the %d bytes the generation may still decode to",
			h.FrameContentSize, h.HasFCS, limit)
	}
	if fr.dec == nil {
		limit := uint64(max(fr.left+fr.size, 1)) // no frame is larger than the file
		var err error
		fr.dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(limit),
			zstd.WithDecoderMaxWindow(max(limit, zstd.MinWindowSize)), zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			return nil, err
		}
	}
	// At most cap bytes (WithDecodeAllCapLimit): what the header says.
	out, err := fr.dec.DecodeAll(z, make([]byte, 0, h.FrameContentSize))
	if err != nil {
		return nil, err
	}
	fr.left -= int64(len(out) - len(z))
	return out, nil
}
