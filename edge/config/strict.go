package config

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
var nodeType = reflect.TypeOf(yaml.Node{})

// DecodeStrict decodes n into v (a pointer), refusing keys that v's type does
// not declare. yaml.v3 applies KnownFields only to a whole document; driver
// sections are decoded on their own, so this walks the node against the type
// first and reports unknown keys with their lines.
func DecodeStrict(n *yaml.Node, v any, path string) error {
	var errs []string
	checkKnown(n, reflect.TypeOf(v), path, &errs)
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	if err := n.Decode(v); err != nil {
		return prefixTypeError(err, path)
	}
	return nil
}

func prefixTypeError(err error, path string) error {
	if te, ok := err.(*yaml.TypeError); ok {
		out := make([]string, len(te.Errors))
		for i, e := range te.Errors {
			out[i] = fmt.Sprintf("%s: %s", path, e)
		}
		return fmt.Errorf("%s", strings.Join(out, "\n"))
	}
	return fmt.Errorf("%s: %w", path, err)
}

func checkKnown(n *yaml.Node, t reflect.Type, path string, errs *[]string) {
	if n == nil {
		return
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nodeType || reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // type errors are reported by Decode
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Value == "<<" {
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				*errs = append(*errs, fmt.Sprintf("line %d: %s: unknown field %q", k.Line, join(path, k.Value), k.Value))
				continue
			}
			checkKnown(val, ft, join(path, k.Value), errs)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			checkKnown(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkKnown(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), errs)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps the YAML keys of a struct type to their field types,
// following ",inline" fields.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
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
			if ft.Kind() == reflect.Struct {
				for k, v := range yamlFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// Locate returns the line of the node at path ("sources[1].mqtt.qos") in the
// document, or of the deepest node found on the way; 0 if none.
func Locate(root *yaml.Node, path string) int {
	n := root
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	line := 0
	if n != nil {
		line = n.Line
	}
	for _, part := range splitPath(path) {
		if n == nil {
			break
		}
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		var next *yaml.Node
		switch {
		case part.index >= 0 && n.Kind == yaml.SequenceNode:
			if part.index < len(n.Content) {
				next = n.Content[part.index]
			}
		case part.index < 0 && n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == part.key {
					line = n.Content[i].Line
					next = n.Content[i+1]
					break
				}
			}
		}
		if next == nil {
			break
		}
		n = next
		if n.Kind != yaml.MappingNode || part.index >= 0 {
			line = n.Line
		}
	}
	return line
}

type pathPart struct {
	key   string
	index int
}

func splitPath(path string) []pathPart {
	var out []pathPart
	for _, seg := range strings.Split(path, ".") {
		if seg == "" {
			continue
		}
		for {
			open := strings.IndexByte(seg, '[')
			if open < 0 {
				out = append(out, pathPart{key: seg, index: -1})
				break
			}
			if open > 0 {
				out = append(out, pathPart{key: seg[:open], index: -1})
			}
			end := strings.IndexByte(seg[open:], ']')
			if end < 0 {
				break
			}
			var idx int
			fmt.Sscanf(seg[open+1:open+end], "%d", &idx)
			out = append(out, pathPart{index: idx})
			seg = seg[open+end+1:]
			if seg == "" {
				break
			}
		}
	}
	return out
}
