package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/edge"
	"github.com/edgegw/gateway/edge/config"
	"github.com/edgegw/gateway/edge/logging"
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
		"sources[0].mqtt-embedded.subscriptions[0].qos",
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

// startDoc is a config that validates and starts (%s: the buffer path).
const startDoc = `gateway: {id: start-test}
buffer: {path: %s}
streams: [{name: scans}]
broker: {listen: "127.0.0.1:0", allow_anonymous: true}
sources:
  - name: devices
    driver: mqtt
    mqtt:
      brokers: [embedded]
      subscriptions: [{topic: "x/+device", kind: scan, stream: scans, source: "{device}"}]
uplink: {service_url: "pulsar://127.0.0.1:1", admin_url: "http://127.0.0.1:1"}
http: {listen: "127.0.0.1:0"}
log: {level: info, format: text}
`

// gateway validate refuses what the gateway refuses at start, naming the
// same field and line: each bad config fails validate and "gateway
// -config" alike, and the start path itself (edge.Gateway.Run, or the
// logger setup, given the setting without Config.Validate) refuses the
// same setting.
func TestValidateRefusesWhatStartRefuses(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to string // the change to startDoc
		field    string
		line     int
		mutate   func(*config.Config) // the same change to a valid config
		startErr string               // what Run's error names
	}{
		{"listen address without port", `http: {listen: "127.0.0.1:0"}`, `http: {listen: garbage}`, "http.listen", 12,
			func(c *config.Config) { c.HTTP.Listen = "garbage" }, "http.listen garbage"},
		{"listen port out of range", `http: {listen: "127.0.0.1:0"}`, `http: {listen: "127.0.0.1:70000"}`, "http.listen", 12,
			func(c *config.Config) { c.HTTP.Listen = "127.0.0.1:70000" }, "http.listen 127.0.0.1:70000"},
		{"embedded broker without broker section", "broker: {listen: \"127.0.0.1:0\", allow_anonymous: true}\n", "", "sources[0].mqtt.brokers", 8,
			func(c *config.Config) { c.Broker = nil }, "runs no embedded broker"},
		{"log level", "log: {level: info, format: text}", "log: {level: verbose, format: text}", "log.level", 13,
			func(c *config.Config) { c.Log.Level = "verbose" }, ""},
		{"log format", "log: {level: info, format: text}", "log: {level: info, format: xml}", "log.format", 13,
			func(c *config.Config) { c.Log.Format = "xml" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			good := fmt.Sprintf(startDoc, filepath.Join(dir, "buffer.db"))
			bad := strings.Replace(good, tc.from, tc.to, 1)
			if bad == good {
				t.Fatal("test case does not change the document")
			}
			goodPath, badPath := filepath.Join(dir, "good.yaml"), filepath.Join(dir, "bad.yaml")
			if err := os.WriteFile(goodPath, []byte(good), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(badPath, []byte(bad), 0o600); err != nil {
				t.Fatal(err)
			}

			// gateway validate: one error, at the field and its line.
			var out, errb bytes.Buffer
			if rc := run([]string{"validate", badPath}, &out, &errb); rc != 1 {
				t.Fatalf("validate: rc %d, out %q", rc, out.String())
			}
			want := fmt.Sprintf("%s:%d: %s: ", badPath, tc.line, tc.field)
			if lines := strings.Split(strings.TrimSpace(errb.String()), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], want) {
				t.Fatalf("validate printed\n%s\nwant one line starting %q", errb.String(), want)
			}

			// gateway -config: refuses to start, naming the same field and line.
			out.Reset()
			errb.Reset()
			if rc := run([]string{"-config", badPath}, &out, &errb); rc != 2 {
				t.Fatalf("start: rc %d, stderr %q", rc, errb.String())
			}
			if want := fmt.Sprintf("line %d: %s: ", tc.line, tc.field); !strings.Contains(errb.String(), want) {
				t.Fatalf("start printed\n%s\nwant %q", errb.String(), want)
			}

			// The start path itself refuses the setting: Validate is not
			// stricter than the gateway.
			cfg, err := config.Load(goodPath)
			if err != nil {
				t.Fatalf("the unchanged config: %v", err)
			}
			tc.mutate(cfg)
			if tc.startErr == "" {
				if _, err := logging.New(io.Discard, logging.Options{Level: cfg.Log.Level, Format: cfg.Log.Format}); err == nil {
					t.Fatal("the logger accepts the setting")
				}
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			g := edge.New(cfg, edge.Options{Logger: slog.New(slog.DiscardHandler)})
			if err := g.Run(ctx); err == nil || !strings.Contains(err.Error(), tc.startErr) {
				t.Fatalf("Run: %v, want an error containing %q", err, tc.startErr)
			}
		})
	}
}

// A config file over 4 MiB is refused unread, naming the file and the limit.
func TestValidateRefusesHugeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huge.yaml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(5 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var out, errb bytes.Buffer
	if rc := run([]string{"validate", path}, &out, &errb); rc != 1 {
		t.Fatalf("rc %d", rc)
	}
	if want := path + ": config too large: 5242880 bytes, the limit is 4 MiB (4194304 bytes)\n"; errb.String() != want {
		t.Fatalf("printed %q, want %q", errb.String(), want)
	}
}

// A type error names the key path and line.
func TestValidateTypeError(t *testing.T) {
	good := fmt.Sprintf(startDoc, filepath.Join(t.TempDir(), "buffer.db"))
	bad := strings.Replace(good, "streams: [{name: scans}]", "streams:\n  - name: scans\n    priority: [1]", 1)
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if rc := run([]string{"validate", path}, &out, &errb); rc != 1 {
		t.Fatalf("rc %d", rc)
	}
	if want := path + ":5: streams[0].priority: want an integer, got a sequence\n"; errb.String() != want {
		t.Fatalf("printed %q, want %q", errb.String(), want)
	}
}

// stubDaemon replaces the daemon start for one test and reports whether it
// was called, and with which config file.
func stubDaemon(t *testing.T) (called *bool, cfgPath *string) {
	t.Helper()
	called, cfgPath = new(bool), new(string)
	prev := startDaemon
	startDaemon = func(path string, _ time.Duration, _ string, _ io.Writer) int {
		*called, *cfgPath = true, path
		return 0
	}
	t.Cleanup(func() { startDaemon = prev })
	return called, cfgPath
}

// An unknown command, a stray argument or an unknown flag is a usage error
// (exit 2) that names it, and the daemon is not started.
func TestUnknownArgumentsAreRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"valdate", "x.yaml"}, `unknown command "valdate"`},
		{[]string{"stats"}, `unknown command "stats"`},
		{[]string{"-config", "x.yaml", "extra"}, `unexpected argument "extra"`},
		{[]string{"run", "-config", "x.yaml", "x2.yaml"}, `unexpected argument "x2.yaml"`},
		{[]string{"run", "x.yaml"}, `unexpected argument "x.yaml"`},
		{[]string{"-bogus"}, "-bogus"},
		{[]string{"version", "--long"}, `version takes no arguments, got "--long"`},
		{[]string{"help", "me"}, `help takes no arguments, got "me"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			called, _ := stubDaemon(t)
			var out, errb bytes.Buffer
			if rc := run(tc.args, &out, &errb); rc != 2 {
				t.Errorf("rc %d, want 2", rc)
			}
			if *called {
				t.Error("the daemon was started")
			}
			if !strings.Contains(errb.String(), tc.want) || !strings.Contains(errb.String(), "gateway help") {
				t.Errorf("stderr %q, want it to name %q and point at gateway help", errb.String(), tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("stdout %q, want nothing", out.String())
			}
		})
	}
}

// -h, --help and help print the subcommands, the options and the exit
// codes to stdout and exit 0, without starting the daemon.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"-help"}, {"help"}, {"run", "-h"}, {"-config", "x.yaml", "--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			called, _ := stubDaemon(t)
			var out, errb bytes.Buffer
			if rc := run(args, &out, &errb); rc != 0 {
				t.Fatalf("rc %d, stderr %q", rc, errb.String())
			}
			if *called {
				t.Error("the daemon was started")
			}
			for _, w := range []string{"gateway validate FILE", "gateway buffer COMMAND FILE", "gateway version", "gateway help",
				"  run ", "  validate ", "  buffer ", "  version ", "-config FILE", "-stop-timeout",
				"exit codes:", "  0  success", "  1  failure", "  2  usage error", "RestartPreventExitStatus=2"} {
				if !strings.Contains(out.String(), w) {
					t.Errorf("usage lacks %q:\n%s", w, out.String())
				}
			}
			if errb.Len() != 0 {
				t.Errorf("stderr %q, want nothing", errb.String())
			}
		})
	}
	var out, errb bytes.Buffer
	if rc := run([]string{"validate", "-h"}, &out, &errb); rc != 0 || !strings.Contains(out.String(), "gateway validate FILE") {
		t.Errorf("validate -h: rc %d, out %q, stderr %q", rc, out.String(), errb.String())
	}
}

// The daemon starts with the config given, with or without "run".
func TestRunStartsTheDaemon(t *testing.T) {
	for _, args := range [][]string{{"-config", "x.yaml"}, {"run", "-config", "x.yaml"}, {"run", "-config=x.yaml", "-stop-timeout", "1s"}} {
		called, path := stubDaemon(t)
		var out, errb bytes.Buffer
		if rc := run(args, &out, &errb); rc != 0 || !*called || *path != "x.yaml" {
			t.Errorf("%q: rc %d, started %v with %q, stderr %q", args, rc, *called, *path, errb.String())
		}
	}
	called, path := stubDaemon(t)
	if rc := run(nil, io.Discard, io.Discard); rc != 0 || !*called || *path != "/etc/edgegw/gateway.yaml" {
		t.Errorf("no arguments: rc %d, started %v with %q", rc, *called, *path)
	}
}

// The real daemon exits 2 on a config it cannot load, before it starts
// anything (the unit does not restart on 2).
func TestDaemonInvalidConfigExits2(t *testing.T) {
	var out, errb bytes.Buffer
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	if rc := run([]string{"-config", missing}, &out, &errb); rc != 2 || !strings.Contains(errb.String(), "invalid config") {
		t.Fatalf("rc %d, stderr %q", rc, errb.String())
	}
}
