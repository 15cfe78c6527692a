package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// benchTimes says how long each package's benchmarks run, as the packages
// document it; the first row matching a package (by import path suffix) and
// a benchmark name wins. "*" matches every package.
var benchTimes = []struct{ pkg, name, benchtime string }{
	{"buffer", `^Benchmark(Drain|BacklogRSS)$`, "1x"}, // one 1,000,000-event backlog each
	{"buffer", `.`, "2s"},
	{"uplink", `^BenchmarkForward$`, "3x"}, // three rounds against Pulsar
	{"uplink", `.`, "1s"},
	{"sink", `.`, "1x"}, // one run against Pulsar and Cassandra
	{"test/bench", `.`, "1x"},
	{"*", `.`, "1s"},
}

// pkgOrder runs the components before the pipeline, and the pipeline last.
var pkgOrder = []string{"buffer", "uplink", "sink"}

// step is one `go test -bench` invocation.
type step struct {
	pkg       string // import path
	rel       string // ./dir
	names     []string
	benchtime string
}

var reBenchFunc = regexp.MustCompile(`(?m)^func (Benchmark\w*)\(\w+ \*testing\.B\)`)

// plan finds every Benchmark function of every package and groups them into
// steps by benchtime; filter, when set, keeps the "pkg/Name"s it matches.
func plan(root string, filter *regexp.Regexp) ([]step, error) {
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}|{{.Dir}}|{{join .TestGoFiles ","}},{{join .XTestGoFiles ","}}`, "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %v", err)
	}
	var steps []step
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, "|", 3)
		if len(f) != 3 {
			continue
		}
		imp, dir := f[0], f[1]
		var names []string
		for _, file := range strings.Split(f[2], ",") {
			if file == "" {
				continue
			}
			src, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				return nil, err
			}
			for _, m := range reBenchFunc.FindAllStringSubmatch(string(src), -1) {
				names = append(names, m[1])
			}
		}
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			return nil, err
		}
		groups := map[string][]string{}
		for _, n := range names {
			if filter != nil && !filter.MatchString(rel+"/"+n) {
				continue
			}
			bt := benchtimeFor(rel, n)
			groups[bt] = append(groups[bt], n)
		}
		for bt, ns := range groups {
			sort.Strings(ns)
			steps = append(steps, step{pkg: imp, rel: "./" + filepath.ToSlash(rel), names: ns, benchtime: bt})
		}
	}
	rank := func(s step) int {
		for i, p := range pkgOrder {
			if s.rel == "./"+p {
				return i
			}
		}
		if s.rel == "./test/bench" {
			return len(pkgOrder) + 1
		}
		return len(pkgOrder)
	}
	sort.SliceStable(steps, func(i, j int) bool {
		if ri, rj := rank(steps[i]), rank(steps[j]); ri != rj {
			return ri < rj
		}
		if steps[i].rel != steps[j].rel {
			return steps[i].rel < steps[j].rel
		}
		return steps[i].benchtime > steps[j].benchtime
	})
	return steps, nil
}

func benchtimeFor(rel, name string) string {
	for _, r := range benchTimes {
		if (r.pkg == "*" || rel == r.pkg) && regexp.MustCompile(r.name).MatchString(name) {
			return r.benchtime
		}
	}
	return "1s"
}

func (s step) logFile(dir string) string {
	name := strings.NewReplacer("./", "", "/", "_").Replace(s.rel) + "-" + strings.ReplaceAll(s.benchtime, ".", "_") + ".txt"
	return filepath.Join(dir, name)
}

// run runs the step's benchmarks, teeing the output to its log file, and
// parses the results.
func (s step) run(root, logDir string) ([]result, error) {
	re := "^(" + strings.Join(s.names, "|") + ")$"
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", re, "-benchtime", s.benchtime, "-count", "1", "-timeout", "90m", s.rel)
	cmd.Dir = root
	logf, err := os.Create(s.logFile(logDir))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	parsed := make(chan []result, 1)
	go func() {
		var rs []result
		p := parser{pkg: s.rel}
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if r, ok := p.line(line); ok {
				rs = append(rs, r)
				fmt.Fprintf(os.Stderr, "  %s\n", line)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
		parsed <- p.finish(rs)
	}()
	err = cmd.Wait()
	pw.Close()
	rs := <-parsed
	if err != nil {
		return rs, fmt.Errorf("go test: %v", err)
	}
	if len(rs) == 0 {
		return rs, errors.New("no benchmark results in the output")
	}
	return rs, nil
}
