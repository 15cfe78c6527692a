package edge

import (
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/edgegw/gateway/buffer"
	"github.com/edgegw/gateway/event"
)

// recentScans is how many scans the status page lists.
const recentScans = 20

// historyLen is how many per-minute backlog samples are kept per stream.
const historyLen = 60

// ScanNote is one committed scan, as the status page lists it. Its strings
// come from devices: hostile input, escaped when rendered, and clipped.
type ScanNote struct {
	Barcode   string    `json:"barcode"`
	Symbology string    `json:"symbology,omitempty"`
	Source    string    `json:"source"`
	Stream    string    `json:"stream"`
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Received  time.Time `json:"received"`
}

// maxNoteLen bounds each string of a ScanNote, in runes.
const maxNoteLen = 64

func scanNoteOf(e *event.Event) ScanNote {
	return ScanNote{
		Barcode: clip(attrString(e.Attrs["barcode"])), Symbology: clip(attrString(e.Attrs["symbology"])),
		Source: clip(e.Source), Stream: e.Stream, Seq: e.Seq, Time: e.Time, Received: e.Received,
	}
}

func attrString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case []byte:
		return fmt.Sprintf("%x", v)
	default:
		return fmt.Sprint(v)
	}
}

// clip shortens s to maxNoteLen runes (with "…") and makes it valid UTF-8.
func clip(s string) string {
	if !utf8.ValidString(s) {
		s = string([]rune(s)) // invalid bytes become U+FFFD
	}
	if utf8.RuneCountInString(s) <= maxNoteLen {
		return s
	}
	return string([]rune(s)[:maxNoteLen-1]) + "…"
}

// scanRing keeps the latest scans.
type scanRing struct {
	mu   sync.Mutex
	buf  []ScanNote
	next int // where the next note goes
	full bool
}

func newScanRing(n int) *scanRing { return &scanRing{buf: make([]ScanNote, n)} }

func (r *scanRing) add(n ScanNote) {
	r.mu.Lock()
	r.buf[r.next] = n
	r.next = (r.next + 1) % len(r.buf)
	r.full = r.full || r.next == 0
	r.mu.Unlock()
}

// list returns the scans, newest first.
func (r *scanRing) list() []ScanNote {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.buf)
	}
	out := make([]ScanNote, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}

// backlogSample is one stream's backlog at one time.
type backlogSample struct {
	At    time.Time
	Depth int64
	Bytes int64
}

// backlogHistory keeps per-minute backlog samples of each stream.
type backlogHistory struct {
	mu      sync.Mutex
	size    int
	streams map[string][]backlogSample // oldest first, at most size
}

func newBacklogHistory(size int) *backlogHistory {
	return &backlogHistory{size: size, streams: map[string][]backlogSample{}}
}

// sample records every stream of st at time at; streams no longer in st
// are forgotten.
func (h *backlogHistory) sample(at time.Time, st buffer.Stats) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := make(map[string]bool, len(st.Streams))
	for _, s := range st.Streams {
		name := s.Config.Name
		seen[name] = true
		ss := append(h.streams[name], backlogSample{At: at, Depth: s.Depth, Bytes: s.Bytes})
		if len(ss) > h.size {
			ss = append(ss[:0], ss[len(ss)-h.size:]...)
		}
		h.streams[name] = ss
	}
	for name := range h.streams {
		if !seen[name] {
			delete(h.streams, name)
		}
	}
}

// get returns a copy of stream's samples, oldest first.
func (h *backlogHistory) get(stream string) []backlogSample {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]backlogSample(nil), h.streams[stream]...)
}

// sampleBacklog adds one sample of every stream to the history.
func (g *Gateway) sampleBacklog() {
	g.mu.Lock()
	db := g.db
	g.mu.Unlock()
	if db != nil {
		g.metrics.history.sample(g.now(), db.Stats())
	}
}

// startSampler samples the backlog now and then every sampleEvery until
// stopSampler; it runs once per Gateway.
func (g *Gateway) startSampler() {
	m := g.metrics
	m.samplerOnce.Do(func() {
		stop, done := make(chan struct{}), make(chan struct{})
		m.cfgMu.Lock()
		m.samplerStop, m.samplerDone = stop, done
		m.cfgMu.Unlock()
		g.sampleBacklog()
		go func() {
			defer close(done)
			t := time.NewTicker(sampleEvery)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					g.sampleBacklog()
				}
			}
		}()
	})
}

// stopSampler stops the sampler and waits for it; idempotent.
func (g *Gateway) stopSampler() {
	m := g.metrics
	m.cfgMu.Lock()
	stop, done := m.samplerStop, m.samplerDone
	m.samplerStop = nil
	m.cfgMu.Unlock()
	if stop == nil {
		return
	}
	close(stop)
	<-done
}
