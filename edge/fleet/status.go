package fleet

import (
	"encoding/json"
	"errors"
	"time"
)

// Status is a gateway's heartbeat on the status topic (JSON, message key =
// gateway ID). Gateways send one every fleet.heartbeat, at every config
// state change and, with Stopping set, when they stop.
type Status struct {
	Gateway          string         `json:"gateway"`
	Time             time.Time      `json:"time"`
	HeartbeatSeconds float64        `json:"heartbeat_seconds"`
	Stopping         bool           `json:"stopping,omitempty"`
	Build            Build          `json:"build"`
	Started          time.Time      `json:"started"`
	Boot             uint64         `json:"boot"`
	Ready            bool           `json:"ready"`
	Config           ConfigStatus   `json:"config"`
	Uplink           string         `json:"uplink"` // online, partial, offline, starting or stopped
	Drops            uint64         `json:"drops"`  // events dropped by the buffer's limits, all streams
	Quarantined      int64          `json:"quarantined"`
	Streams          []StreamStatus `json:"streams"`
	Firmware         *Firmware      `json:"firmware,omitempty"` // nil: over-the-air firmware is off (no launcher)
}

// Firmware is the firmware part of a heartbeat: the release running and
// where the latest one stands.
type Firmware struct {
	Platform string   `json:"platform"` // linux/arm64, linux/arm/v7, ...
	Running  uint64   `json:"running"`  // the release version running; 0: the packaged binary
	Groups   []string `json:"groups,omitempty"`
	// State is idle, downloading, pending, probation, committed,
	// rolled-back or refused; Version the release it is about, Reason why
	// (for rolled-back and refused).
	State   string    `json:"state"`
	Version uint64    `json:"version,omitempty"`
	Build   string    `json:"build,omitempty"`
	Percent float64   `json:"percent,omitempty"` // downloading: the share of the payload on disk
	Bytes   int64     `json:"bytes,omitempty"`   // downloading or pending: payload bytes downloaded
	Delta   bool      `json:"delta,omitempty"`   // the payload is a delta against the running binary
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at,omitzero"`
}

// Build identifies the gateway binary.
type Build struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	Go      string `json:"go,omitempty"`
	Target  string `json:"target,omitempty"`
}

// StreamStatus is one stream's backlog and uplink.
type StreamStatus struct {
	Name             string  `json:"name"`
	Backlog          int64   `json:"backlog"` // events buffered, not yet acknowledged by Pulsar
	Bytes            int64   `json:"bytes"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
	Dropped          uint64  `json:"dropped"`
	UplinkOnline     bool    `json:"uplink_online"`
	UplinkError      string  `json:"uplink_error,omitempty"`
}

// The overall uplink states of Status.Uplink.
const (
	UplinkOnline   = "online"   // every stream's producer is connected
	UplinkPartial  = "partial"  // some are
	UplinkOffline  = "offline"  // none is
	UplinkStarting = "starting" // no forwarder runs yet
	UplinkStopped  = "stopped"  // the gateway is stopping
)

// MaxStatusSize bounds a heartbeat.
const MaxStatusSize = 1 << 20

// DecodeStatus decodes a heartbeat.
func DecodeStatus(b []byte) (*Status, error) {
	if len(b) > MaxStatusSize {
		return nil, errors.New("status message too large")
	}
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	if s.Gateway == "" {
		return nil, errors.New("status message without gateway")
	}
	return &s, nil
}

// Online reports whether the gateway counts as online at now: it did not
// say it was stopping, and its last heartbeat is younger than three
// heartbeat intervals.
func (s *Status) Online(now time.Time) bool {
	if s.Stopping || s.HeartbeatSeconds <= 0 {
		return false
	}
	return now.Sub(s.Time) < 3*time.Duration(s.HeartbeatSeconds*float64(time.Second))
}
