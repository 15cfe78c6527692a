package ingest

import (
	"fmt"
	"strings"
)

// pattern is a topic filter with named wildcards, compiled.
type pattern struct {
	filter string   // what the broker sees: names stripped
	levels []string // the filter's levels: literal, "+" or "#"
	names  []string // per level: the wildcard's name, or ""
}

// compilePattern parses a filter such as "site/+dock/scanner/+device" or
// "site/#rest". A name is letters, digits and '_' and must not repeat.
func compilePattern(topic string) (*pattern, error) {
	if topic == "" {
		return nil, fmt.Errorf("empty topic filter")
	}
	if len(topic) > 65535 {
		return nil, fmt.Errorf("topic filter longer than 65535 bytes")
	}
	p := &pattern{}
	seen := map[string]bool{}
	parts := strings.Split(topic, "/")
	for i, lv := range parts {
		name := ""
		switch {
		case strings.HasPrefix(lv, "+"), strings.HasPrefix(lv, "#"):
			name = lv[1:]
			if lv[0] == '#' && i != len(parts)-1 {
				return nil, fmt.Errorf("'#' must be the last level")
			}
			if name != "" {
				if !isName(name) {
					return nil, fmt.Errorf("wildcard name %q: use letters, digits and '_'", name)
				}
				if seen[name] {
					return nil, fmt.Errorf("wildcard name %q used twice", name)
				}
				seen[name] = true
			}
			lv = lv[:1]
		case strings.ContainsAny(lv, "+#"):
			return nil, fmt.Errorf("level %q: a wildcard must be a whole level", lv)
		}
		if strings.ContainsRune(lv, 0) {
			return nil, fmt.Errorf("topic filter contains NUL")
		}
		p.levels = append(p.levels, lv)
		p.names = append(p.names, name)
	}
	p.filter = strings.Join(p.levels, "/")
	return p, nil
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// wildcardNames lists the names in filter order.
func (p *pattern) wildcardNames() []string {
	var out []string
	for _, n := range p.names {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// match reports whether topic matches the filter and, if so, the values of
// the named wildcards. As MQTT requires, a wildcard in the first level does
// not match a topic that starts with '$'.
func (p *pattern) match(topic string) (map[string]string, bool) {
	if topic == "" || strings.ContainsAny(topic, "+#") {
		return nil, false
	}
	if topic[0] == '$' && (p.levels[0] == "+" || p.levels[0] == "#") {
		return nil, false
	}
	var vals map[string]string
	set := func(i int, v string) {
		if p.names[i] == "" {
			return
		}
		if vals == nil {
			vals = make(map[string]string, len(p.names))
		}
		vals[p.names[i]] = v
	}
	tl := strings.Split(topic, "/")
	for i, lv := range p.levels {
		if lv == "#" {
			// "a/#" also matches "a" itself; the name then gets "".
			if i > len(tl) {
				return nil, false
			}
			set(i, strings.Join(tl[i:], "/"))
			return vals, true
		}
		if i >= len(tl) || (lv != "+" && lv != tl[i]) {
			return nil, false
		}
		if lv == "+" {
			set(i, tl[i])
		}
	}
	if len(tl) != len(p.levels) {
		return nil, false
	}
	return vals, true
}
