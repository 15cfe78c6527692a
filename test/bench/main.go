// Command bench runs every benchmark of the project against the real
// Mosquitto, Pulsar and Cassandra that test/ starts (starting the ones that
// are down, and stopping those again), builds the gateway for amd64 and
// arm64 to report its size, and writes BENCHMARKS.md: each figure with the
// raw baseline measured in the same run, their ratio, and the machine.
//
//	go run ./test/bench [-out BENCHMARKS.md] [-only REGEXP] [-logs DIR]
//
// `make bench` runs it. It finds the benchmarks itself (every Benchmark
// function in every package) and runs each package's with the benchtime
// that package documents (benchTimes); the pipeline benchmarks of this
// directory run the real gateway binary once each. Sizes are environment
// variables (see pipeline_test.go, uplink/bench_test.go, sink/bench_test.go).
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/edgegw/gateway/test/testenv"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "BENCHMARKS.md", "report to write (relative to the repository root)")
	only := fs.String("only", "", "run only the benchmarks whose package/Name matches this regexp (the report then holds only them)")
	logs := fs.String("logs", "", "directory for the raw `go test` output (default $EDGE_STATE_DIR/bench or .state/bench)")
	services := fs.Bool("services", true, "start the test services that are down (and stop them afterwards)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var filter *regexp.Regexp
	if *only != "" {
		var err error
		if filter, err = regexp.Compile(*only); err != nil {
			fmt.Fprintf(stderr, "bench: -only: %v\n", err)
			return 2
		}
	}
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	logDir := *logs
	if logDir == "" {
		state := os.Getenv("EDGE_STATE_DIR")
		if state == "" {
			state = filepath.Join(root, ".state")
		}
		logDir = filepath.Join(state, "bench")
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	progress := func(format string, a ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", a...) }

	start := time.Now()
	if *services {
		started, err := servicesUp(root, progress)
		defer servicesDown(root, started, progress)
		if err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
	}
	mach := machineInfo(root)
	steps, err := plan(root, filter)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	var results []result
	var failures []string
	for _, st := range steps {
		progress("%s: %s (benchtime %s)", st.pkg, strings.Join(st.names, " "), st.benchtime)
		t0 := time.Now()
		rs, err := st.run(root, logDir)
		results = append(results, rs...)
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s (%s): %v", st.pkg, strings.Join(st.names, " "), err))
			progress("%s: FAILED: %v (output in %s)", st.pkg, err, st.logFile(logDir))
		}
		progress("%s: done in %s", st.pkg, time.Since(t0).Round(time.Second))
	}
	var sizes []binSize
	if filter == nil || filter.MatchString("binary-size") {
		progress("building cmd/gateway for linux/amd64 and linux/arm64")
		sizes, err = binarySizes(root)
		if err != nil {
			failures = append(failures, "binary sizes: "+err.Error())
		}
	}
	mach.Elapsed = time.Since(start)
	mach.LoadEnd = loadAvg()

	rep := report{Machine: mach, Results: results, Sizes: sizes, Failures: failures, Partial: filter != nil}
	path := *out
	if !filepath.IsAbs(path) {
		path = filepath.Join(root, path)
	}
	md := rep.markdown()
	if prev, err := os.ReadFile(path); err == nil {
		md = keepSections(string(prev), md)
	}
	if err := os.WriteFile(path, []byte(sanitize(md, root)), 0o644); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "bench: wrote %s in %s (%d figures, %d failures)\n", *out, mach.Elapsed.Round(time.Second), len(results), len(failures))
	if len(failures) > 0 {
		return 1
	}
	return 0
}

// repoRoot is the directory holding go.mod.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run it inside the repository")
	}
	return filepath.Dir(mod), nil
}

// servicesUp starts, with test/<svc>.sh up, the services whose port does
// not answer, and returns their names (to stop them again afterwards).
func servicesUp(root string, progress func(string, ...any)) ([]string, error) {
	var started []string
	for _, svc := range []struct{ name, port string }{
		{"mosquitto", testenv.MQTTPort()}, {"pulsar", testenv.PulsarPort()}, {"cassandra", testenv.CassandraPort()},
	} {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(testenv.Host(), svc.port), 2*time.Second); err == nil {
			c.Close()
			continue
		}
		progress("starting %s (test/%s.sh up)", svc.name, svc.name)
		cmd := exec.Command(filepath.Join(root, "test", svc.name+".sh"), "up")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return started, fmt.Errorf("test/%s.sh up: %v", svc.name, err)
		}
		started = append(started, svc.name)
	}
	return started, nil
}

func servicesDown(root string, started []string, progress func(string, ...any)) {
	for _, svc := range started {
		progress("stopping %s, which this run started", svc)
		cmd := exec.Command(filepath.Join(root, "test", svc+".sh"), "down")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		_ = cmd.Run()
	}
}

// sanitize keeps paths of this machine out of the committed report.
func sanitize(s, root string) string {
	repl := []string{root + "/", "", root, "."}
	if home, err := os.UserHomeDir(); err == nil && home != "/" {
		repl = append(repl, home, "~")
	}
	if tmp := os.TempDir(); tmp != "" && tmp != "/" {
		repl = append(repl, tmp+"/", "$TMPDIR/")
	}
	return strings.NewReplacer(repl...).Replace(s)
}
