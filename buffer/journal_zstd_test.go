package buffer

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// Compressed journal frames (format 6).

// batch is n events of size random lowercase letters: one commit whose
// frame compresses (to about 60%).
func batch(n, size int) []Encoder {
	out := make([]Encoder, n)
	for i := range out {
		out[i] = letters(size)
	}
	return out
}

// frameMagics returns the magic of each frame of the journal's current
// generation, and where each starts.
func frameMagics(t *testing.T, path string) (magics []uint32, starts []int64) {
	t.Helper()
	raw, err := os.ReadFile(path + journalSuffix)
	if err != nil {
		t.Fatal(err)
	}
	prev := int64(0)
	for _, end := range frameBounds(t, path) {
		// Where the previous one ended, or at the next page.
		start := prev
		if !isMagic(binary.BigEndian.Uint32(raw[start:])) || binary.BigEndian.Uint64(raw[start+16:]) != uint64(prev) {
			start = (prev + journalPage - 1) / journalPage * journalPage
		}
		magics, starts = append(magics, binary.BigEndian.Uint32(raw[start:])), append(starts, start)
		prev = end
	}
	return magics, starts
}

// A busy commit (20 events of 212 bytes: 5 KB of ops) is stored
// compressed, in one page instead of two; one event is not compressed.
// Both kinds, mixed in one generation, are replayed in order after a crash.
func TestJournalCompressedReplay(t *testing.T) {
	db, path := openTest(t, journalOpts())
	mustConfigure(t, db, StreamConfig{Name: "s"})
	moves := db.Stats().Moves
	mustAppend(t, db, "s", letters(212))
	mustAppend(t, db, "s", batch(20, 212)...)
	mustAppend(t, db, "s", batch(20, 212)...)
	mustAppend(t, db, "s", letters(212))
	mustAppend(t, db, "s", batch(25, 212)...)
	if err := db.Ack("s", 10); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, db, "s", batch(3, 212)...)
	if st := db.Stats(); st.Moves != moves {
		t.Fatal("a move: the test needs the commits in the journal")
	}
	z, plain := uint32(journalMagicZ), uint32(journalMagic)
	got, starts := frameMagics(t, path)
	if want := []uint32{plain, z, z, plain, z, plain, z}; !reflect.DeepEqual(got, want) {
		t.Fatalf("frame magics %x, want %x", got, want)
	}
	// 20 events: 5 KB of ops, two pages; compressed, one.
	if n := frameBounds(t, path)[2] - starts[2]; n > journalPage {
		t.Fatalf("a compressed 20-event frame takes %d bytes", n)
	}
	want := readAll(t, db, "s")
	if len(want) != 1+20+20+1+25+3-10 {
		t.Fatalf("%d entries", len(want))
	}
	crash(t, db)
	db2 := openAt(t, path, journalOpts())
	if err := db2.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	compareEntriesExact(t, readAll(t, db2, "s"), want)
	if first := mustAppend(t, db2, "s", data("next")); first != 71 {
		t.Fatalf("next seq %d, want 71", first)
	}
}

// A compressed frame torn or damaged anywhere ends the replay there, as an
// uncompressed one does (TestJournalDamagedFrame): the CRC covers the
// stored bytes, and nothing is decompressed before it is checked.
func TestJournalDamagedCompressedFrame(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(raw []byte, start, end int64) []byte
	}{
		{"torn", func(raw []byte, start, end int64) []byte { return raw[:end-7] }},
		{"torn in the zstd header", func(raw []byte, start, end int64) []byte { return raw[:start+frameHeader+3] }},
		{"payload end", func(raw []byte, start, end int64) []byte { raw[end-3] ^= 0x40; return raw }},
		{"zstd header", func(raw []byte, start, end int64) []byte { raw[start+frameHeader+5] ^= 0x01; return raw }},
		{"magic", func(raw []byte, start, end int64) []byte { raw[start+3] = 0x31; return raw }}, // now "EGJ1"
		{"length", func(raw []byte, start, end int64) []byte { raw[start+7] ^= 0x01; return raw }},
		{"zeroed", func(raw []byte, start, end int64) []byte { clear(raw[start:end]); return raw }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, path := openTest(t, journalOpts())
			mustConfigure(t, db, StreamConfig{Name: "s"})
			mustAppend(t, db, "s", batch(20, 212)...)
			mustAppend(t, db, "s", batch(20, 212)...)
			want := readAll(t, db, "s")
			mustAppend(t, db, "s", batch(20, 212)...)
			mustAppend(t, db, "s", batch(20, 212)...)
			ends := frameBounds(t, path)
			m, starts := frameMagics(t, path)
			if len(m) != 4 || m[2] != journalMagicZ {
				t.Fatalf("frames %x: the third is not compressed", m)
			}
			crash(t, db)
			raw, err := os.ReadFile(path + journalSuffix)
			if err != nil {
				t.Fatal(err)
			}
			raw = tc.damage(raw, starts[2], ends[2])
			if err := os.WriteFile(path+journalSuffix, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			db2 := openAt(t, path, journalOpts())
			if err := db2.Check(context.Background()); err != nil {
				t.Fatal(err)
			}
			compareEntriesExact(t, readAll(t, db2, "s"), want)
			if first := mustAppend(t, db2, "s", data("five")); first != 41 {
				t.Fatalf("next seq %d, want 41", first)
			}
		})
	}
}

// testEncoder is an encoder like the journal's.
func testEncoder(t testing.TB) *zstd.Encoder {
	t.Helper()
	j := &journal{}
	if j.encoder() == nil {
		t.Fatal("no encoder")
	}
	return j.zenc
}

// zframe is a frame whose payload is stored as given, marked compressed,
// with a good CRC.
func zframe(gen, prev uint64, payload []byte) []byte {
	f := make([]byte, frameHeader, frameHeader+len(payload))
	f = append(f, payload...)
	binary.BigEndian.PutUint32(f[0:], journalMagicZ)
	binary.BigEndian.PutUint32(f[4:], uint32(len(payload)))
	binary.BigEndian.PutUint64(f[8:], gen)
	binary.BigEndian.PutUint64(f[16:], prev)
	crc := crc32.Update(crc32.Checksum(f[:24], castagnoli), castagnoli, f[frameHeader:])
	binary.BigEndian.PutUint32(f[24:], crc)
	return f
}

// readFrames reads uncompressed and compressed frames of one chain in
// order, and stops at the end of the chain as for uncompressed ones.
func TestReadFramesCompressed(t *testing.T) {
	enc := testEncoder(t)
	op := func(s string) []jop {
		return []jop{{bkt: jData, name: "s", key: seqKey(1), val: []byte(strings.Repeat(s, 600))}}
	}
	var file []byte
	end := 0 // where the last frame ended
	add := func(gen uint64, s string, z bool) {
		var e *zstd.Encoder
		if z {
			e = enc
		}
		var compressed bool
		file, compressed = appendFrame(file, gen, uint64(end), appendOps(nil, op(s)), e)
		end = len(file)
		if compressed != z {
			t.Fatalf("frame %q compressed: %v", s, compressed)
		}
	}
	add(7, "a", false)
	add(7, "b", true)
	file = append(file, make([]byte, (len(file)+journalPage-1)/journalPage*journalPage-len(file))...)
	add(7, "c", true) // linked to b's end, at the next page
	add(7, "d", false)
	add(7, "e", true)
	add(6, "f", true) // another generation: the end
	frames, _, err := readFrames(bytes.NewReader(file), int64(len(file)), 7)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ops := range frames {
		if len(ops) != 1 || len(ops[0].val) != 600 || ops[0].name != "s" || keySeq(ops[0].key) != 1 {
			t.Fatalf("ops %+v", ops)
		}
		got = append(got, string(ops[0].val[:1]))
	}
	if want := []string{"a", "b", "c", "d", "e"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("replayed %q, want %q", got, want)
	}
}

// A compressed frame with a good CRC whose payload is not what this code
// writes (not zstd, a truncated zstd frame, no content size, more than the
// bound, not ops) was written by something else: ErrCorrupt, as for ops
// that do not decode, not the end of the journal.
func TestReadFramesBadCompressedPayload(t *testing.T) {
	enc := testEncoder(t)
	good := enc.EncodeAll(appendOps(nil, []jop{{bkt: jData, name: "s", key: seqKey(1), val: bytes.Repeat([]byte("abcdefgh"), 200)}}), nil)
	// Under 256 bytes and not single-segment: no content size.
	multi, _ := zstd.NewWriter(nil, zstd.WithSingleSegment(false))
	noSize := multi.EncodeAll(appendOps(nil, []jop{{bkt: jData, name: "s", key: seqKey(1), val: bytes.Repeat([]byte("abcdefgh"), 20)}}), nil)
	var h zstd.Header
	if h.Decode(noSize) != nil || h.HasFCS {
		t.Fatal("the frame has a content size")
	}
	// 1 MiB of ops: within the bound of a 1 MiB journal, not of 64 KiB.
	big := enc.EncodeAll(appendOps(nil, []jop{{bkt: jData, name: "s", key: seqKey(1), val: make([]byte, 1<<20)}}), nil)
	first := frameOf(7, 0, []jop{{bkt: jMeta, key: []byte("k"), val: []byte("v")}})
	for _, tc := range []struct {
		name    string
		payload []byte
		size    int64  // of the journal
		why     string // in the error; "" for none
	}{
		{"good", good, 64 << 10, ""},
		{"not zstd", bytes.Repeat([]byte("not zstd "), 80), 64 << 10, "zstd: invalid input"},
		{"truncated zstd", good[:len(good)-10], 64 << 10, "zstd: unexpected EOF"},
		{"no content size", noSize, 64 << 10, "(given: false)"},
		{"zstd, not ops", enc.EncodeAll(bytes.Repeat([]byte{9}, 1000), nil), 64 << 10, "malformed op"},
		{"within the bound", big, 1 << 20, ""},
		{"over the bound", big, 64 << 10, "over the"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := append(bytes.Clone(first), zframe(7, uint64(len(first)), tc.payload)...)
			file = append(file, make([]byte, tc.size-int64(len(file)))...)
			frames, _, err := readFrames(bytes.NewReader(file), tc.size, 7)
			switch {
			case tc.why == "" && (err != nil || len(frames) != 2):
				t.Fatalf("readFrames: %d frames, %v", len(frames), err)
			case tc.why != "" && (!errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.why)):
				t.Fatalf("readFrames: %d frames, %v; want ErrCorrupt: %s", len(frames), err, tc.why)
			}
		})
	}
}

// Open of a store whose journal holds such a frame refuses with ErrCorrupt
// (and moves the store aside unless NoMoveAside, as for any corrupt file).
func TestJournalBadCompressedFrameCorrupt(t *testing.T) {
	db, path := openTest(t, journalOpts())
	mustConfigure(t, db, StreamConfig{Name: "s"})
	mustAppend(t, db, "s", batch(20, 212)...)
	mustAppend(t, db, "s", batch(20, 212)...)
	ends := frameBounds(t, path)
	crash(t, db)
	raw, err := os.ReadFile(path + journalSuffix)
	if err != nil {
		t.Fatal(err)
	}
	// The second frame's payload replaced by bytes that are not zstd, same
	// length, CRC recomputed.
	_, starts := frameMagics(t, path)
	f := raw[starts[1]:ends[1]]
	copy(f[frameHeader:], bytes.Repeat([]byte{0x5a}, len(f)-frameHeader))
	binary.BigEndian.PutUint32(f[24:], crc32.Update(crc32.Checksum(f[:24], castagnoli), castagnoli, f[frameHeader:]))
	if err := os.WriteFile(path+journalSuffix, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, &Options{NoMoveAside: true, Logger: quietLogger()}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open: %v, want ErrCorrupt", err)
	}
	t.Cleanup(func() { _ = os.Remove(path) }) // openTest's cleanup must not check it
}

// Building a frame allocates nothing once the journal's buffers have grown.
func TestFrameOfAllocs(t *testing.T) {
	j := &journal{size: 4 << 20, gen: 1}
	var ops []jop
	for i := 0; i < 20; i++ {
		v, _ := letters(212)(uint64(i))
		ops = append(ops, jop{bkt: jData, name: "s", key: seqKey(uint64(i)), val: v})
	}
	j.frameOf(0, ops)
	if binary.BigEndian.Uint32(j.frame) != journalMagicZ {
		t.Fatal("not compressed")
	}
	if n := testing.AllocsPerRun(100, func() { j.frameOf(0, ops) }); n > 0 {
		t.Fatalf("%.1f allocations per frame", n)
	}
}

// A store left by the format-5 code with commits in its journal
// (testdata/format5-journal.db.gz and .db.journal.gz, made by that code:
// streams s and k, k keyed; a move, then more commits, then a kill, so
// the journal holds the next generation's frames, uncompressed, some of
// them big enough that this build would compress them, and stale frames
// of the moved one after them) is upgraded to format 6 and its journal
// replayed: every commit in it, in order.
func TestFormat5JournalUpgrade(t *testing.T) {
	path := openFixture(t, "format5-journal.db")
	unpack(t, filepath.Join("testdata", "format5-journal.db.journal.gz"), path+journalSuffix)
	if v, _ := fileFormat(t, nil, path); v != 5 {
		t.Fatalf("fixture has format %d", v)
	}
	raw, err := os.ReadFile(path + journalSuffix)
	if err != nil {
		t.Fatal(err)
	}
	magics, starts := frameMagics(t, path)
	big := false
	for i, m := range magics {
		if m != journalMagic {
			t.Fatalf("format-5 frame %d has magic %x", i, m)
		}
		big = big || int(binary.BigEndian.Uint32(raw[starts[i]+4:])) >= compressMin
	}
	if len(magics) != 7 || !big {
		t.Fatalf("fixture journal: %d frames, one worth compressing: %v", len(magics), big)
	}
	if _, err := Open(path, &Options{ReadOnly: true}); !errors.Is(err, ErrReplayPending) {
		t.Fatalf("read-only open: %v, want ErrReplayPending", err)
	}
	db := openAt(t, path, journalOpts())
	if v, _ := fileFormat(t, db, path); v != 6 {
		t.Fatalf("format %d after the upgrade", v)
	}
	if err := db.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	es := readAll(t, db, "s")
	if len(es) != 93 || es[0].Seq != 6 || es[len(es)-1].Seq != 98 {
		t.Fatalf("s: %d entries, %v", len(es), seqs(es))
	}
	for i, e := range es {
		want, _ := letters(len(e.Data))(e.Seq)
		if e.Seq != uint64(6+i) || len(e.Data) != 200 && len(e.Data) != 212 || !bytes.Equal(e.Data, want) {
			t.Fatalf("s entry %d: seq %d, %d bytes %.20q", i, e.Seq, len(e.Data), e.Data)
		}
	}
	if st := streamStats(t, db, "k"); st.NextSeq != 4 || st.Dups != 1 || st.DedupKeys != 3 {
		t.Fatalf("k: %+v", st)
	}
	wantAppended(t, mustAppendRecords(t, db, "k", Record{Enc: data("x"), Key: []byte("k1"), CheckDup: true},
		Record{Enc: data("x"), Key: []byte("k3"), CheckDup: true}), Appended{2, true}, Appended{4, false})
	// The upgraded store writes compressed frames.
	mustAppend(t, db, "s", batch(20, 212)...)
	if m, _ := frameMagics(t, path); m[len(m)-1] != journalMagicZ {
		t.Fatalf("frames after the upgrade: %x", m)
	}
	want := readAll(t, db, "s")
	crash(t, db)
	db2 := openAt(t, path, journalOpts())
	compareEntriesExact(t, readAll(t, db2, "s"), want)
}

// unpack gunzips src to dst.
func unpack(t *testing.T, src, dst string) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}
