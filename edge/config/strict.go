package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/edgegw/gateway/units"
)

var (
	unmarshalerType         = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	obsoleteUnmarshalerType = reflect.TypeOf((*interface{ UnmarshalYAML(func(any) error) error })(nil)).Elem()
	textUnmarshalerType     = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
	nodeType                = reflect.TypeOf(yaml.Node{})
)

// DecodeStrict decodes n into v (a pointer), refusing keys that v's type does
// not declare. yaml.v3 applies KnownFields only to a whole document; driver
// sections are decoded on their own, so this walks the node against the type
// first. Its error is units.Errors: one *units.FieldError per unknown or repeated key and
// per value of the wrong type, each with its path (under path) and line.
func DecodeStrict(n *yaml.Node, v any, path string) error {
	if es := decodeStrict(n, v, path); len(es) > 0 {
		return es
	}
	return nil
}

func decodeStrict(n *yaml.Node, v any, path string) units.Errors {
	es, _ := decodeSection(n, v, path)
	return es
}

// decodeSection is decodeStrict that goes on past the errors: the values
// that do not decode are left at their defaults and the rest is decoded,
// so that the section's Validate can report on it too. complete is false
// when the decoder stopped early (then v is not worth validating).
func decodeSection(n *yaml.Node, v any, path string) (es units.Errors, complete bool) {
	var w walker
	w.check(n, reflect.TypeOf(v), path)
	w.blank() // n is the caller's; the document keeps every line
	err := n.Decode(v)
	es = w.errs
	if err != nil {
		var te *yaml.TypeError
		complete = errors.As(err, &te)
		return append(es, yamlErrors(n, err, path, es)...), complete
	}
	return es, true
}

// walker checks a node tree against a Go type the way yaml.v3 will decode
// it, and reports what the decode would refuse (or, for unknown keys, what
// KnownFields would) as field errors with the key path and line: unknown
// and repeated keys, a sequence where a mapping belongs, a value a scalar
// field or a custom unmarshaler refuses. It does not follow aliases (the
// decoder expands them within its own limits; what it refuses there is
// located by line, see yamlErrors), so it is linear in the document.
type walker struct {
	errs units.Errors
	bad  []*yaml.Node // values that do not decode
}

func (w *walker) fail(bad *yaml.Node, path string, line int, format string, args ...any) {
	w.errs = append(w.errs, fieldError(path, line, fmt.Sprintf(format, args...)))
	if bad != nil {
		w.bad = append(w.bad, bad)
	}
}

// blank replaces every value that does not decode by null, keeping its
// line, so that a decode of the rest of the tree completes (the values
// are reported already).
func (w *walker) blank() {
	for _, n := range w.bad {
		*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
	}
}

func (w *walker) check(n *yaml.Node, t reflect.Type, path string) {
	if n == nil {
		return
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) != 1 {
			return
		}
		n = n.Content[0]
	}
	if isNull(n) {
		return // null decodes to the zero value of anything
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nodeType || t.Kind() == reflect.Interface {
		return
	}
	if n.Kind == yaml.AliasNode {
		w.alias(n, t, path)
		return
	}
	if custom(t) || (t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8) {
		w.leaf(n, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.fail(n, path, n.Line, "want %s, got %s", want(t), units.Describe(n))
			return
		}
		fields, rest := yamlFields(t)
		w.mapping(n, path, func(key string) (reflect.Type, bool) {
			if ft, ok := fields[key]; ok {
				return ft, true
			}
			return rest, rest != nil
		})
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.fail(n, path, n.Line, "want %s, got %s", want(t), units.Describe(n))
			return
		}
		w.mapping(n, path, func(string) (reflect.Type, bool) { return t.Elem(), true })
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			w.fail(n, path, n.Line, "want %s, got %s", want(t), units.Describe(n))
			return
		}
		for i, c := range n.Content {
			w.check(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	default:
		w.leaf(n, t, path)
	}
}

func (w *walker) mapping(n *yaml.Node, path string, field func(key string) (reflect.Type, bool)) {
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			continue // merged in by the decoder, which refuses unknown keys there
		}
		if k.Kind != yaml.ScalarNode {
			w.fail(nil, path, k.Line, "want a plain key, got %s", units.Describe(k))
			continue
		}
		p := join(path, clip(k.Value))
		if first, ok := seen[k.Value]; ok {
			w.fail(nil, p, k.Line, "set twice (first on line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		ft, ok := field(k.Value)
		if !ok {
			w.fail(nil, p, k.Line, "unknown field %s", quote(k.Value))
			continue
		}
		w.check(v, ft, p)
	}
}

// alias checks the kind of an alias's target against t, and decodes a
// scalar target into a leaf type; it never descends into the target (a
// tree of aliases may expand exponentially: the decoder bounds that).
func (w *walker) alias(n *yaml.Node, t reflect.Type, path string) {
	a := n.Alias
	if a == nil || a.Kind == yaml.AliasNode || isNull(a) {
		return
	}
	var ok bool
	switch {
	case custom(t) || (t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8):
		if a.Kind != yaml.ScalarNode {
			return // the type's own unmarshaler decides
		}
		if err := a.Decode(reflect.New(t).Interface()); err != nil {
			w.fail(n, path, n.Line, "%s (through alias *%s)", unmarshalerMsg(err), clip(n.Value))
		}
		return
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Map:
		ok = a.Kind == yaml.MappingNode
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		ok = a.Kind == yaml.SequenceNode
	default:
		ok = a.Kind == yaml.ScalarNode && a.Decode(reflect.New(t).Interface()) == nil
	}
	if !ok {
		w.fail(n, path, n.Line, "want %s, got %s (through alias *%s)", want(t), units.Describe(a), clip(n.Value))
	}
}

// leaf decodes n into a new value of type t, as the decoder will.
func (w *walker) leaf(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.ScalarNode && t.Kind() == reflect.String && !custom(t) {
		return // any scalar decodes into a string
	}
	err := n.Decode(reflect.New(t).Interface())
	if err == nil {
		return
	}
	var msg string
	switch {
	case custom(t):
		msg = unmarshalerMsg(err)
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" && isNumber(t) &&
		!(isUnsigned(t) && strings.HasPrefix(n.Value, "-")):
		msg = fmt.Sprintf("%s is out of range for %s", clip(n.Value), t.Kind())
	default:
		msg = fmt.Sprintf("want %s, got %s", want(t), units.Describe(n))
	}
	w.fail(n, path, n.Line, "%s", msg)
}

// custom reports whether yaml.v3 decodes t with the type's own method.
func custom(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	for _, it := range []reflect.Type{unmarshalerType, obsoleteUnmarshalerType, textUnmarshalerType} {
		if t.Implements(it) || pt.Implements(it) {
			return true
		}
	}
	return false
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func isNumber(t reflect.Type) bool {
	return (t.Kind() >= reflect.Int && t.Kind() <= reflect.Uintptr) || t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64
}

func isUnsigned(t reflect.Type) bool { return t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uintptr }

// want names what a value of type t is written as.
func want(t reflect.Type) string {
	switch k := t.Kind(); {
	case k == reflect.Bool:
		return "true or false"
	case k >= reflect.Int && k <= reflect.Int64:
		return "an integer"
	case isUnsigned(t):
		return "a non-negative integer"
	case k == reflect.Float32 || k == reflect.Float64:
		return "a number"
	case k == reflect.String:
		return "a string"
	case k == reflect.Slice || k == reflect.Array:
		return "a sequence"
	case k == reflect.Map || k == reflect.Struct:
		return "a mapping"
	}
	return "a " + t.String()
}

var unmarshalRe = regexp.MustCompile("^cannot unmarshal (\\S+)( `[^`]*`)? into (.+)$")

// unmarshalerMsg is the message of a custom unmarshaler's error, without
// the line it names (a FieldError carries it).
func unmarshalerMsg(err error) string {
	ms := units.YAMLMessages(err)
	msgs := make([]string, len(ms))
	for i, m := range ms {
		msgs[i] = m.Msg
	}
	return strings.Join(msgs, "; ")
}

// yamlErrors maps an error of yaml.v3's decoder to field errors (see
// units.YAMLErrors) in the words of the walker's, each bounded by
// fieldError, and without repeats. Entries on a line that already holds
// an error in have are dropped: the walker reported them with a better
// path.
func yamlErrors(root *yaml.Node, err error, base string, have units.Errors) units.Errors {
	reported := map[int]bool{}
	for _, e := range have {
		reported[e.Line] = true
	}
	seen := map[string]bool{}
	var out units.Errors
	for _, e := range units.YAMLErrors(err, root, base) {
		if e.Line > 0 && reported[e.Line] {
			continue
		}
		fe := fieldError(e.Path, e.Line, humanize(e.Msg))
		if k := fe.Error(); !seen[k] {
			seen[k] = true
			out = append(out, fe)
		}
	}
	return out
}

// humanize rewrites yaml.v3's messages in the words of the walker's
// (units.YAMLErrors has said an unknown field so already; fieldError clips
// the field's name as quote would).
func humanize(m string) string {
	if sm := unmarshalRe.FindStringSubmatch(m); sm != nil {
		got := map[string]string{"!!seq": "a sequence", "!!map": "a mapping", "!!str": "a string", "!!int": "an integer",
			"!!float": "a number", "!!bool": "a boolean", "!!null": "null", "!!binary": "binary data"}[sm[1]]
		if got == "" {
			got = "a value tagged " + clip(sm[1])
		}
		return "want " + wantName(sm[3]) + ", got " + got + sm[2]
	}
	return m
}

// wantName is want for a Go type as yaml.v3 prints it.
func wantName(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a sequence"
	case strings.HasPrefix(goType, "map["):
		return "a mapping"
	case goType == "bool":
		return "true or false"
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "uint"):
		return "a non-negative integer"
	case strings.HasPrefix(goType, "int"):
		return "an integer"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	}
	return "a value of type " + goType
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps the YAML keys of a struct type to their field types,
// following ",inline" fields; rest is the element type of an inline map
// (which takes every other key), nil if there is none.
func yamlFields(t reflect.Type) (fields map[string]reflect.Type, rest reflect.Type) {
	fields = map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch ft.Kind() {
			case reflect.Struct:
				sub, r := yamlFields(ft)
				for k, v := range sub {
					fields[k] = v
				}
				if r != nil {
					rest = r
				}
			case reflect.Map:
				rest = ft.Elem()
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields, rest
}
