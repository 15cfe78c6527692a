package ingest

import (
	"reflect"
	"strings"
	"testing"
)

func TestPatternMatch(t *testing.T) {
	for _, tc := range []struct {
		filter, topic string
		ok            bool
		vals          map[string]string
	}{
		{"site/+dock/scanner/+device", "site/3/scanner/sc-41", true, map[string]string{"dock": "3", "device": "sc-41"}},
		{"site/+dock/scanner/+device", "site/3/scanner", false, nil},
		{"site/+dock/scanner/+device", "site/3/scanner/a/b", false, nil},
		{"site/+dock/scanner/+device", "site/3/reader/a", false, nil},
		{"site/+/scanner/+", "site/3/scanner/a", true, nil},
		{"site/#rest", "site/a/b/c", true, map[string]string{"rest": "a/b/c"}},
		{"site/#rest", "site", true, map[string]string{"rest": ""}},
		{"site/#", "other/a", false, nil},
		{"#", "a/b", true, nil},
		{"#all", "$SYS/broker", false, nil},
		{"+x/b", "$SYS/b", false, nil},
		{"$SYS/+x", "$SYS/b", true, map[string]string{"x": "b"}},
		{"a/+x/c", "a//c", true, map[string]string{"x": ""}},
		{"a/b", "a/b", true, nil},
		{"a/b", "a/b/", false, nil},
		{"a/+x", "a/+", false, nil},
	} {
		p, err := compilePattern(tc.filter)
		if err != nil {
			t.Fatalf("%s: %v", tc.filter, err)
		}
		vals, ok := p.match(tc.topic)
		if ok != tc.ok || !reflect.DeepEqual(vals, tc.vals) {
			t.Errorf("%q.match(%q) = %v, %v; want %v, %v", tc.filter, tc.topic, vals, ok, tc.vals, tc.ok)
		}
	}
}

func TestCompilePattern(t *testing.T) {
	for _, tc := range []struct{ in, filter, err string }{
		{"site/+dock/scanner/+device", "site/+/scanner/+", ""},
		{"a/#rest", "a/#", ""},
		{"a/+/#", "a/+/#", ""},
		{"", "", "empty"},
		{"a/#x/b", "", "last level"},
		{"a/b+", "", "whole level"},
		{"a/+x/+x", "", "used twice"},
		{"a/+x-y", "", "letters, digits"},
	} {
		p, err := compilePattern(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.err == "" && p.filter != tc.filter:
			t.Errorf("%q: filter %q, want %q", tc.in, p.filter, tc.filter)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
		}
	}
}

func TestTemplate(t *testing.T) {
	tp, err := compileTemplate("{dock}-scanner-{device}@{topic}", []string{"dock", "device"})
	if err != nil {
		t.Fatal(err)
	}
	if got := tp.render("t/1", map[string]string{"dock": "3", "device": "a"}); got != "3-scanner-a@t/1" {
		t.Fatalf("render = %q", got)
	}
	for _, bad := range []string{"{nope}", "{dock", "dock}", "a}{dock}"} {
		if _, err := compileTemplate(bad, []string{"dock"}); err == nil {
			t.Errorf("%q compiled", bad)
		}
	}
}
