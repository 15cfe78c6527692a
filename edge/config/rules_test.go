package config

import (
	"strings"
	"testing"
)

// TestRules: rules and tables load with the config; a rule that does not
// compile refuses the document with its line, path and the rule's name.
func TestRules(t *testing.T) {
	doc := good + `
tables:
  routes:
    inline: {R1: "3", R2: "5"}
rules:
  - name: missort
    match: {streams: [scans], kinds: [scan], vars: {dock: "3"}}
    when: tables.routes[attrs.route] != attrs.dock
    cooldown: 1s
    actions:
      - alert: {stream: telemetry, attrs: [barcode]}
`
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Rules) != 1 || c.Rules[0].Actions[0].Alert.Stream != "telemetry" || c.Tables["routes"].Inline["R2"] != "5" {
		t.Fatalf("rules %+v tables %+v", c.Rules, c.Tables)
	}
	bad := strings.Replace(doc, "!= attrs.dock", "!= atrs.dock", 1)
	bad = strings.Replace(bad, "stream: telemetry", "stream: nope", 1)
	_, err = Parse([]byte(bad))
	if err == nil {
		t.Fatal("a rule that does not compile was accepted")
	}
	for _, want := range []string{
		"line 32: rules[0].when: rule missort: unknown name atrs",
		`line 35: rules[0].actions[0].alert.stream: "nope" is not a stream of the config`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors\n%v\nlack %q", err, want)
		}
	}
}
