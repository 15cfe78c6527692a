package edge

import (
	"regexp"
	"time"

	"github.com/edgegw/gateway/buffer"
	"github.com/edgegw/gateway/edge/fleet"
	"github.com/edgegw/gateway/uplink"
)

// Status is what the status page, /status.json and the fleet heartbeat show.
// It holds no secrets (error texts are passed through redact). To extend it,
// add a section as a field of a type of its own (like UplinkStatus and
// ConfigStatus) and fill it in Status with one line.
type Status struct {
	Gateway     string         `json:"gateway"`
	Version     string         `json:"version"`
	Commit      string         `json:"commit"`
	Started     time.Time      `json:"started"`
	Boot        uint64         `json:"boot"`
	Ready       bool           `json:"ready"`
	Uplink      UplinkStatus   `json:"uplink"`
	Config      ConfigStatus   `json:"config"`
	Streams     []StreamStatus `json:"streams"`
	Quarantined int64          `json:"quarantined"`
	Dropped     uint64         `json:"dropped"` // all streams, all reasons
	FileBytes   int64          `json:"file_bytes"`
	LiveBytes   int64          `json:"live_bytes"`
	Rules       []RuleStatus   `json:"rules,omitempty"`
	// Firmware is over-the-air firmware's state; nil when it is off (no
	// launcher, or fleet config off).
	Firmware *fleet.Firmware `json:"firmware,omitempty"`
}

// RuleStatus is one running rule's counts and its last firing.
type RuleStatus struct {
	Name      string    `json:"name"`
	Evaluated uint64    `json:"evaluated"`
	Fired     uint64    `json:"fired"`
	Errors    uint64    `json:"errors"`
	Dropped   uint64    `json:"dropped"`
	LastFired time.Time `json:"last_fired,omitzero"`
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
	Drops         Drops     `json:"drops"`
	UplinkOnline  bool      `json:"uplink_online"`
	UplinkSince   time.Time `json:"uplink_since,omitzero"`
	UplinkError   string    `json:"uplink_error,omitempty"`
	Sent          uint64    `json:"sent"`
	Acked         uint64    `json:"acked"`
	Duplicates    uint64    `json:"duplicates"`
	InFlight      int       `json:"in_flight"`
	LastLatencyMS float64   `json:"last_receipt_latency_ms"`
}

// Drops are a stream's dropped events by reason.
type Drops struct {
	Overflow uint64 `json:"overflow"`
	TTL      uint64 `json:"ttl"`
	Budget   uint64 `json:"budget"`
}

// UplinkStatus sums up the uplink over all streams.
type UplinkStatus struct {
	// Online: every stream's Pulsar producer is open.
	Online bool `json:"online"`
	// Since is when the uplink became what it is: online since the last
	// stream connected; offline since the first stream went down (the
	// gateway's start when no stream has connected yet).
	Since     time.Time `json:"since,omitzero"`
	Connected int       `json:"streams_connected"`
	Streams   int       `json:"streams"`
	LastError string    `json:"last_error,omitempty"`
}

// ConfigStatus is the running config's version and state, as fleet config
// last set them (setConfigState); empty for a local config file. Reason,
// Bundle and Key are fleet config's latest decision, as `gatewayctl status`
// shows it: why a bundle was refused or rolled back, and which one (its
// version and config topic key), which may differ from the running one.
type ConfigStatus struct {
	Version string    `json:"version,omitempty"`
	State   string    `json:"state,omitempty"`
	Since   time.Time `json:"since,omitzero"`
	Reason  string    `json:"reason,omitempty"`
	Bundle  uint64    `json:"bundle_version,omitempty"`
	Key     string    `json:"bundle_key,omitempty"`
	// Replays counts publications of the applied bundle's exact bytes
	// again (ignored).
	Replays uint64 `json:"replays,omitempty"`
}

// Status returns a snapshot of the gateway.
func (g *Gateway) Status() Status {
	g.mu.Lock()
	db, pipe, cfg := g.db, g.pipe, g.cfg
	g.mu.Unlock()
	ready, _ := g.readiness()
	s := Status{Gateway: cfg.Gateway.ID, Version: g.build.Version, Commit: g.build.Commit, Started: g.start, Ready: ready}
	s.Config = g.metrics.configStatus()
	g.addFleetDecision(&s.Config)
	var up []uplink.StreamState
	if pipe != nil && pipe.up != nil {
		up = pipe.up.Streams()
	}
	if db != nil {
		s.addBuffer(db.Stats(), up)
	}
	s.Uplink = summariseUplink(s.Streams, g.start)
	if pipe != nil && pipe.sink != nil {
		for _, r := range pipe.sink.rules.Load().Rules() {
			c := r.Counters
			s.Rules = append(s.Rules, RuleStatus{Name: r.Name, Evaluated: c.Evaluated.Load(), Fired: c.Fired.Load(),
				Errors: c.Errors.Load(), Dropped: c.Dropped.Load(), LastFired: c.LastFired()})
		}
	}
	g.mu.Lock()
	o := g.ota
	g.mu.Unlock()
	if o != nil {
		s.Firmware = o.status()
	}
	return s
}

// addBuffer fills in the store's figures and each stream's, with its
// forwarder's state from up.
func (s *Status) addBuffer(st buffer.Stats, up []uplink.StreamState) {
	s.Boot, s.Quarantined, s.FileBytes, s.LiveBytes = st.Boot, st.Quarantined, st.FileSize, st.LiveBytes
	byName := make(map[string]uplink.StreamState, len(up))
	for _, u := range up {
		byName[u.Stream] = u
	}
	for _, ss := range st.Streams {
		u := byName[ss.Config.Name]
		s.Dropped += ss.Drops.Total()
		s.Streams = append(s.Streams, StreamStatus{
			Name: ss.Config.Name, Priority: ss.Config.Priority, Depth: ss.Depth, Bytes: ss.Bytes,
			OldestAgeSec: ss.OldestAge.Seconds(), NextSeq: ss.NextSeq, AckedSeq: ss.AckedSeq, Dropped: ss.Drops.Total(),
			Drops:        Drops{Overflow: ss.Drops.Overflow, TTL: ss.Drops.TTL, Budget: ss.Drops.Budget},
			UplinkOnline: u.Connected, UplinkSince: u.Since, UplinkError: redact(u.LastError), Sent: u.Sent,
			Acked: u.Acked, Duplicates: u.Duplicates, InFlight: u.InFlight,
			LastLatencyMS: float64(u.LastReceiptLatency) / 1e6,
		})
	}
}

// addFleetDecision adds fleet config's latest decision to c.
func (g *Gateway) addFleetDecision(c *ConfigStatus) {
	g.mu.Lock()
	f := g.fleet
	g.mu.Unlock()
	if f == nil || f.agent == nil {
		return
	}
	d := f.agent.Status()
	c.Reason, c.Bundle, c.Key, c.Replays = redact(d.Reason), d.Bundle, d.Key, f.agent.Replays()
}

func summariseUplink(streams []StreamStatus, started time.Time) UplinkStatus {
	u := UplinkStatus{Streams: len(streams)}
	var onSince, offSince time.Time
	for _, s := range streams {
		if s.UplinkOnline {
			u.Connected++
			if s.UplinkSince.After(onSince) {
				onSince = s.UplinkSince
			}
			continue
		}
		if !s.UplinkSince.IsZero() && (offSince.IsZero() || s.UplinkSince.Before(offSince)) {
			offSince = s.UplinkSince
		}
		if u.LastError == "" {
			u.LastError = s.UplinkError
		}
	}
	u.Online = u.Streams > 0 && u.Connected == u.Streams
	switch {
	case u.Online:
		u.Since = onSince
	case !offSince.IsZero():
		u.Since = offSince
	default:
		u.Since = started
	}
	return u
}

var (
	// userinfo in URLs: scheme://user:pass@host
	reURLUser = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@`)
	// key=value and key: value pairs whose key names a secret
	reSecretKV = regexp.MustCompile(`(?i)\b(token|password|passwd|secret|api[_-]?key|authorization)(["']?\s*[=:]\s*)("[^"]*"|'[^']*'|bearer\s+\S+|\S+)`)
)

// redact removes credentials that an error text might carry (URL userinfo,
// token=…, password: …) before it is shown or sent.
func redact(s string) string {
	if s == "" {
		return s
	}
	s = reURLUser.ReplaceAllString(s, "${1}***@")
	return reSecretKV.ReplaceAllString(s, "${1}${2}***")
}
