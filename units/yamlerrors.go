package units

import (
	"errors"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

var (
	lineRe     = regexp.MustCompile(`^line (\d+): `)
	notFoundRe = regexp.MustCompile(`^field (.*) not found in type \S+$`)
)

// YAMLMessages splits an error of yaml.v3 into its messages: one per entry
// of a *yaml.TypeError (wrapped or not), or the error's whole message for
// any other error. Each is a FieldError without a Path: its Line is the
// line the message names ("line 12: ..."; 0 when none) and its Msg is the
// message without yaml's "yaml: " and "line N: " prefixes, otherwise as
// yaml wrote it.
func YAMLMessages(err error) Errors {
	if err == nil {
		return nil
	}
	msgs := []string{err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var out Errors
	for _, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		line := 0
		if sm := lineRe.FindStringSubmatch(m); sm != nil {
			line, _ = strconv.Atoi(sm[1])
			m = m[len(sm[0]):]
		}
		out = append(out, &FieldError{Line: line, Msg: m})
	}
	return out
}

// YAMLErrors maps an error of yaml.v3's decoder to field errors, one per
// message (see YAMLMessages): each is at the line its message names and at
// the path, under base, of the deepest key or sequence item on that line
// in root (see PathsByLine), or at base when there is none (no line, no
// key on it, or root nil). yaml's "field X not found in type T" is said as
// `unknown field "X"` (X quoted in full: a caller that bounds its messages
// clips it). root is the node that was decoded and base its path in the
// document ("" for a whole document).
func YAMLErrors(err error, root *yaml.Node, base string) Errors {
	es := YAMLMessages(err)
	var index map[int]string
	for _, e := range es {
		e.Path = base
		if e.Line > 0 && root != nil {
			if index == nil {
				index = PathsByLine(root, base)
			}
			if p, ok := index[e.Line]; ok {
				e.Path = p
			}
		}
		if sm := notFoundRe.FindStringSubmatch(e.Msg); sm != nil {
			e.Msg = "unknown field " + strconv.Quote(sm[1])
		}
	}
	return es
}

// Uncovered returns the validation errors ves that are not about a setting
// that did not decode (one of decodeErrs), whose default or zero value
// Validate may complain about: a ves error at or below the path of a
// decode error is dropped, and every one when a decode error is about the
// whole document (Path "").
func Uncovered(ves, decodeErrs Errors) Errors {
	var out Errors
next:
	for _, v := range ves {
		for _, d := range decodeErrs {
			if d.Path == "" || v.Path == d.Path || strings.HasPrefix(v.Path, d.Path+".") || strings.HasPrefix(v.Path, d.Path+"[") {
				continue next
			}
		}
		out = append(out, v)
	}
	return out
}

// Describe names what a YAML document has at n, for a message "want X,
// got Describe(n)": "a sequence", "a mapping", "an alias", "null",
// "binary data", a string quoted and a number, boolean or timestamp
// as written (both clipped to 64 bytes), "a value tagged !!x" for
// another tag, and "nothing" for a node of no kind.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch tag := n.ShortTag(); tag {
		case "!!str":
			return quote(n.Value)
		case "!!null":
			return "null"
		case "!!binary":
			return "binary data"
		case "!!int", "!!float", "!!bool", "!!timestamp":
			return clip(n.Value)
		default:
			return "a value tagged " + clip(tag)
		}
	}
	return "nothing"
}
