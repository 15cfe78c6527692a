package config

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/edgegw/gateway/units"
)

// Per-gateway values in a pushed document. A document pushed to a group
// says the same to every gateway; what must differ per gateway (a listen
// address, a client ID, a file path) it names with a placeholder, which
// each gateway fills in from its own local file:
//
//	${local:NAME}  fleet.local_values.NAME of the gateway's local file
//	${gateway.id}  the gateway's ID
//	$${            a literal "${"
//
// Placeholders are filled in setting values only (never in keys), from the
// local file only (never from the environment or the bundle), and a value
// must fit where its placeholder stands: a value that would change the
// document's structure (a plain value holding ": ", a quoted one holding
// its quote) is refused, naming the setting, as is a placeholder the
// gateway does not define. Values are not secrets: they appear in errors
// and in the running config.
var placeholderRe = regexp.MustCompile(`\$\$\{|\$\{([^{}\n]*)\}`)

// localNameRe is what a local value's name looks like.
var localNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,63}$`)

// Local value bounds: names, the longest value, and how many.
const (
	maxLocalValue  = 4096
	maxLocalValues = 256
)

// Lookup resolves placeholder NAMEs for Substitute: ok is false when NAME is
// not defined.
type Lookup func(name string) (value string, ok bool)

// LocalLookup resolves placeholders from local: its fleet.local_values and
// its gateway ID.
func LocalLookup(local *Config) Lookup {
	return func(name string) (string, bool) {
		if name == "gateway.id" {
			return local.Gateway.ID, local.Gateway.ID != ""
		}
		v, ok := local.Fleet.LocalValues[strings.TrimPrefix(name, "local:")]
		return v, ok && strings.HasPrefix(name, "local:")
	}
}

// HasPlaceholders reports whether doc holds a placeholder (or "$${").
func HasPlaceholders(doc []byte) bool { return placeholderRe.Match(doc) }

// Substitute returns doc with every placeholder in a setting value
// replaced through lookup. Lines stay where they were, so that errors
// found in the result point at the document's own lines. The error is
// units.Errors: each undefined or unknown placeholder, a placeholder in a
// key, and each value that does not fit where its placeholder stands, with
// the setting's path and line.
func Substitute(doc []byte, lookup Lookup) ([]byte, error) {
	if !HasPlaceholders(doc) {
		return doc, nil
	}
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return nil, syntaxError(err)
	}
	s := substitution{lookup: lookup, want: map[*yaml.Node]filled{}}
	s.walk(&root, "")
	if len(s.errs) > 0 {
		return nil, finish(s.errs)
	}
	out := s.fill(doc, 0)
	var after yaml.Node
	if err := yaml.Unmarshal(out, &after); err == nil {
		s.compare(&root, &after, "", 0)
		if len(s.errs) == 0 {
			return out, nil
		}
	}
	// Find the values that do not fit: fill in one line at a time.
	s.errs = nil
	lines := map[int]bool{}
	for n := range s.want {
		lines[n.Line] = true
	}
	for line := range lines {
		var trial yaml.Node
		if err := yaml.Unmarshal(s.fill(doc, line), &trial); err != nil {
			for n, w := range s.want {
				if n.Line == line {
					s.add(w.path, line, "%s", misfit)
				}
			}
			continue
		}
		s.compare(&root, &trial, "", line)
	}
	if len(s.errs) == 0 {
		s.add("", 0, "the local values together make the document invalid: put the placeholders in quotes")
	}
	return nil, finish(s.errs)
}

// misfit says that a value does not fit where its placeholder stands.
const misfit = "a local value here changes the document's structure or does not come out as itself: put the placeholder in quotes (and mind quotes or escapes in the value)"

// fill replaces the placeholders of doc: all of them when line is 0, else
// those on line, the others by a stand-in that fits anywhere. Placeholders
// in comments are left as they are.
func (s *substitution) fill(doc []byte, line int) []byte {
	var out bytes.Buffer
	last, at := 0, 1
	for _, m := range placeholderRe.FindAllIndex(doc, -1) {
		at += bytes.Count(doc[last:m[0]], []byte("\n"))
		out.Write(doc[last:m[0]])
		last = m[1]
		text := doc[m[0]:m[1]]
		switch v, ok := s.lookup(string(text[min(2, len(text)):max(2, len(text)-1)])); {
		case string(text) == "$${":
			out.WriteString("${")
		case !ok || strings.ContainsAny(v, "\r\n"):
			out.Write(text) // in a comment
		case line != 0 && at != line:
			out.WriteString("x")
		default:
			out.WriteString(v)
		}
	}
	out.Write(doc[last:])
	return out.Bytes()
}

// PlaceholderLines are the lines of doc that hold a placeholder in a
// setting value; nil if doc does not parse.
func PlaceholderLines(doc []byte) map[int]bool {
	var root yaml.Node
	if yaml.Unmarshal(doc, &root) != nil {
		return nil
	}
	lines := map[int]bool{}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && placeholderRe.MatchString(n.Value) {
			lines[n.Line] = true
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	return lines
}

// filled is a scalar with placeholders: its path and value filled in.
type filled struct{ path, value string }

type substitution struct {
	lookup Lookup
	want   map[*yaml.Node]filled // scalars with placeholders
	errs   units.Errors
}

func (s *substitution) add(path string, line int, format string, args ...any) {
	s.errs = append(s.errs, fieldError(path, line, fmt.Sprintf(format, args...)))
}

func (s *substitution) walk(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			s.walk(c, path)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			p := join(path, clip(k.Value))
			if placeholderRe.MatchString(k.Value) {
				s.add(p, k.Line, "placeholders are allowed in values only, not in keys")
				continue
			}
			s.walk(n.Content[i+1], p)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			s.walk(c, fmt.Sprintf("%s[%d]", path, i))
		}
	case yaml.ScalarNode:
		if !placeholderRe.MatchString(n.Value) {
			return
		}
		v := placeholderRe.ReplaceAllStringFunc(n.Value, func(m string) string {
			if m == "$${" {
				return "${"
			}
			name := m[2 : len(m)-1]
			if name != "gateway.id" && !strings.HasPrefix(name, "local:") {
				s.add(path, n.Line, "unknown placeholder %s: use ${local:NAME} (fleet.local_values of the gateway's local file), ${gateway.id} or $${ for a literal ${", quote(m))
				return m
			}
			v, ok := s.lookup(name)
			switch {
			case !ok:
				s.add(path, n.Line, "%s is not defined by this gateway (set fleet.local_values.%s in its local config file)", m, strings.TrimPrefix(name, "local:"))
			case strings.ContainsAny(v, "\r\n"):
				s.add(path, n.Line, "the value of %s spans lines; local values are one line", m)
			}
			return v
		})
		s.want[n] = filled{path, v}
	}
}

// compare checks that after (the document with the values filled in) has
// the structure of before and the values s.want says; when line is not 0,
// it checks only the scalars with placeholders on that line.
func (s *substitution) compare(before, after *yaml.Node, path string, line int) {
	if before.Kind != after.Kind || len(before.Content) != len(after.Content) {
		s.add(path, before.Line, "%s", misfit)
		return
	}
	switch before.Kind {
	case yaml.ScalarNode:
		w, ok := s.want[before]
		switch {
		case !ok && line != 0:
		case !ok && after.Value != before.Value:
			s.add(path, before.Line, "%s", misfit)
		case ok && (line == 0 || before.Line == line) && after.Value != w.value:
			s.add(path, before.Line, "%s", misfit)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(before.Content); i += 2 {
			p := join(path, clip(before.Content[i].Value))
			s.compare(before.Content[i], after.Content[i], p, line)
			s.compare(before.Content[i+1], after.Content[i+1], p, line)
		}
	case yaml.SequenceNode:
		for i := range before.Content {
			s.compare(before.Content[i], after.Content[i], fmt.Sprintf("%s[%d]", path, i), line)
		}
	default:
		for i := range before.Content {
			s.compare(before.Content[i], after.Content[i], path, line)
		}
	}
}

// validateLocalValues checks fleet.local_values.
func validateLocalValues(vals map[string]string, add func(path, format string, args ...any)) {
	if len(vals) > maxLocalValues {
		add("fleet.local_values", "%d values; at most %d", len(vals), maxLocalValues)
	}
	for k, v := range vals {
		p := "fleet.local_values." + clip(k)
		switch {
		case !localNameRe.MatchString(k):
			add(p, "%s: a name is 1-64 letters, digits, '_', '.' or '-', starting with a letter or '_'", quote(k))
		case strings.ContainsAny(v, "\r\n"):
			add(p, "a local value is one line")
		case len(v) > maxLocalValue:
			add(p, "%d bytes; at most %d", len(v), maxLocalValue)
		}
	}
}
