package units

import (
	"errors"
	"fmt"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestFieldErrorString(t *testing.T) {
	for _, tc := range []struct {
		e    FieldError
		want string
	}{
		{FieldError{Path: "qos", Msg: "must be 0, 1 or 2"}, "qos: must be 0, 1 or 2"},
		{FieldError{Path: "streams[0].max_age", Line: 12, Msg: "bad"}, "line 12: streams[0].max_age: bad"},
		{FieldError{Line: 3, Msg: "did not find expected key"}, "line 3: did not find expected key"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.e, got, tc.want)
		}
	}
}

func TestErrors(t *testing.T) {
	var es Errors
	if es.Err() != nil {
		t.Fatal("empty Errors is a non-nil error")
	}
	es.Add("b", "two %d", 2)
	es.Add("a", "one")
	err := es.Err()
	var fe *FieldError
	if !errors.As(err, &fe) || *fe != (FieldError{Path: "b", Msg: "two 2"}) {
		t.Fatalf("errors.As found %+v", fe)
	}
	if err.Error() != "b: two 2\na: one" {
		t.Fatalf("Error() = %q", err)
	}
	es[0].Line, es[1].Line = 9, 4
	es = append(es, &FieldError{Msg: "no line"})
	es.SortByLine()
	if es[0].Msg != "no line" || es[1].Path != "a" || es[2].Path != "b" {
		t.Fatalf("sorted %v", es)
	}
}

// Under puts a section's path in front of its Validate errors; no string
// is split.
func TestUnder(t *testing.T) {
	inner := Errors{{Path: "subscriptions[0].topic", Msg: "bad: filter"}, {Path: "", Msg: "whole section"}}
	got := Under("sources[2].mqtt", fmt.Errorf("wrapped: %w", inner))
	want := Errors{{Path: "sources[2].mqtt.subscriptions[0].topic", Msg: "bad: filter"}, {Path: "sources[2].mqtt", Msg: "whole section"}}
	if len(got) != len(want) || *got[0] != *want[0] || *got[1] != *want[1] {
		t.Fatalf("Under = %v, want %v", got, want)
	}
	if got := Under("uplink", errors.New("key: not a path")); len(got) != 1 || *got[0] != (FieldError{Path: "uplink", Msg: "key: not a path"}) {
		t.Fatalf("plain error: %+v", got[0])
	}
	joined := errors.Join(&FieldError{Path: "a", Msg: "x"}, Errors{{Path: "b[1]", Msg: "y"}})
	if got := Under("broker", joined); len(got) != 2 || got[0].Path != "broker.a" || got[1].Path != "broker.b[1]" {
		t.Fatalf("joined: %v", got)
	}
	if Under("x", nil) != nil {
		t.Fatal("Under(nil) is not nil")
	}
	for _, tc := range [][3]string{{"", "a", "a"}, {"a", "", "a"}, {"users", "[1].x", "users[1].x"}, {"s[0].m", "q", "s[0].m.q"}} {
		if got := JoinPath(tc[0], tc[1]); got != tc[2] {
			t.Errorf("JoinPath(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}

func TestInFile(t *testing.T) {
	es := Errors{{Path: "a.b", Line: 3, Msg: "bad"}, {Path: "c", Msg: "required"}, {Line: 7, Msg: "syntax"}}
	err := es.InFile("gw.yaml")
	if want := "gw.yaml:3: a.b: bad\ngw.yaml: c: required\ngw.yaml:7: syntax"; err.Error() != want {
		t.Fatalf("%q, want %q", err, want)
	}
	var back Errors
	if !errors.As(err, &back) || len(back) != 3 {
		t.Fatalf("errors.As: %v", back)
	}
}

const doc = `gateway:
  id: gw
streams:
  - name: scans
    max_age: 7d
  - {name: t, priority: 1}
sources:
  - name: s
    mqtt:
      subscriptions:
        - topic: a/b
          qos: 7
`

func TestLocate(t *testing.T) {
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{
		"gateway.id": 2, "streams[0].max_age": 5, "streams[1].priority": 6, "streams[1]": 6,
		"sources[0].mqtt.subscriptions[0].qos": 12, "sources[0].mqtt.subscriptions[0].topic": 11,
		"sources[0].mqtt.keepalive":            9,  // absent: where its section is
		"sources[0].mqtt.subscriptions[3].qos": 11, // no such item: the sequence "uplink.service_url": 1,
	} {
		if got := Locate(&root, path); got != want {
			t.Errorf("Locate(%q) = %d, want %d", path, got, want)
		}
	}
	es := Errors{{Path: "streams[0].max_age"}, {Path: "gateway.id", Line: 40}}
	LocateAll(&root, es)
	if es[0].Line != 5 || es[1].Line != 40 {
		t.Fatalf("LocateAll: %v", es)
	}
	idx := PathsByLine(&root, "")
	for line, want := range map[int]string{2: "gateway.id", 5: "streams[0].max_age", 11: "sources[0].mqtt.subscriptions[0].topic", 12: "sources[0].mqtt.subscriptions[0].qos"} {
		if idx[line] != want {
			t.Errorf("PathsByLine[%d] = %q, want %q", line, idx[line], want)
		}
	}
}
