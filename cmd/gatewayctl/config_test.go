package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/edge/fleet"
	"github.com/edgegw/gateway/test/harness"
	"github.com/edgegw/gateway/test/testenv"
	"github.com/edgegw/gateway/uplink"
)

const pushDoc = `streams:
  - name: scans
    max_events: 1000
uplink:
  service_url: pulsar://broker:6650
  admin_url: http://broker:8080
`

// keyFixture makes an operator key and a document in a temp dir.
func keyFixture(t *testing.T) (dir, key, doc string) {
	dir = t.TempDir()
	mustCtl(t, "keys", "gen", "--out", dir)
	doc = filepath.Join(dir, "doc.yaml")
	if err := os.WriteFile(doc, []byte(pushDoc), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, filepath.Join(dir, "operator.key"), doc
}

func TestConfigPushRefusesLocally(t *testing.T) {
	dir, key, doc := keyFixture(t)
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("streams:\n  - name: scans\n    overflow: sometimes\n"+pushDoc[strings.Index(pushDoc, "uplink"):]), 0o644)
	open := filepath.Join(dir, "open.key")
	k, _ := os.ReadFile(key)
	_ = os.WriteFile(open, k, 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no target", []string{"-f", doc, "--key", key}, "--target GATEWAY-ID or --group LABEL"},
		{"both", []string{"--target", "a", "--group", "b", "-f", doc, "--key", key}, "exclude each other"},
		{"bad target", []string{"--target", "a/b", "-f", doc, "--key", key}, "target name"},
		{"invalid document", []string{"--target", "a", "-f", bad, "--key", key}, "line 3: streams[0].overflow"},
		{"key readable by others", []string{"--target", "a", "-f", doc, "--key", open}, "too open"},
		{"no key", []string{"--target", "a", "-f", doc}, "required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"config", "push", "--pulsar", "pulsar://127.0.0.1:1", "--pulsar-timeout", "2s"}, tc.args...)
			_, _, err := runCtl(t, args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	// A local-only setting is a warning; --dry-run publishes nothing (the
	// Pulsar URL is dead).
	lo := filepath.Join(dir, "lo.yaml")
	_ = os.WriteFile(lo, []byte(pushDoc+"gateway:\n  id: dock-1\n"), 0o644)
	out, errs, err := runCtl(t, "config", "push", "--pulsar", "pulsar://127.0.0.1:1", "--target", "dock-1", "-f", lo, "--key", key, "--dry-run")
	if err != nil || !strings.Contains(out, "dry run") || !strings.Contains(errs, "local-only settings [gateway.id]") {
		t.Fatalf("dry run: %v\n%s\n%s", err, out, errs)
	}
}

// A document with per-gateway placeholders passes a dry run (with a note);
// checked against a gateway's local file, the values it lacks are named
// with their setting and line.
func TestConfigPushDryRunPlaceholders(t *testing.T) {
	dir, key, _ := keyFixture(t)
	doc := filepath.Join(dir, "group.yaml")
	_ = os.WriteFile(doc, []byte(strings.Replace(pushDoc, "service_url: pulsar://broker:6650", "service_url: ${local:pulsar}", 1)), 0o644)
	local := func(values string) string {
		f := filepath.Join(dir, "local.yaml")
		_ = os.WriteFile(f, []byte("gateway:\n  id: dock-1\nbuffer:\n  path: b.db\nstreams:\n  - name: scans\nuplink:\n  service_url: pulsar://127.0.0.1:6650\n  admin_url: http://127.0.0.1:8080\n"+values), 0o644)
		return f
	}
	args := []string{"config", "push", "--pulsar", "pulsar://127.0.0.1:1", "--group", "docks", "-f", doc, "--key", key, "--dry-run"}
	out, errs, err := runCtl(t, args...)
	if err != nil || !strings.Contains(out, "dry run") || !strings.Contains(errs, "has placeholders") {
		t.Fatalf("dry run: %v\n%s\n%s", err, out, errs)
	}
	_, _, err = runCtl(t, append(args, "--local", local(""))...)
	if err == nil || !strings.Contains(err.Error(), "for gateway dock-1") || !strings.Contains(err.Error(), "uplink.service_url: ${local:pulsar} is not defined") {
		t.Fatalf("--local without the value: %v", err)
	}
	line := strings.Count(pushDoc[:strings.Index(pushDoc, "service_url")], "\n") + 1
	if !strings.Contains(err.Error(), fmt.Sprintf("line %d:", line)) {
		t.Fatalf("the error does not name line %d: %v", line, err)
	}
	out, _, err = runCtl(t, append(args, "--local", local("fleet:\n  local_values:\n    pulsar: pulsar://10.9.0.1:6650\n"))...)
	if err != nil || !strings.Contains(out, "dry run") {
		t.Fatalf("--local with the value: %v\n%s", err, out)
	}
}

func TestConfigPushAndShow(t *testing.T) {
	pulsarURL, _ := testenv.Pulsar(t)
	ns := strings.SplitN(harness.Namespace(t, "ctlpush"), "/", 2)
	dir, key, doc := keyFixture(t)
	flags := []string{"--pulsar", pulsarURL, "--tenant", ns[0], "--namespace", ns[1]}
	push := func(extra ...string) pushResult {
		t.Helper()
		var r pushResult
		args := append(append([]string{"config", "push", "-o", "json", "-f", doc, "--key", key}, flags...), extra...)
		if err := json.Unmarshal([]byte(mustCtl(t, args...)), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Versions grow across targets.
	if r := push("--target", "dock-1"); r.Version != 1 || r.Key != "gw:dock-1" {
		t.Fatalf("first push %+v", r)
	}
	if r := push("--group", "east"); r.Version != 2 || r.Key != "group:east" {
		t.Fatalf("group push %+v", r)
	}
	if r := push("--target", "dock-1"); r.Version != 3 {
		t.Fatalf("third push %+v", r)
	}
	if _, _, err := runCtl(t, append([]string{"config", "push", "--target", "dock-1", "--version", "3", "-f", doc, "--key", key}, flags...)...); err == nil ||
		!strings.Contains(err.Error(), "exists already") {
		t.Fatalf("a version not newer was pushed: %v", err)
	}

	// show: one target, with its document and the signature checked.
	var one shownBundle
	args := append([]string{"config", "show", "--target", "dock-1", "-o", "json", "--trusted-keys", filepath.Join(dir, "operator.pub")}, flags...)
	if err := json.Unmarshal([]byte(mustCtl(t, args...)), &one); err != nil {
		t.Fatal(err)
	}
	if one.Version != 3 || one.Signature != "ok" || one.Document != pushDoc || one.KeyID == "" || one.IssuedAt.IsZero() {
		t.Fatalf("show %+v", one)
	}
	table := mustCtl(t, append([]string{"config", "show"}, flags...)...)
	if !strings.Contains(table, "gw:dock-1") || !strings.Contains(table, "group:east") || !strings.Contains(table, "unchecked") {
		t.Fatalf("show all:\n%s", table)
	}
	if _, _, err := runCtl(t, append([]string{"config", "show", "--target", "nobody"}, flags...)...); err == nil {
		t.Fatal("show of a target without bundle succeeded")
	}

	// A gateway reports a higher version on the status topic (the config
	// topic lost it to compaction, say): the next push goes above it. A
	// version a gateway refused (anyone can publish one) does not count.
	o := uplink.DefaultOptions()
	o.ServiceURL, o.AdminURL, o.Tenant, o.Namespace = pulsarURL, "http://unused:1", ns[0], ns[1]
	c, err := uplink.NewControl(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hb, _ := json.Marshal(fleet.Status{Gateway: "dock-9", Time: time.Now(), HeartbeatSeconds: 10,
		Config: fleet.ConfigStatus{Version: 3, Decision: fleet.Decision{State: fleet.StateRolledBack, Bundle: 10}}})
	rogue, _ := json.Marshal(fleet.Status{Gateway: "dock-8", Time: time.Now(), HeartbeatSeconds: 10,
		Config: fleet.ConfigStatus{Version: 3, Decision: fleet.Decision{State: fleet.StateRejected, Bundle: math.MaxUint64}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Publish(ctx, c.Topic("status"), uplink.KeyedMessage{Key: "dock-9", Payload: hb}); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, c.Topic("status"), uplink.KeyedMessage{Key: "dock-8", Payload: rogue}); err != nil {
		t.Fatal(err)
	}
	if r := push("--group", "east"); r.Version != 11 {
		t.Fatalf("push after a reported version 10: %+v", r)
	}
}
