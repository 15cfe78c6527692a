package rules

import (
	"encoding/json"
	"fmt"
	"time"
)

// FireState is a rule's firing state for one source, as stored so that a
// restart (a van's ignition) neither restarts a for: stretch nor forgets a
// cooldown. It applies to the rule of the same name, condition and for:
// only (Key).
type FireState struct {
	Key     string    `json:"key"`
	Source  string    `json:"source"`
	Since   time.Time `json:"since,omitzero"`
	Fired   bool      `json:"fired,omitempty"`
	Last    time.Time `json:"last,omitzero"`
	Peak    float64   `json:"peak,omitempty"`
	HasPeak bool      `json:"has_peak,omitempty"`
}

// FireKey is the key under which the states are stored (in the caller's
// store, like the window marks).
const FireKey = "rules/fire"

// stateKey identifies a rule's state: its name, condition and for:.
func (r *compiled) stateKey() string {
	return fmt.Sprintf("%s\x00%s\x00%d", r.Name, r.When, r.For)
}

// FireStates are the committed firing states of the rules that keep one
// (for: or cooldown).
func (s *Set) FireStates() []FireState {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]FireState, 0, len(s.fire))
	for k, st := range s.fire {
		out = append(out, FireState{Key: s.rules[k.rule].stateKey(), Source: k.source,
			Since: st.since, Fired: st.fired, Last: st.last, Peak: st.peak, HasPeak: st.hasPeak})
	}
	return out
}

// restore takes in stored states for the rules they belong to.
func (s *Set) restore(states []FireState) {
	byKey := map[string][]int{}
	for i, r := range s.rules {
		if r.fires() && (r.For > 0 || r.Cooldown > 0) {
			byKey[r.stateKey()] = append(byKey[r.stateKey()], i)
		}
	}
	for _, st := range states {
		for _, i := range byKey[st.Key] {
			s.fire[fkey{i, st.Source}] = fireState{since: st.Since, fired: st.Fired, last: st.Last, peak: st.Peak, hasPeak: st.HasPeak}
		}
	}
}

// EncodeFireStates is the stored form of states.
func EncodeFireStates(states []FireState) []byte {
	b, _ := json.Marshal(states) // plain structs: cannot fail
	return b
}

// DecodeFireStates reads stored states; empty input is none.
func DecodeFireStates(b []byte) ([]FireState, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var out []FireState
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("rules: stored firing states: %w", err)
	}
	return out, nil
}
