package ingest

import (
	"fmt"
	"slices"
	"strings"
)

// template is a source name such as "{dock}-scanner": literal text with
// {name} placeholders for named wildcards and {topic} for the topic.
type template struct {
	parts []string // even indexes: literals; odd: placeholder names
}

func compileTemplate(src string, names []string) (*template, error) {
	if src == "" {
		src = "{topic}"
	}
	t := &template{}
	rest := src
	for {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			if strings.IndexByte(rest, '}') >= 0 {
				return nil, fmt.Errorf("unmatched '}' in %q", src)
			}
			t.parts = append(t.parts, rest)
			return t, nil
		}
		lit := rest[:open]
		if strings.IndexByte(lit, '}') >= 0 {
			return nil, fmt.Errorf("unmatched '}' in %q", src)
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unmatched '{' in %q", src)
		}
		name := rest[open+1 : open+end]
		if name != "topic" && !slices.Contains(names, name) {
			return nil, fmt.Errorf("{%s} is not a named wildcard of the topic (have %v)", name, names)
		}
		t.parts = append(t.parts, lit, name)
		rest = rest[open+end+1:]
	}
}

func (t *template) render(topic string, vals map[string]string) string {
	var b strings.Builder
	for i, p := range t.parts {
		switch {
		case i%2 == 0:
			b.WriteString(p)
		case p == "topic":
			b.WriteString(topic)
		default:
			b.WriteString(vals[p])
		}
	}
	return b.String()
}
