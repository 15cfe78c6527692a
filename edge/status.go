package edge

import (
	"time"

	"github.com/edgegw/gateway/uplink"
)

// Status is what the status page, /status.json and the fleet heartbeat show.
type Status struct {
	Gateway     string         `json:"gateway"`
	Version     string         `json:"version"`
	Commit      string         `json:"commit"`
	Started     time.Time      `json:"started"`
	Boot        uint64         `json:"boot"`
	Ready       bool           `json:"ready"`
	Streams     []StreamStatus `json:"streams"`
	Quarantined int64          `json:"quarantined"`
	FileBytes   int64          `json:"file_bytes"`
	LiveBytes   int64          `json:"live_bytes"`
}

// StreamStatus is one stream's backlog and uplink state.
type StreamStatus struct {
	Name          string    `json:"name"`
	Priority      int       `json:"priority"`
	Depth         int64     `json:"depth"`
	Bytes         int64     `json:"bytes"`
	OldestAgeSec  float64   `json:"oldest_age_seconds"`
	NextSeq       uint64    `json:"next_seq"`
	AckedSeq      uint64    `json:"acked_seq"`
	Dropped       uint64    `json:"dropped"`
	UplinkOnline  bool      `json:"uplink_online"`
	UplinkSince   time.Time `json:"uplink_since,omitzero"`
	UplinkError   string    `json:"uplink_error,omitempty"`
	Sent          uint64    `json:"sent"`
	Duplicates    uint64    `json:"duplicates"`
	LastLatencyMS float64   `json:"last_receipt_latency_ms"`
}

// Status returns a snapshot of the gateway.
func (g *Gateway) Status() Status {
	g.mu.Lock()
	db, pipe, cfg, ready := g.db, g.pipe, g.cfg, g.ready
	g.mu.Unlock()
	s := Status{Gateway: cfg.Gateway.ID, Version: g.build.Version, Commit: g.build.Commit, Started: g.start, Ready: ready}
	if db == nil {
		return s
	}
	st := db.Stats()
	s.Boot, s.Quarantined, s.FileBytes, s.LiveBytes = st.Boot, st.Quarantined, st.FileSize, st.LiveBytes
	up := map[string]uplink.StreamState{}
	if pipe != nil && pipe.up != nil {
		for _, u := range pipe.up.Streams() {
			up[u.Stream] = u
		}
	}
	for _, ss := range st.Streams {
		u := up[ss.Config.Name]
		s.Streams = append(s.Streams, StreamStatus{
			Name: ss.Config.Name, Priority: ss.Config.Priority, Depth: ss.Depth, Bytes: ss.Bytes,
			OldestAgeSec: ss.OldestAge.Seconds(), NextSeq: ss.NextSeq, AckedSeq: ss.AckedSeq, Dropped: ss.Drops.Total(),
			UplinkOnline: u.Connected, UplinkSince: u.Since, UplinkError: u.LastError, Sent: u.Sent,
			Duplicates: u.Duplicates, LastLatencyMS: float64(u.LastReceiptLatency) / 1e6,
		})
	}
	return s
}
