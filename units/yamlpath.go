package units

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Locate returns the line of the node at path ("sources[1].mqtt.qos", the
// syntax of FieldError.Path) in the document root, or of the deepest node
// found on the way when the path is not all there (a setting left at its
// default is reported where its section is); 0 if none.
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

// LocateAll sets the Line of each error in es that has none to the line of
// its Path in root (see Locate).
func LocateAll(root *yaml.Node, es Errors) {
	for _, e := range es {
		if e.Line == 0 {
			e.Line = Locate(root, e.Path)
		}
	}
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
			idx, _ := strconv.Atoi(seg[open+1 : open+end])
			out = append(out, pathPart{index: idx})
			seg = seg[open+end+1:]
			if seg == "" {
				break
			}
		}
	}
	return out
}

// PathsByLine maps each line of the tree under n (aliases not followed) to
// the path, under base, of the deepest key or sequence item on it: the way
// back from a line that yaml's decoder names to a FieldError.Path. Keys in
// the paths are clipped to 64 bytes.
func PathsByLine(n *yaml.Node, base string) map[int]string {
	idx := map[int]string{}
	var visit func(n *yaml.Node, path string)
	visit = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				visit(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := clip(k.Value)
				if path != "" {
					p = path + "." + p
				}
				if k.ShortTag() == "!!merge" {
					p = path // merged keys belong to the mapping
				}
				idx[k.Line] = p
				visit(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if n.Style&yaml.FlowStyle == 0 { // [a, b] on one line: the key names it
					idx[c.Line] = p
				}
				visit(c, p)
			}
		}
	}
	if n != nil {
		visit(n, base)
	}
	return idx
}

// clip shortens a user value to clipLen bytes (on a rune boundary) and
// says how long it was: "aaaa…(4194304 bytes)".
func clip(s string) string {
	if len(s) <= clipLen {
		return s
	}
	n := clipLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + fmt.Sprintf("…(%d bytes)", len(s))
}
