package buffer

import "errors"

// Sentinel errors. Test for them with errors.Is; most are wrapped with detail.
var (
	// ErrClosed is returned by every method called after Close, and by calls
	// that were still waiting to be queued when Close began.
	ErrClosed = errors.New("buffer: closed")

	// ErrReadOnly is returned by writing methods of a store opened with
	// Options.ReadOnly.
	ErrReadOnly = errors.New("buffer: opened read-only")

	// ErrUnknownStream is returned when a stream has not been created with
	// ConfigureStream.
	ErrUnknownStream = errors.New("buffer: unknown stream")

	// ErrStreamFull is returned by Append when the stream's MaxEvents or
	// MaxBytes would be exceeded and its policy is PolicyRejectNew, or when a
	// single call is larger than the stream's limits even with the stream
	// emptied. Nothing of the call was written.
	ErrStreamFull = errors.New("buffer: stream full")

	// ErrDiskBudget is returned by Append when Options.DiskBudget would be
	// exceeded and no eligible drop-oldest stream has data to evict, or when
	// the file would grow beyond Options.MaxFileSize. Nothing of the call was
	// written.
	ErrDiskBudget = errors.New("buffer: disk budget exhausted")

	// ErrDiskFull is returned when the file system has no space left for the
	// commit (ENOSPC). Nothing of the call was written and what was stored
	// before is intact; retry once space is available.
	ErrDiskFull = errors.New("buffer: file system full")

	// ErrFormatVersion is returned by Open when the file was written by a
	// newer format than this build understands (a downgrade). The file is left
	// untouched, not moved aside.
	ErrFormatVersion = errors.New("buffer: unsupported format version")

	// ErrLocked is returned by Open when another process holds the file and
	// Options.LockTimeout expired. The file is left untouched.
	ErrLocked = errors.New("buffer: store is locked by another process")

	// ErrCorrupt is returned when the file failed a consistency check or
	// bbolt panicked on it. Open moves such a file aside (unless
	// Options.NoMoveAside); an open DB that hits it refuses further writes
	// and leaves a marker so that the next Open moves the file aside.
	ErrCorrupt = errors.New("buffer: store is corrupt")

	// ErrReplayPending is returned by a read-only Open when the journal
	// beside the file (path.journal) holds commits not yet moved into it,
	// as a killed writer leaves it: the file alone would show a past state.
	// Open it for writing once (that replays the journal). Both files are
	// left untouched.
	ErrReplayPending = errors.New("buffer: journal holds commits not yet in the file")

	// ErrInvalidAck is returned by Ack for a seq that was never assigned.
	ErrInvalidAck = errors.New("buffer: ack beyond last assigned seq")

	// ErrNotFound is returned by GetMeta and QuarantineReplay for a missing
	// key or ID.
	ErrNotFound = errors.New("buffer: not found")

	// ErrInvalid is returned for invalid arguments: options, stream configs,
	// empty keys, oversized events.
	ErrInvalid = errors.New("buffer: invalid argument")
)
