package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every gateway config shipped in configs/ validates.
func TestShippedConfigsValidate(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if filepath.Base(f) == "sink.yaml" {
			continue // the cloud sink's config, validated by cmd/sink
		}
		n++
		var out, errb bytes.Buffer
		if rc := run([]string{"validate", f}, &out, &errb); rc != 0 {
			t.Errorf("%s: rc %d\n%s", f, rc, errb.String())
		}
		if !strings.Contains(out.String(), "ok") {
			t.Errorf("%s: output %q", f, out.String())
		}
	}
	if n < 3 {
		t.Fatalf("found %d gateway configs, want at least dev, warehouse and vehicle", n)
	}
}

// validate prints every error with file, line and field.
func TestValidateReportsFieldAndLine(t *testing.T) {
	src, err := os.ReadFile("../../configs/dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(src), "overflow: drop-oldest", "overflow: drop-newest", 1)
	bad = strings.Replace(bad, "kind: scan\n", "kind: scan\n          qos: 5\n", 1)
	bad = strings.Replace(bad, "service_url: pulsar://127.0.0.1:16650", "service_url: 127.0.0.1", 1)
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if rc := run([]string{"validate", path}, &out, &errb); rc != 1 {
		t.Fatalf("rc %d, want 1", rc)
	}
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	want := []string{
		"streams[1].overflow",
		"sources[0].mqtt.subscriptions[0].qos",
		"uplink.service_url",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(lines), len(want), errb.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], path+":") || !strings.Contains(lines[i], w) {
			t.Errorf("error %d = %q, want file:line: %s", i, lines[i], w)
		}
		// The line number points at the offending key.
		var ln int
		rest := strings.TrimPrefix(lines[i], path+":")
		if _, err := fmt.Sscanf(rest, "%d", &ln); err != nil || ln == 0 {
			t.Errorf("error %d has no line number: %q", i, lines[i])
			continue
		}
		if got := strings.Split(bad, "\n")[ln-1]; !strings.Contains(got, lastKey(w)) {
			t.Errorf("error %d points at line %d %q, want the line of %s", i, ln, got, w)
		}
	}
}

func lastKey(path string) string {
	p := path[strings.LastIndex(path, ".")+1:]
	if i := strings.IndexByte(p, '['); i >= 0 {
		p = p[:i]
	}
	return p
}

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if rc := run([]string{"version"}, &out, &errb); rc != 0 || !strings.HasPrefix(out.String(), "gateway dev (commit unknown, go") {
		t.Fatalf("rc %d, out %q", rc, out.String())
	}
}
