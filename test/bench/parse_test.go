package main

import (
	"strings"
	"testing"
	"time"
)

const sampleOutput = `goos: linux
goarch: amd64
pkg: github.com/edgegw/gateway/buffer
cpu: AMD EPYC
BenchmarkAppend/appenders=1-2         	    3000	    712345 ns/op	   0.28 MB/s	      1404 events/s	      1603 raw-events/s	         0.8760 ratio	         1.000 events/commit
BenchmarkAppend/appenders=16-2        	   40000	     52345 ns/op	  19100 events/s	     24000 raw-events/s	         0.7958 ratio
BenchmarkBacklogRSS-2                 	       1	9123456789 ns/op	        31.50 rss-MiB
--- BENCH: BenchmarkBacklogRSS-2
    bench_test.go:250: backlog of 1000000 events
--- SKIP: BenchmarkNoProc-2
    bench_test.go:260: no /proc/self/status: open: no such file
BenchmarkDrain
--- FAIL: BenchmarkDrain
    bench_test.go:199: drained 12
PASS
ok  	github.com/edgegw/gateway/buffer	52.1s
`

func TestParse(t *testing.T) {
	p := parser{pkg: "./buffer"}
	var rs []result
	for _, line := range strings.Split(sampleOutput, "\n") {
		if r, ok := p.line(line); ok {
			rs = append(rs, r)
		}
	}
	rs = p.finish(rs)
	if len(rs) != 5 {
		t.Fatalf("%d results: %+v", len(rs), rs)
	}
	if rs[0].Name != "BenchmarkAppend/appenders=1" || rs[0].N != 3000 {
		t.Fatalf("first: %+v", rs[0])
	}
	if v, ok := rs[1].metric("raw-events/s"); !ok || v != 24000 {
		t.Fatalf("raw-events/s of %s: %v %v", rs[1].Name, v, ok)
	}
	if v, _ := rs[0].metric("events/commit"); v != 1 {
		t.Fatalf("events/commit %v", v)
	}
	if rs[2].Name != "BenchmarkBacklogRSS" || len(rs[2].Notes) != 1 || rs[2].Notes[0] != "backlog of 1000000 events" {
		t.Fatalf("notes: %+v", rs[2])
	}
	if rs[3].Name != "BenchmarkDrain" || !strings.HasPrefix(rs[3].Skipped, "FAIL: drained 12") {
		t.Fatalf("failed: %+v", rs[3])
	}
	if rs[4].Name != "BenchmarkNoProc" || !strings.HasPrefix(rs[4].Skipped, "SKIP: no /proc") {
		t.Fatalf("skipped: %+v", rs[4])
	}
}

func TestReport(t *testing.T) {
	rep := report{
		Machine: machine{CPU: "Test CPU", Cores: 2, Date: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)},
		Results: []result{
			{Pkg: "./test/bench", Name: "BenchmarkIngestDrain", N: 1, Metrics: []value{
				{12345.6, "gw-msgs/s"}, {20000, "bare-msgs/s"}, {0.617, "gw/bare"}, {200000, "msgs"}}},
			{Pkg: "./uplink", Name: "BenchmarkForward", N: 3, Metrics: []value{{9000, "fwd-events/s"}, {12000, "raw-events/s"}, {0.75, "fwd/raw"}, {4.25, "fwd-p50-ms"}, {3.5, "raw-p50-ms"}}},
			{Pkg: "./sink", Name: "BenchmarkSinkVsRawInsert", Skipped: "SKIP: no cassandra"},
		},
		Sizes:    []binSize{{Target: "linux/arm64", Bytes: 23456789}},
		Failures: []string{"./sink (BenchmarkSinkVsRawInsert): go test: exit status 1"},
	}
	md := rep.markdown()
	for _, want := range []string{
		"| CPU | Test CPU, 2 cores visible |",
		"| (a) ingest drain: 200,000 QoS 1 messages queued",
		"| 12,346 | 20,000 — bare paho subscriber, same session settings, ack on receipt | 0.62 |",
		"| uplink: forwarder to Pulsar (events/s) | 9,000 | 12,000 — bare pulsar-client-go producer, same settings | 0.75 |",
		"| uplink: send → receipt p50 (ms) | 4.2 | 3.5 — bare producer | 1.21 |",
		"| sink: Pulsar → Cassandra (rows/s) | not run | | |",
		"| (d) drain of a N-event backlog",
		"| linux/arm64 | 23,456,789 | 22.4 |",
		"## Failures",
		"| ./sink | BenchmarkSinkVsRawInsert | — | SKIP: no cassandra |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}

func TestSanitize(t *testing.T) {
	got := sanitize("wrote /home/u/src/gw/BENCHMARKS.md from /home/u/src/gw", "/home/u/src/gw")
	if strings.Contains(got, "/home/u/src/gw") {
		t.Fatalf("path left in %q", got)
	}
}

func TestBenchtimes(t *testing.T) {
	for _, tt := range []struct{ pkg, name, want string }{
		{"buffer", "BenchmarkDrain", "1x"},
		{"buffer", "BenchmarkAppend", "2s"},
		{"uplink", "BenchmarkForward", "3x"},
		{"uplink", "BenchmarkMessage", "1s"},
		{"sink", "BenchmarkSinkVsRawInsert", "1x"},
		{"test/bench", "BenchmarkLatency", "1x"},
		{"event", "BenchmarkMarshal", "1s"},
	} {
		if got := benchtimeFor(tt.pkg, tt.name); got != tt.want {
			t.Errorf("%s %s: %s, want %s", tt.pkg, tt.name, got, tt.want)
		}
	}
	if !reBenchFunc.MatchString("func BenchmarkX(b *testing.B) {") || reBenchFunc.MatchString("func benchmarkX(b *testing.B) {") {
		t.Fatal("benchmark function pattern")
	}
}

func TestKeepSections(t *testing.T) {
	prev := "# B\n\n## Old\n\n" + keepBegin + "\n## OTA\n\nbytes\n" + keepEnd + "\n\n## Every figure\n\nold\n"
	next := "# B\n\n## New\n\n## Every figure\n\nnew\n"
	want := "# B\n\n## New\n\n" + keepBegin + "\n## OTA\n\nbytes\n" + keepEnd + "\n\n## Every figure\n\nnew\n"
	if got := keepSections(prev, next); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got := keepSections("nothing kept", next); got != next {
		t.Fatalf("without kept sections: %q", got)
	}
}
