package config

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func lookupOf(id string, vals map[string]string) Lookup {
	return LocalLookup(&Config{Gateway: Gateway{ID: id}, Fleet: Fleet{LocalValues: vals}})
}

func TestSubstitute(t *testing.T) {
	look := lookupOf("dock-7", map[string]string{
		"broker": "tcp://10.1.4.2:1883", "port": "1884", "colon": "a: b", "quote": `say "hi"`,
	})
	for _, tc := range []struct {
		name, doc, want, err string
	}{
		{"none", "a: 1\n", "a: 1\n", ""},
		{"value", "a:\n  b: ${local:broker}\n", "a:\n  b: tcp://10.1.4.2:1883\n", ""},
		{"in text, gateway id", "id: edgegw-${gateway.id}-x # ${local:nope}\n", "id: edgegw-dock-7-x # ${local:nope}\n", ""},
		{"quoted", "a: \"${local:colon}\"\n", "a: \"a: b\"\n", ""},
		{"in a list", "l: [x, '${local:port}']\n", "l: [x, '1884']\n", ""},
		{"literal", "a: $${local:port}\n", "a: ${local:port}\n", ""},
		{"undefined", "x: 1\nsources:\n  - mqtt:\n      client_id: ${local:client}\n", "",
			"line 4: sources[0].mqtt.client_id: ${local:client} is not defined by this gateway (set fleet.local_values.client in its local config file)"},
		{"unknown", "a: ${env:HOME}\n", "", `line 1: a: unknown placeholder "${env:HOME}"`},
		{"key", "${local:port}: 1\n", "", "line 1: ${local:port}: placeholders are allowed in values only"},
		{"structure", "a: ${local:colon}\n", "", "line 1: a: a local value here changes the document's structure"},
		{"quotes in value", "a: \"${local:quote}\"\n", "", "line 1: a: a local value here"},
	} {
		got, err := Substitute([]byte(tc.doc), look)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err == "" && string(got) != tc.want:
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// Lines stay put: an error in a filled-in document names the line of the
// pushed one.
func TestSubstituteKeepsLines(t *testing.T) {
	doc := strings.Replace(good, "  - name: telemetry\n", "  - name: ${local:tel}\n", 1) + "http:\n  listen: ${local:http}\n"
	look := lookupOf("dock-gw-01", map[string]string{"tel": "telemetry", "http": "nonsense"})
	filled, err := Substitute([]byte(doc), look)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(filled)
	if err == nil || !strings.Contains(err.Error(), "line 26: http.listen:") {
		t.Fatalf("got %v, want an error at line 26 (http.listen)", err)
	}
}

func TestLocalValuesValidated(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"fleet:\n  local_values:\n    9x: a\n", `fleet.local_values.9x: "9x": a name is`},
		{"fleet:\n  local_values:\n    a: \"x\\ny\"\n", "fleet.local_values.a: a local value is one line"},
		{"fleet:\n  local_values:\n    a: [1]\n", "fleet.local_values.a"},
	} {
		if _, err := Parse([]byte(good + tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
	c, err := Parse([]byte(good + "fleet:\n  local_values:\n    port: 1884\n    dock.name: Dock 3\n"))
	if err != nil || c.Fleet.LocalValues["port"] != "1884" || c.Fleet.LocalValues["dock.name"] != "Dock 3" {
		t.Fatalf("%+v %v", c.Fleet.LocalValues, err)
	}
}

// FuzzSubstitute: whatever the document and the values, Substitute does not
// panic; what it returns has the document's structure with every
// placeholder in a value filled in, and a document without placeholders
// comes back as it was.
func FuzzSubstitute(f *testing.F) {
	f.Add("a: ${local:v}\n", "x")
	f.Add("a: \"${local:v}\"\nb: [${gateway.id}, '$${x}']\n", `q"uote`)
	f.Add("a:\n  - ${local:v}: 1\n# ${local:nope}\n", "a: b")
	f.Add("k: |\n  ${local:v}\n  more\n", "{x}")
	f.Add("a: &x ${local:v}\nb: *x\n", "' #")
	f.Fuzz(func(t *testing.T, doc, value string) {
		look := lookupOf("gw-1", map[string]string{"v": value})
		out, err := Substitute([]byte(doc), look)
		if err != nil {
			return
		}
		if !HasPlaceholders([]byte(doc)) {
			if string(out) != doc {
				t.Fatalf("a document without placeholders changed: %q -> %q", doc, out)
			}
			return // parsed later, by Parse
		}
		var before, after yaml.Node
		if yaml.Unmarshal([]byte(doc), &before) != nil {
			t.Fatalf("accepted a document that does not parse: %q", doc)
		}
		if err := yaml.Unmarshal(out, &after); err != nil {
			t.Fatalf("%q with v=%q gave %q, which does not parse: %v", doc, value, out, err)
		}
		var check func(b, a *yaml.Node)
		check = func(b, a *yaml.Node) {
			if b.Kind != a.Kind || len(b.Content) != len(a.Content) {
				t.Fatalf("%q with v=%q: structure changed: %q", doc, value, out)
			}
			if b.Kind == yaml.ScalarNode && placeholderRe.MatchString(a.Value) && strings.Contains(a.Value, "${local:v}") && !strings.Contains(value, "${local:v}") && !strings.Contains(b.Value, "$${local:v}") {
				t.Fatalf("%q with v=%q: a placeholder left in a value: %q", doc, value, a.Value)
			}
			for i := range b.Content {
				check(b.Content[i], a.Content[i])
			}
		}
		check(&before, &after)
	})
}
