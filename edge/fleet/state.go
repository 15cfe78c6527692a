package fleet

import (
	"encoding/json"
	"fmt"
	"time"
)

// State is where a gateway stands with fleet config.
type State string

// The states reported in ConfigStatus.
const (
	StateLocal      State = "local"       // running the local file; no bundle applied
	StateProbation  State = "probation"   // a bundle was swapped in and is proving itself
	StateApplied    State = "applied"     // the bundle passed probation and is the last known good
	StateRejected   State = "rejected"    // the bundle was refused (Reason says why); the running config is unchanged
	StateRolledBack State = "rolled-back" // the bundle failed to start or lost the uplink; the previous config runs again
)

// Decision is the outcome of the latest bundle the gateway looked at.
type Decision struct {
	State  State     `json:"state"`
	Reason string    `json:"reason,omitempty"`
	Bundle uint64    `json:"bundle_version,omitempty"` // the bundle the state is about
	Key    string    `json:"bundle_key,omitempty"`     // its config topic key
	At     time.Time `json:"changed,omitzero"`
}

// ConfigStatus is the config part of a heartbeat: which bundle runs, and the
// latest decision (which may be about another bundle, e.g. one rejected).
type ConfigStatus struct {
	Version  uint64    `json:"version"` // the running bundle; 0: the local file
	Target   string    `json:"target,omitempty"`
	IssuedAt time.Time `json:"issued_at,omitzero"`
	KeyID    string    `json:"key_id,omitempty"`
	Decision
}

// MetaKey is the buffer metadata key under which a gateway keeps its fleet
// state (see record).
const MetaKey = "fleet/state"

// record is what the agent persists, as JSON, under MetaKey: the applied
// bundle (the last known good, as received, so that it can be verified
// again at start), the highest version applied or tried, the bundle in
// probation if any, the last bundle that failed and the last decision.
type record struct {
	Format     int      `json:"format"`
	Applied    []byte   `json:"applied,omitempty"`
	AppliedKey string   `json:"applied_key,omitempty"`
	HighWater  uint64   `json:"high_water"`
	Pending    *mark    `json:"pending,omitempty"`
	Failed     *mark    `json:"failed,omitempty"`
	Last       Decision `json:"last"`
}

// mark names one bundle and how often it was tried.
type mark struct {
	Version   uint64 `json:"version"`
	Signature []byte `json:"signature"`
	Attempts  int    `json:"attempts,omitempty"`
}

func (m *mark) is(b *Bundle) bool {
	return m != nil && b != nil && m.Version == b.Version && string(m.Signature) == string(b.Signature)
}

const recordFormat = 1

func decodeRecord(b []byte) (record, error) {
	var r record
	if len(b) == 0 {
		return r, nil
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return record{}, err
	}
	if r.Format != recordFormat {
		return record{}, fmt.Errorf("fleet state format %d, want %d", r.Format, recordFormat)
	}
	return r, nil
}

func (r *record) encode() []byte {
	r.Format = recordFormat
	b, _ := json.Marshal(r)
	return b
}
