package main

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// result is one benchmark's line of `go test -bench` output.
type result struct {
	Pkg     string  // ./buffer
	Name    string  // BenchmarkAppend/appenders=16 (no -GOMAXPROCS suffix)
	N       int64   // iterations
	Metrics []value // in output order
	Notes   []string
	Skipped string // the reason, when the benchmark skipped
}

type value struct {
	Value float64
	Unit  string
}

// metric returns the value of unit, and whether the result has it.
func (r result) metric(unit string) (float64, bool) {
	for _, v := range r.Metrics {
		if v.Unit == unit {
			return v.Value, true
		}
	}
	return 0, false
}

var (
	reResult = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$`)
	reLog    = regexp.MustCompile(`^\s+\S+_test\.go:\d+: (.*)$`)
	reHeader = regexp.MustCompile(`^--- (BENCH|SKIP|FAIL): (Benchmark\S+?)(?:-\d+)?(?:\s|$)`)
)

// parser reads `go test -bench` output line by line. A benchmark's log
// lines follow a "--- BENCH: name" (or SKIP, FAIL) header.
type parser struct {
	pkg     string
	notes   map[string][]string
	status  map[string]string // SKIP or FAIL, by name
	current string            // the name of the last header
}

// line returns the result the line holds, if it holds one, and remembers
// log lines and skips for finish.
func (p *parser) line(line string) (result, bool) {
	if m := reResult.FindStringSubmatch(line); m != nil {
		n, _ := strconv.ParseInt(m[2], 10, 64)
		r := result{Pkg: p.pkg, Name: m[1], N: n}
		f := strings.Fields(m[3])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			r.Metrics = append(r.Metrics, value{Value: v, Unit: f[i+1]})
		}
		p.current = ""
		return r, true
	}
	if m := reHeader.FindStringSubmatch(line); m != nil {
		if p.status == nil {
			p.status, p.notes = map[string]string{}, map[string][]string{}
		}
		p.current = m[2]
		if m[1] != "BENCH" {
			p.status[m[2]] = m[1]
		}
		return result{}, false
	}
	if m := reLog.FindStringSubmatch(line); m != nil && p.current != "" {
		p.notes[p.current] = append(p.notes[p.current], m[1])
	}
	return result{}, false
}

// finish attaches the notes to their results and adds a result for each
// benchmark that skipped or failed without one.
func (p *parser) finish(rs []result) []result {
	have := map[string]bool{}
	for i := range rs {
		rs[i].Notes = p.notes[rs[i].Name]
		have[rs[i].Name] = true
	}
	var names []string
	for name := range p.status {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if have[name] {
			continue
		}
		why := p.status[name]
		if ns := p.notes[name]; len(ns) > 0 {
			why += ": " + ns[len(ns)-1]
		}
		rs = append(rs, result{Pkg: p.pkg, Name: name, Skipped: why})
	}
	return rs
}
