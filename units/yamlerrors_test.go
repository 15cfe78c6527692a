package units

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestYAMLMessages(t *testing.T) {
	if es := YAMLMessages(nil); es != nil {
		t.Errorf("YAMLMessages(nil) = %v, want nil", es)
	}
	te := &yaml.TypeError{Errors: []string{"line 3: cannot unmarshal !!str `x` into int", "no line here"}}
	for _, err := range []error{te, fmt.Errorf("wrapped: %w", te)} {
		es := YAMLMessages(err)
		if len(es) != 2 || es[0].Line != 3 || es[0].Msg != "cannot unmarshal !!str `x` into int" || es[0].Path != "" ||
			es[1].Line != 0 || es[1].Msg != "no line here" {
			t.Errorf("YAMLMessages(%v) = %q", err, es)
		}
	}
	es := YAMLMessages(errors.New("yaml: line 7: did not find expected key"))
	if len(es) != 1 || es[0].Line != 7 || es[0].Msg != "did not find expected key" {
		t.Errorf("syntax error: %q", es)
	}
}

func TestYAMLErrors(t *testing.T) {
	type inner struct {
		Port int `yaml:"port"`
	}
	var v struct {
		Server inner    `yaml:"server"`
		Hosts  []string `yaml:"hosts"`
	}
	doc := "server:\n  port: abc\n  bogus: 1\nhosts: [a]\n"
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	err := dec.Decode(&v)
	if err == nil {
		t.Fatal("no error")
	}
	got := YAMLErrors(err, &root, "").Error()
	want := "line 2: server.port: cannot unmarshal !!str `abc` into int\nline 3: server.bogus: unknown field \"bogus\""
	if got != want {
		t.Errorf("YAMLErrors =\n%s\nwant\n%s", got, want)
	}

	// A section decoded on its own: paths under base, base where the
	// line has no key.
	sec := root.Content[0].Content[1]
	err = &yaml.TypeError{Errors: []string{"line 2: bad", "line 99: elsewhere", "no line"}}
	es := YAMLErrors(err, sec, "a[1].server")
	if got, want := es.Error(), "line 2: a[1].server.port: bad\nline 99: a[1].server: elsewhere\na[1].server: no line"; got != want {
		t.Errorf("under base:\n%s\nwant\n%s", got, want)
	}
	// Without a document (a syntax error) every error is at base.
	es = YAMLErrors(errors.New("yaml: line 4: mapping values are not allowed in this context"), nil, "")
	if len(es) != 1 || es[0].Path != "" || es[0].Line != 4 || es[0].Msg != "mapping values are not allowed in this context" {
		t.Errorf("syntax error: %q", es)
	}
	// An unknown field's name is quoted whole.
	long := strings.Repeat("k", 100)
	es = YAMLErrors(&yaml.TypeError{Errors: []string{"line 1: field " + long + " not found in type x.T"}}, nil, "")
	if want := "unknown field \"" + long + "\""; es[0].Msg != want {
		t.Errorf("long key: %q", es[0].Msg)
	}
}

func TestUncovered(t *testing.T) {
	ves := Errors{{Path: "a.b"}, {Path: "a[0]"}, {Path: "ab"}, {Path: "c"}}
	if got := Uncovered(ves, Errors{{Path: "a"}}); len(got) != 2 || got[0].Path != "ab" || got[1].Path != "c" {
		t.Errorf("Uncovered = %v", got)
	}
	if got := Uncovered(ves, Errors{{Path: "c"}, {Path: ""}}); len(got) != 0 {
		t.Errorf("a document error covers all: %v", got)
	}
	if got := Uncovered(ves, nil); len(got) != len(ves) {
		t.Errorf("no decode errors: %v", got)
	}
}

func TestDescribe(t *testing.T) {
	var root yaml.Node
	doc := "s: hi\nn: 3\nb: true\nz: null\nbin: !!binary aGk=\nt: !custom x\nseq: [1]\nmap: {a: 1}\nanchor: &x 1\nalias: *x\nlong: " +
		strings.Repeat("y", 70) + "\n"
	if err := yaml.NewDecoder(bytes.NewReader([]byte(doc))).Decode(&root); err != nil {
		t.Fatal(err)
	}
	m := root.Content[0]
	want := map[string]string{
		"s": `"hi"`, "n": "3", "b": "true", "z": "null", "bin": "binary data", "t": "a value tagged !custom",
		"seq": "a sequence", "map": "a mapping", "anchor": "1", "alias": "an alias",
		"long": `"` + strings.Repeat("y", 64) + `"…(70 bytes)`,
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i].Value, m.Content[i+1]
		if got := Describe(v); got != want[k] {
			t.Errorf("Describe(%s) = %s, want %s", k, got, want[k])
		}
	}
	if got := Describe(&yaml.Node{}); got != "nothing" {
		t.Errorf("Describe(empty) = %s", got)
	}
}
