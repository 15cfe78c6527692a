package firmware

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Slot names a binary: SlotA or SlotB under the firmware directory, or
// SlotPackaged, the binary the package installed (the launcher's own).
type Slot string

// The slots.
const (
	SlotPackaged Slot = ""
	SlotA        Slot = "a"
	SlotB        Slot = "b"
)

// other is the slot an install writes while s runs.
func (s Slot) other() Slot {
	if s == SlotA {
		return SlotB
	}
	return SlotA
}

// Release is a binary in a slot.
type Release struct {
	Slot    Slot   `json:"slot"`
	Version uint64 `json:"version"` // the manifest's; 0: the packaged binary
	Build   string `json:"build,omitempty"`
}

// Trial is a release installed and waiting for (Pending) or in (Trial)
// probation.
type Trial struct {
	Release
	// UplinkRequired: the version that installed it had a healthy uplink,
	// so the new one must reach Pulsar too to pass probation.
	UplinkRequired bool      `json:"uplink_required"`
	Attempts       int       `json:"attempts,omitempty"` // starts in probation, counted before each start
	Started        time.Time `json:"started,omitzero"`
}

// The firmware states a gateway reports (Decision.State and the heartbeat).
const (
	StateIdle        = "idle"        // running its release; nothing under way
	StateDownloading = "downloading" // a release's parts are arriving
	StatePending     = "pending"     // installed in the other slot; the gateway restarts into it
	StateProbation   = "probation"   // the new release runs and is proving itself
	StateCommitted   = "committed"   // the new release passed probation and is the one to run
	StateRolledBack  = "rolled-back" // the new release failed probation; the previous one runs again
	StateRefused     = "refused"     // the release was refused (reason says why); nothing changed
)

// Decision is the latest outcome of a release.
type Decision struct {
	State   string    `json:"state"`
	Version uint64    `json:"version,omitempty"`
	Build   string    `json:"build,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at,omitzero"`
}

// State is the firmware directory's state file, shared by the launcher
// (which starts, commits and rolls back) and the gateway (which installs).
type State struct {
	Format   int      `json:"format"`
	Current  Release  `json:"current"`
	Previous *Release `json:"previous,omitempty"`
	Pending  *Trial   `json:"pending,omitempty"`
	Trial    *Trial   `json:"trial,omitempty"`
	// Tried is the highest version installed (whatever became of it): a
	// release not newer is stale.
	Tried uint64   `json:"tried"`
	Last  Decision `json:"last"`
	// Packaged is the SHA-256 of the packaged binary the launcher last
	// saw: when a package upgrade replaces it, the packaged binary runs
	// again (Tried stays, so older releases stay refused).
	Packaged []byte `json:"packaged_sha256,omitempty"`
}

const stateFormat = 1

// Dir is a gateway's firmware directory: the slots, the state file, the
// downloads.
//
//	slot-a, slot-b   the binaries
//	state.json       State, replaced atomically
//	state.lock       flock(2) around every read-modify-write of state.json
//	download/<id>/   a payload being downloaded (Download)
type Dir string

// SlotPath is the binary of slot s; packaged is the path of the packaged
// binary.
func (d Dir) SlotPath(s Slot, packaged string) string {
	if s == SlotPackaged {
		return packaged
	}
	return filepath.Join(string(d), "slot-"+string(s))
}

func (d Dir) statePath() string { return filepath.Join(string(d), "state.json") }

// Load reads the state; a missing file is the zero state (the packaged
// binary runs, nothing was tried).
func (d Dir) Load() (State, error) {
	var st State
	b, err := os.ReadFile(d.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return State{Format: stateFormat}, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("%s: %w", d.statePath(), err)
	}
	if st.Format != stateFormat {
		return State{}, fmt.Errorf("%s: format %d, want %d", d.statePath(), st.Format, stateFormat)
	}
	return st, nil
}

// Update changes the state under the directory's lock: fn gets the current
// state; when it returns nil, the state is written atomically (temporary
// file, fsync, rename, directory fsync).
func (d Dir) Update(fn func(*State) error) (State, error) {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return State{}, err
	}
	lf, err := os.OpenFile(filepath.Join(string(d), "state.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return State{}, err
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return State{}, err
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing unlocks too
	st, err := d.Load()
	if err != nil {
		return State{}, err
	}
	if err := fn(&st); err != nil {
		return st, err
	}
	st.Format = stateFormat
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return st, err
	}
	return st, writeFileAtomic(d.statePath(), append(b, '\n'), 0o600)
}
