package harness

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// StreamStatus is the part of the gateway's /status.json tests look at.
type StreamStatus struct {
	Name     string `json:"name"`
	Depth    int64  `json:"depth"`
	NextSeq  uint64 `json:"next_seq"`
	AckedSeq uint64 `json:"acked_seq"`
	Dropped  uint64 `json:"dropped"`

	Sent       uint64 `json:"sent"`
	Acked      uint64 `json:"acked"`
	Duplicates uint64 `json:"duplicates"`
	InFlight   int    `json:"in_flight"`
}

// Status is the gateway's /status.json.
type Status struct {
	Gateway     string         `json:"gateway"`
	Boot        uint64         `json:"boot"`
	Ready       bool           `json:"ready"`
	Quarantined int64          `json:"quarantined"`
	Streams     []StreamStatus `json:"streams"`
}

// Status fetches /status.json; ok is false when the gateway does not answer.
func (g *Gateway) Status() (Status, bool) {
	var s Status
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + g.HTTP + "/status.json")
	if err != nil {
		return s, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&s) != nil {
		return s, false
	}
	return s, true
}

// Stream returns the status of one stream.
func (s Status) Stream(name string) (StreamStatus, bool) {
	for _, st := range s.Streams {
		if st.Name == name {
			return st, true
		}
	}
	return StreamStatus{}, false
}

// Drained reports whether every stream's buffer is empty.
func (g *Gateway) Drained() bool {
	s, ok := g.Status()
	if !ok {
		return false
	}
	for _, st := range s.Streams {
		if st.Depth != 0 {
			return false
		}
	}
	return true
}

// Metric returns the sum of every sample of a Prometheus metric family on the
// gateway's /metrics whose labels contain all of match (e.g. `result="duplicate"`).
func (g *Gateway) Metric(name string, match ...string) float64 {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + g.HTTP + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	total := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, m := range match {
			ok = ok && strings.Contains(line, m)
		}
		if !ok {
			continue
		}
		if f := strings.Fields(line); len(f) >= 2 {
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				total += v
			}
		}
	}
	return total
}
