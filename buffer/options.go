package buffer

import (
	"fmt"
	"log/slog"
	"time"
)

// Options configures Open. A zero field means its documented default.
type Options struct {
	// CommitWindow is the longest a queued write waits for others to join
	// its transaction. Default 2ms. A commit starts when the window ends or
	// MaxBatch records are queued, and also early, once every write call in
	// progress has joined the batch and as many calls as joined the previous
	// commit have (or none arrived for 100µs): waiting longer could only add
	// latency, since nobody else is about to join. While calls keep coming
	// in during commits (a batch starts with one queued while the previous
	// commit was written), that early start is held back until half the
	// previous commit's duration has passed since it ended (within the
	// window): more records per commit, so fewer flash writes per event, for
	// at most half a commit time more latency.
	CommitWindow time.Duration

	// FillWindow is the longest a queued write may wait, at high rates,
	// for its commit's journal frame to fill a flash page. A journaled
	// commit writes one whole page however little it holds, so at 2,000
	// events/s a commit every CommitWindow writes a page for every five or
	// six events. When records arrive fast enough that their own bytes
	// would fill a page within FillWindow (about 1,700 events/s of 220-byte
	// events at the default), a batch is held beyond CommitWindow until its
	// frame is estimated to fill the page (from the previous frame's bytes
	// per record), at most FillWindow after its first write was queued.
	// Below that rate nothing is held: a page would not fill in time, and
	// the latency would buy nothing. Default 10ms; negative disables.
	FillWindow time.Duration

	// MaxBatch is the number of records after which a commit starts without
	// waiting for the window. Default 1024. A single larger Append is still
	// committed whole, in its own transaction.
	MaxBatch int

	// DiskBudget bounds the payload bytes held across all streams, gap
	// events aside (a few per stream at most). Default 0, unlimited. When an Append would exceed it, entries are evicted from the
	// drop-oldest streams whose priority is not above the appending stream's,
	// lowest priority first (ties by name); if that is not enough, Append
	// fails with ErrDiskBudget. Reject-new streams are never evicted.
	DiskBudget int64

	// MaxFileSize is a hard bound on the file size in bytes (bbolt's MaxSize);
	// commits that would grow the file beyond it fail with ErrDiskBudget.
	// Default 0, unlimited.
	MaxFileSize int64

	// JournalSize is the size of the ingest journal, a preallocated file
	// beside the store (path + ".journal"). A group commit that only adds
	// and removes entries (appends, acks: nearly all of them) is made
	// durable by appending one frame to it and one fdatasync, a page or two
	// of flash, instead of a bbolt commit's handful of pages; its changes
	// are moved into the store file in one transaction later (MoveInterval,
	// or when the journal is half full) and replayed from the journal by
	// Open after a crash. Readers see journaled entries at once. Default 4
	// MiB; negative disables the journal (every commit goes to the file).
	// A file with a journal has format 6 (5 is upgraded); older builds refuse it.
	JournalSize int64

	// MoveInterval is the longest a journaled commit waits to be moved into
	// the store file. Longer means fewer, larger moves (fewer bytes written
	// per event: a move rewrites a handful of fixed pages, about 28 KB,
	// however little it moves) and more to replay after a crash (at most
	// JournalSize). Busy streams fill half the journal, and are moved,
	// sooner. Default 5m.
	MoveInterval time.Duration

	// QuarantineMax bounds the quarantine; the oldest item is dropped (and
	// counted in Stats.QuarantineDropped) to make room. Default 1000.
	QuarantineMax int

	// GapHistory bounds the gap records kept per stream for Gaps; the oldest
	// is dropped first. Drops that follow each other (same reason, nothing
	// delivered in between) within a minute are one record. Default 1000.
	GapHistory int

	// DedupWindow is how many keyed appends per stream AppendRecords
	// remembers for duplicate detection: the keys of the stream's last
	// DedupWindow keyed records (older ones are forgotten in the transaction
	// that adds new ones). Default 65536; negative disables remembering and
	// checking (zero means the default, as for every option). Each remembered
	// key costs about 25 bytes of file plus the key (not counted in
	// DiskBudget) and, once the stream has been checked since Open, about 35
	// bytes of memory. Lowering it prunes the excess at the stream's next
	// keyed append, in that one transaction.
	DedupWindow int

	// GapEncoder, when set, makes drops (overflow, TTL, budget, lost store)
	// also appear in the stream as gap events produced by this function, each
	// with its own new seq after the entries it reports. Consecutive drops of
	// a reason are reported by one gap event, written when a reader reaches
	// the end of the stream (Read) or when the drops stop following each
	// other; gap events are never dropped and do not count against the
	// limits (gaps.go has the details). It runs on the committer and must be
	// a pure function of its arguments; an error fails the transaction.
	// Default nil: gaps are only counted and recorded for Gaps.
	GapEncoder func(stream string, seq uint64, g Gap) ([]byte, error)

	// Now is the clock used for append times, TTL and ages. Default time.Now.
	Now func() time.Time

	// Logger receives the store's logs, with component=buffer. Default
	// slog.Default().
	Logger *slog.Logger

	// OnCommit, when set, is called after every successful write
	// transaction with the number of records it held and how long it took
	// from begin to the end of its sync: the figure that an SD card's write
	// latency shows in. It runs on the committer and must not block.
	OnCommit func(records int, took time.Duration)

	// SweepInterval is how often the background goroutine enforces MaxAge and
	// checks for automatic compaction. Default 1s.
	SweepInterval time.Duration

	// CompactRatio triggers automatic compaction when the file is more than
	// CompactRatio times the bytes bbolt has in use (and at least
	// CompactMinSize). Default 4; negative disables automatic compaction.
	CompactRatio float64

	// CompactMinSize is the file size below which automatic compaction never
	// runs. Default 32 MiB.
	CompactMinSize int64

	// LockTimeout is how long Open waits for another process's lock before
	// failing with ErrLocked. Default 1s.
	LockTimeout time.Duration

	// ReadOnly opens the file for inspection (field tool): shared lock, no
	// boot increment, no background goroutine, no move-aside; writes fail with
	// ErrReadOnly. Default false.
	ReadOnly bool

	// TimeSeededSeq makes a stream created in this store start its seqs at
	// the current Unix time in microseconds instead of 1. A gateway sets it:
	// downstream deduplication (Pulsar's, keyed by producer name and seq)
	// would otherwise silently drop every event of a store that was deleted
	// or replaced (a new SD card) and began again at 1. Stores replaced after
	// corruption always do this. Default false.
	TimeSeededSeq bool

	// NoMoveAside makes Open return ErrCorrupt instead of moving a bad file
	// aside and starting a fresh one. Default false.
	NoMoveAside bool

	// Storage experiments of BenchmarkFlashWrites (tests only): bbolt's
	// NoFreelistSync, the page size of a new file, and the commit pacing
	// (run): > 0 a fixed pace, < 0 none, 0 adaptive.
	noFreelistSync bool
	pageSize       int
	commitPace     time.Duration
}

// DefaultOptions are the options used when Open is passed nil.
var DefaultOptions = &Options{
	CommitWindow:   2 * time.Millisecond,
	FillWindow:     10 * time.Millisecond,
	MaxBatch:       1024,
	JournalSize:    4 << 20,
	MoveInterval:   5 * time.Minute,
	QuarantineMax:  1000,
	GapHistory:     1000,
	DedupWindow:    65536,
	SweepInterval:  time.Second,
	CompactRatio:   4,
	CompactMinSize: 32 << 20,
	LockTimeout:    time.Second,
}

// withDefaults returns a copy of o with zero fields set to their defaults.
func (o *Options) withDefaults() (Options, error) {
	var r Options
	if o != nil {
		r = *o
	}
	d := DefaultOptions
	if r.CommitWindow == 0 {
		r.CommitWindow = d.CommitWindow
	}
	if r.FillWindow == 0 {
		r.FillWindow = d.FillWindow
	}
	if r.MaxBatch == 0 {
		r.MaxBatch = d.MaxBatch
	}
	if r.JournalSize == 0 {
		r.JournalSize = d.JournalSize
	}
	if r.MoveInterval == 0 {
		r.MoveInterval = d.MoveInterval
	}
	if r.QuarantineMax == 0 {
		r.QuarantineMax = d.QuarantineMax
	}
	if r.GapHistory == 0 {
		r.GapHistory = d.GapHistory
	}
	if r.DedupWindow == 0 {
		r.DedupWindow = d.DedupWindow
	}
	if r.SweepInterval == 0 {
		r.SweepInterval = d.SweepInterval
	}
	if r.CompactRatio == 0 {
		r.CompactRatio = d.CompactRatio
	}
	if r.CompactMinSize == 0 {
		r.CompactMinSize = d.CompactMinSize
	}
	if r.LockTimeout == 0 {
		r.LockTimeout = d.LockTimeout
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	r.Logger = r.Logger.With("component", "buffer")
	if r.CommitWindow < 0 || r.MaxBatch < 0 || r.DiskBudget < 0 || r.MaxFileSize < 0 ||
		r.QuarantineMax < 0 || r.GapHistory < 0 || r.SweepInterval < 0 || r.LockTimeout < 0 || r.MoveInterval < 0 {
		return r, fmt.Errorf("%w: negative option", ErrInvalid)
	}
	if r.JournalSize > 0 && r.JournalSize < 64<<10 {
		return r, fmt.Errorf("%w: JournalSize %d below 64 KiB", ErrInvalid, r.JournalSize)
	}
	return r, nil
}

// Policy is what a stream does when an Append would exceed its limits.
type Policy string

const (
	// PolicyRejectNew fails the Append with ErrStreamFull; nothing is dropped.
	PolicyRejectNew Policy = "reject-new"
	// PolicyDropOldest drops the oldest entries to make room, recording a gap.
	PolicyDropOldest Policy = "drop-oldest"
)

// StreamConfig is a stream's identity and limits. Zero limits are unlimited.
type StreamConfig struct {
	Name      string        // 1..200 bytes, no NUL
	Priority  int           // higher = more important (evicted later)
	MaxBytes  int64         // payload bytes held; 0 = unlimited
	MaxEvents int64         // entries held; 0 = unlimited
	MaxAge    time.Duration // TTL from append time; 0 = forever
	Overflow  Policy        // "" means PolicyRejectNew
}

func (c *StreamConfig) validate() error {
	if c.Overflow == "" {
		c.Overflow = PolicyRejectNew
	}
	switch {
	case c.Name == "" || len(c.Name) > 200:
		return fmt.Errorf("%w: stream name must be 1..200 bytes", ErrInvalid)
	case c.MaxBytes < 0 || c.MaxEvents < 0 || c.MaxAge < 0:
		return fmt.Errorf("%w: stream %q: negative limit", ErrInvalid, c.Name)
	case c.Overflow != PolicyRejectNew && c.Overflow != PolicyDropOldest:
		return fmt.Errorf("%w: stream %q: unknown overflow policy %q", ErrInvalid, c.Name, c.Overflow)
	}
	for i := 0; i < len(c.Name); i++ {
		if c.Name[i] == 0 {
			return fmt.Errorf("%w: stream name contains NUL", ErrInvalid)
		}
	}
	return nil
}
