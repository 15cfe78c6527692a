package gpio

import "time"

// transition is an accepted logical edge.
type transition struct {
	t     time.Time
	level bool      // logical level after the edge: true is a rising edge
	prev  time.Time // the previous accepted edge of the input; zero if none
}

// debouncer turns the samples of one input into accepted transitions. It is
// plain data, driven by one goroutine, and does no I/O.
//
// An edge less than window after the last accepted one is a bounce and is
// ignored. Because the level may then have settled on the other side
// (a press and release inside one window), in edge mode "both" the pin is
// read again at the end of a window that saw bounces, and a difference from
// the reported level is reported as a transition at that moment.
type debouncer struct {
	mode   edgeMode
	window time.Duration

	level   bool      // logical level last reported (or read at start)
	last    time.Time // last accepted transition; zero before the first
	bounced bool      // an edge was ignored in the current window
}

// verdict says what became of an edge.
type verdict int

const (
	accepted verdict = iota
	bounce           // inside the window after the last accepted edge
	glitch           // mode both: the level had not changed
	otherDir         // single-edge mode, polled: the edge went the other way
)

func (d *debouncer) inWindow(t time.Time) bool {
	return !d.last.IsZero() && t.Sub(d.last) < d.window
}

// edge handles a sample taken after the hardware (or the poller) saw an
// edge: level is the logical level read then, or, for a single-edge mode
// with edge detection, the level the edge leads to.
func (d *debouncer) edge(t time.Time, level bool) (transition, verdict) {
	if d.inWindow(t) {
		d.bounced = true
		return transition{}, bounce
	}
	switch {
	case d.mode == edgeBoth && level == d.level:
		// Two changes since the last sample: the pin is back where it was.
		return transition{}, glitch
	case d.mode == edgeRising && !level, d.mode == edgeFalling && level:
		// The other direction (seen by the poller): not reported.
		d.level = level
		return transition{}, otherDir
	}
	return d.accept(t, level), accepted
}

// settleAt says when the pin should be read again, if at all.
func (d *debouncer) settleAt() (time.Time, bool) {
	if d.mode != edgeBoth || !d.bounced {
		return time.Time{}, false
	}
	return d.last.Add(d.window), true
}

// settle handles the level read at the end of a window that saw bounces.
func (d *debouncer) settle(t time.Time, level bool) (transition, bool) {
	d.bounced = false
	if level == d.level {
		return transition{}, false
	}
	return d.accept(t, level), true
}

func (d *debouncer) accept(t time.Time, level bool) transition {
	tr := transition{t: t, level: level, prev: d.last}
	d.level, d.last, d.bounced = level, t, false
	return tr
}

func edgeName(level bool) string {
	if level {
		return "rising"
	}
	return "falling"
}
