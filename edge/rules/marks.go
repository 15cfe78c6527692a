package rules

import (
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"time"

	"github.com/edgegw/gateway/event"
)

// matches reports whether e is one of the events r sees. Sources may be
// shell patterns ("dock3-*").
func (r *compiled) matches(e *event.Event) bool {
	m := &r.Match
	if len(m.Streams) > 0 && !contains(m.Streams, e.Stream) {
		return false
	}
	if len(m.Kinds) > 0 && !contains(m.Kinds, e.Kind) {
		return false
	}
	if len(m.Sources) > 0 {
		ok := false
		for _, p := range m.Sources {
			if p == e.Source {
				ok = true
				break
			}
			if hit, _ := path.Match(p, e.Source); hit {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, v := range r.vars {
		if got, _ := e.Attrs[v.name].(string); got != v.want {
			return false
		}
	}
	return true
}

// Mark is an open downsample window, as stored so that a crash cannot lose
// it silently: a window whose mark is found at start was lost (its
// readings were not stored, its summary was not written) and is reported
// as a gap of reason rule-window-lost.
type Mark struct {
	Rule   string    `json:"rule"`
	Source string    `json:"source"`
	Metric string    `json:"metric"`
	Stream string    `json:"stream"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// Count is how many readings the window held when the mark was
	// stored: a lower bound of those lost.
	Count uint64 `json:"count"`
}

// MarksKey is the key the marks are stored under (in the caller's Store).
const MarksKey = "rules/windows"

// EncodeMarks is the stored form of marks.
func EncodeMarks(ms []Mark) []byte {
	b, _ := json.Marshal(ms) // plain structs: cannot fail
	return b
}

// DecodeMarks reads stored marks; empty input is none.
func DecodeMarks(b []byte) ([]Mark, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var ms []Mark
	if err := json.Unmarshal(b, &ms); err != nil {
		return nil, fmt.Errorf("rules: stored window marks: %w", err)
	}
	return ms, nil
}

// Marks are the committed open windows.
func (s *Set) Marks() []Mark {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.marksLocked(nil)
}

// MarksWith are the committed open windows and those o opens (the marks to
// store before o's commit).
func (s *Set) MarksWith(o *Outcome) []Mark {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.marksLocked(o)
}

func (s *Set) marksLocked(o *Outcome) []Mark {
	ws := map[wkey]window{}
	for k, w := range s.wins {
		ws[k] = w
	}
	if o != nil {
		for k, w := range o.wins {
			if w != nil {
				ws[k] = *w
			} // a window o closes keeps its mark until o is stored
		}
	}
	out := make([]Mark, 0, len(ws))
	for k, w := range ws {
		out = append(out, Mark{Rule: s.rules[k.rule].Name, Source: k.source, Metric: k.metric, Stream: w.stream, From: w.from, To: w.to, Count: w.count})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		return a.Metric < b.Metric
	})
	return out
}

// LostWindows are the gap events for marks found at start: each says the
// rule, source and metric, and the window's time range as from/to (unix
// seconds) with count the readings it is known to have held (at least 1).
func LostWindows(ms []Mark, at time.Time) []*event.Event {
	var out []*event.Event
	for _, m := range ms {
		from, to := uint64(max(m.From.Unix(), 0)), uint64(max(m.To.Unix(), 0))
		if to < from {
			to = from
		}
		n := min(max(m.Count, 1), to-from+1)
		e, err := event.NewGap(m.Stream, m.Source, event.Gap{From: from, To: to, Count: n, Reason: ReasonLost}, at)
		if err != nil {
			continue
		}
		e.Attrs["rule"] = m.Rule
		e.Attrs["metric"] = m.Metric
		out = append(out, e)
	}
	return out
}
