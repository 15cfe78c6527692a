// Package cutfs is a FUSE file system for power-cut tests: a loopback of
// a directory that keeps every write in memory until the file is synced
// (fsync or fdatasync), so that Cut can drop what was never synced, as a
// power cut drops what was only in the page cache. It is the model of
// Jepsen's LazyFS, in Go, for the project's tests.
//
// What it models: file data. A write becomes visible to every reader at
// once (the processes see one page cache) and durable only when a sync of
// that file returns; Cut throws away every unsynced write, and the file
// reads back as it was at its last sync, its size included. What it does
// not model: metadata (create, rename, unlink, truncate and fallocate go
// to the backing directory at once, so they survive a cut as if they had
// been synced), torn or reordered writes within a sync, and mmap writes
// (files mapped writable see the backing file). A process that runs on
// it must be killed (SIGKILL) before Cut, and the file system remounted
// after it (Remount), so that nothing the kernel cached is read again.
//
// Mounting needs /dev/fuse and root (it mounts directly, without the
// fusermount helper).
package cutfs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

const pageSize = 4096

// FS is a mounted cut file system.
type FS struct {
	Dir     string // the mount point: run the program under test here
	backing string

	// syncing is held (read) by every sync while it writes the backing
	// file, and (write) by Snapshot, so that a snapshot sees whole syncs.
	syncing sync.RWMutex

	mu     sync.Mutex
	files  map[uint64]*pending // by backing inode number
	server *fuse.Server
	writes int64 // bytes written through the mount, synced or not
	synced int64 // bytes made durable by syncs
	cuts   int
}

// Mount mounts a cut file system at dir over the directory backing.
func Mount(dir, backing string) (*FS, error) {
	f := &FS{Dir: dir, backing: backing, files: map[uint64]*pending{}}
	if err := f.mount(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *FS) mount() error {
	root, err := fs.NewLoopbackRoot(f.backing)
	if err != nil {
		return err
	}
	// No caching of names or attributes: a size must come from pending.
	zero := time.Duration(0)
	srv, err := fs.Mount(f.Dir, &node{LoopbackNode: root.(*fs.LoopbackNode), fs: f}, &fs.Options{
		EntryTimeout: &zero,
		AttrTimeout:  &zero,
		MountOptions: fuse.MountOptions{DirectMount: true, FsName: "cutfs", Name: "cutfs"},
	})
	if err != nil {
		return fmt.Errorf("cutfs: mount %s: %w", f.Dir, err)
	}
	f.mu.Lock()
	f.server = srv
	f.mu.Unlock()
	return nil
}

// Backing is the directory the file system stores into: after a Cut, its
// files hold exactly what was synced. A test reads them there rather than
// through the mount when it runs the server itself: a page fault on a
// FUSE file that the faulting process serves can deadlock the Go runtime
// (bbolt reads through mmap).
func (f *FS) Backing() string { return f.backing }

// Cut drops every write that no sync made durable, as a power cut would.
// Kill the processes writing on the file system first.
func (f *FS) Cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.files {
		p.mu.Lock()
		p.pages, p.size = nil, -1
		p.mu.Unlock()
	}
	f.cuts++
}

// Snapshot copies the backing directory's regular files (not its
// subdirectories) into dst, between two syncs: what a power cut at this
// moment would leave, while the processes on the file system keep running.
// An in-process test can open the copy as the next boot would.
func (f *FS) Snapshot(dst string) error {
	f.syncing.Lock()
	defer f.syncing.Unlock()
	ents, err := os.ReadDir(f.backing)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(f.backing, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// Remount unmounts and mounts again, so that no page the kernel cached of
// the files before a Cut is read after it.
func (f *FS) Remount() error {
	if err := f.Unmount(); err != nil {
		return err
	}
	return f.mount()
}

// Unmount unmounts the file system; the backing directory holds what was
// synced (call Cut first to drop the rest, or sync it).
func (f *FS) Unmount() error {
	f.mu.Lock()
	srv := f.server
	f.server = nil
	f.mu.Unlock()
	if srv == nil {
		return nil
	}
	var err error
	for range 50 { // EBUSY while the kernel still closes a killed process's files
		if err = srv.Unmount(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("cutfs: unmount %s: %w", f.Dir, err)
}

// Unsynced is the number of bytes written and not yet synced, over every
// file (in whole pages).
func (f *FS) Unsynced() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, p := range f.files {
		p.mu.Lock()
		n += int64(len(p.pages)) * pageSize
		p.mu.Unlock()
	}
	return n
}

// Written is the bytes written through the mount and the bytes made durable
// by syncs so far (in whole pages: what a flash device would be sent).
func (f *FS) Written() (written, synced int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes, f.synced
}

func (f *FS) pendingFor(ino uint64) *pending {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.files[ino]
	if p == nil {
		p = &pending{fs: f, size: -1}
		f.files[ino] = p
	}
	return p
}

// pending is a file's unsynced writes: whole pages as they would read now,
// and the size the file has with them.
type pending struct {
	fs    *FS
	mu    sync.Mutex
	pages map[int64][]byte // page index -> content (pageSize bytes)
	size  int64            // -1: the backing file's
}

// sizeLocked is the file's size as readers see it.
func (p *pending) sizeLocked(fd int) (int64, error) {
	if p.size >= 0 {
		return p.size, nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, err
	}
	return st.Size, nil
}

// pageLocked is page i as readers see it (a copy when it is not pending).
func (p *pending) pageLocked(fd int, i int64) ([]byte, error) {
	if b, ok := p.pages[i]; ok {
		return b, nil
	}
	b := make([]byte, pageSize)
	n, err := unix.Pread(fd, b, i*pageSize)
	if err != nil {
		return nil, err
	}
	clear(b[n:])
	return b, nil
}

func (p *pending) write(fd int, data []byte, off int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	size, err := p.sizeLocked(fd)
	if err != nil {
		return err
	}
	if p.pages == nil {
		p.pages = map[int64][]byte{}
	}
	end := off + int64(len(data))
	for i := off / pageSize; i*pageSize < end; i++ {
		b, err := p.pageLocked(fd, i)
		if err != nil {
			return err
		}
		if _, ok := p.pages[i]; !ok && i*pageSize >= size {
			clear(b) // past the end: zeros, whatever the backing file holds
		}
		lo := max(off, i*pageSize)
		hi := min(end, (i+1)*pageSize)
		copy(b[lo-i*pageSize:hi-i*pageSize], data[lo-off:hi-off])
		p.pages[i] = b
	}
	p.size = max(size, end)
	p.fs.mu.Lock()
	p.fs.writes += int64(len(data))
	p.fs.mu.Unlock()
	return nil
}

func (p *pending) read(fd int, dest []byte, off int64) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	size, err := p.sizeLocked(fd)
	if err != nil {
		return 0, err
	}
	if off >= size {
		return 0, nil
	}
	end := min(off+int64(len(dest)), size)
	if len(p.pages) == 0 {
		return unix.Pread(fd, dest[:end-off], off)
	}
	for i := off / pageSize; i*pageSize < end; i++ {
		b, err := p.pageLocked(fd, i)
		if err != nil {
			return 0, err
		}
		lo := max(off, i*pageSize)
		hi := min(end, (i+1)*pageSize)
		copy(dest[lo-off:hi-off], b[lo-i*pageSize:hi-i*pageSize])
	}
	return int(end - off), nil
}

// sync writes the pending pages to the backing file and syncs it.
func (p *pending) sync(fd int) error {
	p.fs.syncing.RLock()
	defer p.fs.syncing.RUnlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.size >= 0 {
		size, err := p.sizeLocked(fd)
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		if st.Size < size {
			if err := unix.Ftruncate(fd, size); err != nil {
				return err
			}
		}
		var n int64
		for i, b := range p.pages {
			k := min(int64(pageSize), size-i*pageSize)
			if k <= 0 {
				continue
			}
			if _, err := unix.Pwrite(fd, b[:k], i*pageSize); err != nil {
				return err
			}
			n += pageSize
		}
		p.fs.mu.Lock()
		p.fs.synced += n
		p.fs.mu.Unlock()
	}
	if err := unix.Fdatasync(fd); err != nil {
		return err
	}
	p.pages, p.size = nil, -1
	return nil
}

// truncate applies a new size to the backing file at once (metadata) and
// drops the pending bytes past it.
func (p *pending) truncate(fd int, size int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := unix.Ftruncate(fd, size); err != nil {
		return err
	}
	for i, b := range p.pages {
		switch {
		case i*pageSize >= size:
			delete(p.pages, i)
		case (i+1)*pageSize > size:
			clear(b[size-i*pageSize:])
		}
	}
	if len(p.pages) == 0 {
		p.size = -1
	} else {
		p.size = size
	}
	return nil
}

// grow records an allocation that extends the file (fallocate without
// KEEP_SIZE), already applied to the backing file.
func (p *pending) grow(end int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.size >= 0 {
		p.size = max(p.size, end)
	}
}

// patchSize sets a stat's size to the one readers see.
func (p *pending) patchSize(size *uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.size >= 0 {
		*size = uint64(p.size)
	}
}

// node is a loopback node whose files keep their writes pending.
type node struct {
	*fs.LoopbackNode
	fs *FS
}

var (
	_ fs.NodeWrapChilder = (*node)(nil)
	_ fs.NodeOpener      = (*node)(nil)
	_ fs.NodeCreater     = (*node)(nil)
	_ fs.NodeGetattrer   = (*node)(nil)
	_ fs.NodeSetattrer   = (*node)(nil)
	_ fs.NodeStatxer     = (*node)(nil)
)

func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &node{LoopbackNode: ops.(*fs.LoopbackNode), fs: n.fs}
}

func (n *node) pending() *pending { return n.fs.pendingFor(n.StableAttr().Ino) }

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fl, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return n.wrap(fh), fl, 0
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	ch, fh, fl, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return ch, ch.Operations().(*node).wrap(fh), fl, 0
}

func (n *node) wrap(fh fs.FileHandle) fs.FileHandle {
	lf := fh.(*fs.LoopbackFile)
	fd, _ := lf.PassthroughFd()
	return &file{LoopbackFile: lf, fd: fd, p: n.pending()}
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if errno := n.LoopbackNode.Getattr(ctx, f, out); errno != 0 {
		return errno
	}
	if n.IsDir() {
		return 0
	}
	n.pending().patchSize(&out.Size)
	return 0
}

func (n *node) Statx(ctx context.Context, f fs.FileHandle, flags, mask uint32, out *fuse.StatxOut) syscall.Errno {
	if errno := n.LoopbackNode.Statx(ctx, f, flags, mask, out); errno != 0 {
		return errno
	}
	if !n.IsDir() {
		n.pending().patchSize(&out.Size)
	}
	return 0
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if sz, ok := in.GetSize(); ok && !n.IsDir() {
		fd, err := unix.Open(n.fs.backing+"/"+n.Path(n.Root()), unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fs.ToErrno(err)
		}
		err = n.pending().truncate(fd, int64(sz))
		unix.Close(fd)
		if err != nil {
			return fs.ToErrno(err)
		}
		in.Valid &^= fuse.FATTR_SIZE
	}
	if errno := n.LoopbackNode.Setattr(ctx, f, in, out); errno != 0 {
		return errno
	}
	n.pending().patchSize(&out.Size)
	return 0
}

// file is an open file of a node: reads and writes go through its
// pending pages.
type file struct {
	*fs.LoopbackFile
	fd int
	p  *pending
}

var (
	_ fs.FileReader    = (*file)(nil)
	_ fs.FileWriter    = (*file)(nil)
	_ fs.FileFsyncer   = (*file)(nil)
	_ fs.FileGetattrer = (*file)(nil)
	_ fs.FileSetattrer = (*file)(nil)
	_ fs.FileAllocater = (*file)(nil)
)

// PassthroughFd: never let the kernel write to the backing file itself.
func (f *file) PassthroughFd() (int, bool) { return 0, false }

func (f *file) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := f.p.read(f.fd, dest, off)
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if err := f.p.write(f.fd, data, off); err != nil {
		return 0, fs.ToErrno(err)
	}
	return uint32(len(data)), 0
}

// Writev is Write of the slices one after the other.
func (f *file) Writev(ctx context.Context, data [][]byte, off int64) (uint32, syscall.Errno) {
	var n uint32
	for _, d := range data {
		w, errno := f.Write(ctx, d, off+int64(n))
		n += w
		if errno != 0 {
			return n, errno
		}
	}
	return n, 0
}

func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return fs.ToErrno(f.p.sync(f.fd))
}

// Flush (close) does not sync: the kernel would not either.
func (f *file) Flush(ctx context.Context) syscall.Errno { return 0 }

func (f *file) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	if errno := f.LoopbackFile.Getattr(ctx, out); errno != 0 {
		return errno
	}
	f.p.patchSize(&out.Size)
	return 0
}

func (f *file) Statx(ctx context.Context, flags, mask uint32, out *fuse.StatxOut) syscall.Errno {
	if errno := f.LoopbackFile.Statx(ctx, flags, mask, out); errno != 0 {
		return errno
	}
	f.p.patchSize(&out.Size)
	return 0
}

func (f *file) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if sz, ok := in.GetSize(); ok {
		if err := f.p.truncate(f.fd, int64(sz)); err != nil {
			return fs.ToErrno(err)
		}
		in.Valid &^= fuse.FATTR_SIZE
	}
	if errno := f.LoopbackFile.Setattr(ctx, in, out); errno != 0 {
		return errno
	}
	f.p.patchSize(&out.Size)
	return 0
}

func (f *file) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	if errno := f.LoopbackFile.Allocate(ctx, off, size, mode); errno != 0 {
		return errno
	}
	if mode&unix.FALLOC_FL_KEEP_SIZE == 0 {
		f.p.grow(int64(off + size))
	}
	return 0
}

// Lseek answers SEEK_DATA and SEEK_HOLE as if the file had no holes.
func (f *file) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	f.p.mu.Lock()
	size, err := f.p.sizeLocked(f.fd)
	f.p.mu.Unlock()
	if err != nil {
		return 0, fs.ToErrno(err)
	}
	switch whence {
	case unix.SEEK_DATA:
		if int64(off) >= size {
			return 0, syscall.ENXIO
		}
		return off, 0
	case unix.SEEK_HOLE:
		return uint64(size), 0
	}
	return f.LoopbackFile.Lseek(ctx, off, whence)
}

// Need skips t where a cut file system cannot be mounted: without
// /dev/fuse, or not as root (it mounts without the fusermount helper).
func Need(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("power-cut tests need FUSE: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("power-cut tests mount a FUSE file system directly: run them as root")
	}
}
