package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("cassandra:\n  keyspace: edge2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("cassandra:\n  keyspace: edge-2\n  ttl:\n    events: -1d\n  porrt: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"validate", good}, 0, "ok"},
		{[]string{"validate", filepath.Join("..", "..", "configs", "sink.yaml")}, 0, "ok"},
		{[]string{"validate", bad}, 1, "bad.yaml:4: cassandra.ttl.events: \"-1d\" is not a duration"},
		{[]string{"validate", filepath.Join(dir, "missing.yaml")}, 1, "no such file"},
		{[]string{"validate"}, 2, "usage"},
		{[]string{}, 2, "usage"},
		{[]string{"-config", good, "extra"}, 2, "usage"},
		{[]string{"-config", good, "-log-level", "loud"}, 2, "-log-level"},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.out) {
			t.Errorf("sink %v = %d, %q %q; want %d and %q", tc.args, code, out.String(), errb.String(), tc.code, tc.out)
		}
	}
}

func TestInvalidConfigFieldPaths(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("cassandra:\n  keyspace: edge-2\nwrite:\n  concurrency: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"validate", path}, &out, &errb); code != 1 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"cassandra.keyspace", "write.concurrency"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("error %q does not name %s", errb.String(), want)
		}
	}
}
