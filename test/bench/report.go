package main

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// report is what BENCHMARKS.md shows.
type report struct {
	Machine  machine
	Results  []result
	Sizes    []binSize
	Failures []string
	Partial  bool // -only: a subset
}

// figure is one row of a summary table: a metric of a benchmark, the
// baseline it is compared with (a metric of the same benchmark, measured in
// the same run) and their ratio.
type figure struct {
	label     string // {N} is replaced by the benchmark's count metric
	bench     string // "./pkg:BenchmarkName"
	value     string // unit of the value
	base      string // unit of the baseline; "" = none
	baseLabel string
	ratio     string // unit of a reported ratio; "" = value ÷ base
	count     string // unit holding N for {N}
}

type section struct {
	title, intro string
	rows         []figure
}

const pipe = "./test/bench:"

var sections = []section{
	{
		title: "Pipeline: the gateway binary, real Mosquitto and Pulsar",
		intro: "Each row runs `bin/gateway` as a child process (test/harness) and compares it with a bare client doing the least the same job needs, on the same services in the same run. Ratio = gateway ÷ baseline: for rates higher is better (1 = as fast as the bare client), for latencies lower is better.",
		rows: []figure{
			{label: "(a) ingest drain: {N} QoS 1 messages queued at Mosquitto for the gateway's persistent session, drained into the buffer (msgs/s, until all committed)", bench: pipe + "BenchmarkIngestDrain", value: "gw-msgs/s", base: "bare-msgs/s", baseLabel: "bare paho subscriber, same session settings, ack on receipt", ratio: "gw/bare", count: "msgs"},
			{label: "(a) the same, until the driver had acknowledged all of them (msgs/s)", bench: pipe + "BenchmarkIngestDrain", value: "gw-acked-msgs/s", base: "bare-msgs/s", baseLabel: "bare paho subscriber"},
			{label: "(b) sustained MQTT → Pulsar at QoS 1, simulator at full speed: events acknowledged by Pulsar (events/s)", bench: pipe + "BenchmarkSustained", value: "gw-pulsar-events/s", base: "bare-msgs/s", baseLabel: "bare paho subscriber on the same traffic, at the same time", ratio: "pulsar/bare"},
			{label: "(b) the same, events committed to the buffer (events/s)", bench: pipe + "BenchmarkSustained", value: "gw-ingest-events/s", base: "bare-msgs/s", baseLabel: "bare paho subscriber", ratio: "ingest/bare"},
			{label: "(c) publish → Pulsar consumer receipt at 1,000 events/s, p50 (ms)", bench: pipe + "BenchmarkLatency", value: "p50-ms", base: "relay-p50-ms", baseLabel: "bare relay (paho subscriber → pulsar-client-go producer, ack on receipt, nothing stored), same traffic"},
			{label: "(c) the same, p99 (ms)", bench: pipe + "BenchmarkLatency", value: "p99-ms", base: "relay-p99-ms", baseLabel: "bare relay"},
			{label: "(c) of which publish → the gateway's receive stamp, p50 (ms; the MQTT hop and the driver's batching)", bench: pipe + "BenchmarkLatency", value: "gw-receive-p50-ms", base: "mqtt-p50-ms", baseLabel: "publish → bare paho subscriber receipt, same traffic"},
			{label: "(c) publish → Pulsar broker publish time, p50 / p99 (ms; the broker stamps whole ms)", bench: pipe + "BenchmarkLatency", value: "broker-p50-ms", base: "broker-p99-ms", baseLabel: "(p99)", ratio: "-"},
			{label: "(d) drain of a {N}-event backlog to Pulsar after the uplink returns (events/s, from the restart)", bench: pipe + "BenchmarkBacklogDrain", value: "drain-events/s", base: "raw-events/s", baseLabel: "bare pulsar-client-go producer, the uplink's producer settings, same namespace", ratio: "drain/raw", count: "events"},
			{label: "(d) filling that backlog through MQTT with the uplink down (events/s)", bench: pipe + "BenchmarkBacklogDrain", value: "fill-events/s"},
		},
	},
	{
		title: "Components",
		intro: "The packages' own benchmarks (buffer/bench_test.go, uplink/bench_test.go, sink/bench_test.go), each with its raw baseline.",
		rows: []figure{
			{label: "buffer: append, 1 appender (events/s)", bench: "./buffer:BenchmarkAppend/appenders=1", value: "events/s", base: "raw-events/s", baseLabel: "raw bbolt batched put, same events", ratio: "ratio"},
			{label: "buffer: append, 16 appenders (events/s)", bench: "./buffer:BenchmarkAppend/appenders=16", value: "events/s", base: "raw-events/s", baseLabel: "raw bbolt batched put", ratio: "ratio"},
			{label: "buffer: append, 64 appenders (events/s)", bench: "./buffer:BenchmarkAppend/appenders=64", value: "events/s", base: "raw-events/s", baseLabel: "raw bbolt batched put", ratio: "ratio"},
			{label: "buffer: keyed appends (dedup index), 16 appenders (events/s)", bench: "./buffer:BenchmarkAppendRecords", value: "keyed-events/s", base: "plain-events/s", baseLabel: "plain Append, same run", ratio: "keyed-ratio"},
			{label: "buffer: append latency at 1,000 events/s, p50 / p99 (µs)", bench: "./buffer:BenchmarkAppendLatency", value: "p50-µs", base: "p99-µs", baseLabel: "(p99)", ratio: "-"},
			{label: "buffer: read + ack of a 1,000,000-event backlog (events/s)", bench: "./buffer:BenchmarkDrain", value: "events/s"},
			{label: "uplink: forwarder to Pulsar (events/s)", bench: "./uplink:BenchmarkForward", value: "fwd-events/s", base: "raw-events/s", baseLabel: "bare pulsar-client-go producer, same settings", ratio: "fwd/raw"},
			{label: "uplink: send → receipt p50 (ms)", bench: "./uplink:BenchmarkForward", value: "fwd-p50-ms", base: "raw-p50-ms", baseLabel: "bare producer"},
			{label: "uplink: send → receipt p99 (ms)", bench: "./uplink:BenchmarkForward", value: "fwd-p99-ms", base: "raw-p99-ms", baseLabel: "bare producer"},
			{label: "sink: Pulsar → Cassandra (rows/s)", bench: "./sink:BenchmarkSinkVsRawInsert", value: "sink_rows/s", base: "raw_rows/s", baseLabel: "raw gocql INSERT loop, same rows", ratio: "sink/raw"},
			{label: "sink: the same against batched inserts (rows/s)", bench: "./sink:BenchmarkSinkVsRawInsert", value: "sink_rows/s", base: "raw_batched_rows/s", baseLabel: "raw gocql unlogged batches", ratio: "sink/raw_batched"},
		},
	},
	{
		title: "Rules",
		intro: "The edge rules (edge/rules_bench_test.go, edge/rules/bench_test.go): the ingest with 20 rules against the same ingest without rules, in alternating rounds of the same run, and the uplink bytes of a 1 Hz sensor with and without downsampling.",
		rows: []figure{
			{label: "ingest, 20 rules whose conditions all run on every scan (events/s; the worst case)", bench: "./edge:BenchmarkIngestRules/matched=all", value: "rules-events/s", base: "plain-events/s", baseLabel: "the same ingest without rules", ratio: "ratio"},
			{label: "ingest, 20 rules matched by dock (match vars), 2 conditions per scan (events/s)", bench: "./edge:BenchmarkIngestRules/matched=by-dock", value: "rules-events/s", base: "plain-events/s", baseLabel: "the same ingest without rules", ratio: "ratio"},
			{label: "MQTT publish (QoS 1, Mosquitto) → rule → output command at 1,000 scans/s, 1 in 50 a mis-sort: p50 (ms)", bench: "./edge:BenchmarkPublishToOutput", value: "p50-ms", base: "bare-p50-ms", baseLabel: "publish → bare paho subscriber receipt of the same mis-sorts"},
			{label: "the same, p99 (ms)", bench: "./edge:BenchmarkPublishToOutput", value: "p99-ms", base: "bare-p99-ms", baseLabel: "bare paho subscriber"},
			{label: "uplink bytes per hour of a 1 Hz sensor, deadband 0.5 + 1m summaries", bench: "./edge/rules:BenchmarkDownsampleBytes", value: "downsampled-bytes/h", base: "raw-bytes/h", baseLabel: "every reading sent", ratio: "ratio"},
		},
	},
	{
		title: "Memory (resident set, VmRSS)",
		intro: "Sampled from /proc/PID/status every 250 ms while the benchmark ran; peak is the largest sample, VmHWM the kernel's high-water mark. VmRSS counts the pages of the memory-mapped bbolt file the process has touched (the kernel can drop them under pressure); RssAnon is the process's own memory.",
		rows: []figure{
			{label: "gateway at a steady 1,000 events/s: VmRSS mean / peak (MiB)", bench: pipe + "BenchmarkLatency", value: "rss-MiB", base: "rss-peak-MiB", baseLabel: "(peak)", ratio: "-"},
			{label: "the same, RssAnon (heap, stacks) mean / peak (MiB)", bench: pipe + "BenchmarkLatency", value: "anon-MiB", base: "anon-peak-MiB", baseLabel: "(peak)", ratio: "-"},
			{label: "gateway draining the {N}-event backlog to Pulsar: VmRSS mean / peak (MiB)", bench: pipe + "BenchmarkBacklogDrain", value: "rss-MiB", base: "rss-peak-MiB", baseLabel: "(peak)", ratio: "-", count: "events"},
			{label: "the same, RssAnon mean / peak (MiB; the rest of VmRSS is the bbolt file's mapped pages)", bench: pipe + "BenchmarkBacklogDrain", value: "anon-MiB", base: "anon-peak-MiB", baseLabel: "(peak)", ratio: "-"},
			{label: "gateway draining the backlog: VmHWM (MiB)", bench: pipe + "BenchmarkBacklogDrain", value: "hwm-MiB"},
			{label: "gateway ingesting the broker backlog of (a): VmRSS mean / peak (MiB)", bench: pipe + "BenchmarkIngestDrain", value: "rss-MiB", base: "rss-peak-MiB", baseLabel: "(peak)", ratio: "-"},
			{label: "the same, RssAnon mean / peak (MiB)", bench: pipe + "BenchmarkIngestDrain", value: "anon-MiB", base: "anon-peak-MiB", baseLabel: "(peak)", ratio: "-"},
			{label: "buffer file holding the {N}-event backlog (MiB)", bench: pipe + "BenchmarkBacklogDrain", value: "file-MiB", count: "events"},
			{label: "buffer library with a 1,000,000-event backlog open (MiB; whole test process)", bench: "./buffer:BenchmarkBacklogRSS", value: "rss-MiB"},
			{label: "sink draining Pulsar into Cassandra: peak / VmHWM (MiB)", bench: "./sink:BenchmarkSinkVsRawInsert", value: "rss_MiB", base: "hwm_MiB", baseLabel: "(VmHWM)", ratio: "-"},
		},
	},
}

func (rep report) find(bench string) (result, bool) {
	pkg, name, _ := strings.Cut(bench, ":")
	for _, r := range rep.Results {
		if r.Pkg == pkg && r.Name == name && r.Skipped == "" {
			return r, true
		}
	}
	return result{}, false
}

func (rep report) markdown() string {
	var b strings.Builder
	m := rep.Machine
	b.WriteString("# Benchmarks\n\n")
	fmt.Fprintf(&b, "Written by `make bench` (`go run ./test/bench`) on %s; run it again to refresh. ", m.Date.Format("2006-01-02 15:04 MST"))
	b.WriteString("Every baseline is measured in the same run, on the same machine and services, so the ratios are what to compare across machines; ")
	b.WriteString("absolute figures depend on the machine and on whatever else it was doing.\n\n")
	if rep.Partial {
		b.WriteString("**Partial run** (`-only`): only some benchmarks ran.\n\n")
	}
	b.WriteString("## Machine\n\n| | |\n|---|---|\n")
	rows := [][2]string{
		{"CPU", fmt.Sprintf("%s, %d cores visible", m.CPU, m.Cores)},
		{"RAM", m.RAM},
		{"Go", m.Go},
		{"OS", m.OS + ", kernel " + m.Kernel},
		{"Services", m.Services},
		{"Load average (1/5/15 min) at start / end", m.LoadStart + " / " + m.LoadEnd},
		{"Commit", m.Commit},
		{"Date", m.Date.Format(time.RFC3339)},
		{"Whole run", m.Elapsed.Round(time.Second).String()},
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s |\n", r[0], cell(r[1]))
	}
	b.WriteString("\n")

	for _, s := range sections {
		fmt.Fprintf(&b, "## %s\n\n%s\n\n", s.title, s.intro)
		b.WriteString("| figure | value | baseline | ratio |\n|---|---:|---|---:|\n")
		for _, f := range s.rows {
			b.WriteString(rep.row(f))
		}
		b.WriteString("\n")
	}

	b.WriteString("## Binary size\n\n`go build -trimpath -ldflags '-s -w'` of `./cmd/gateway`, `CGO_ENABLED=0`, all drivers and the embedded broker linked.\n\n")
	b.WriteString("| target | bytes | MiB |\n|---|---:|---:|\n")
	for _, s := range rep.Sizes {
		fmt.Fprintf(&b, "| %s | %s | %.1f |\n", s.Target, group(float64(s.Bytes)), float64(s.Bytes)/(1<<20))
	}
	if len(rep.Sizes) == 0 {
		b.WriteString("| — | not built | |\n")
	}
	b.WriteString("\n")

	if len(rep.Failures) > 0 {
		b.WriteString("## Failures\n\n")
		for _, f := range rep.Failures {
			fmt.Fprintf(&b, "- %s\n", oneLine(f))
		}
		b.WriteString("\n")
	}
	b.WriteString(rep.rawTable())
	b.WriteString(method)
	return b.String()
}

func (rep report) row(f figure) string {
	r, ok := rep.find(f.bench)
	label := f.label
	if f.count != "" {
		n := "N"
		if v, ok := r.metric(f.count); ok {
			n = group(v)
		}
		label = strings.ReplaceAll(label, "{N}", n)
	}
	if !ok {
		return fmt.Sprintf("| %s | not run | | |\n", cell(label))
	}
	v, okV := r.metric(f.value)
	if !okV {
		return fmt.Sprintf("| %s | not reported | | |\n", cell(label))
	}
	val := format(v, f.value)
	baseCell, ratioCell := "", ""
	if f.base != "" {
		if bv, okB := r.metric(f.base); okB {
			baseCell = format(bv, f.base) + " — " + f.baseLabel
			switch f.ratio {
			case "-":
			case "":
				if bv != 0 {
					ratioCell = fmt.Sprintf("%.2f", v/bv)
				}
			default:
				if rv, okR := r.metric(f.ratio); okR {
					ratioCell = fmt.Sprintf("%.2f", rv)
				}
			}
		} else {
			baseCell = "not reported — " + f.baseLabel
		}
	}
	return fmt.Sprintf("| %s | %s | %s | %s |\n", cell(label), val, cell(baseCell), ratioCell)
}

// rawTable lists every figure of every benchmark, with its notes.
func (rep report) rawTable() string {
	var b strings.Builder
	b.WriteString("## Every figure\n\nAll metrics as `go test -bench` reported them (ns/op is the whole iteration: for the pipeline benchmarks, the whole run).\n\n")
	b.WriteString("| package | benchmark | iterations | metrics |\n|---|---|---:|---|\n")
	rs := append([]result(nil), rep.Results...)
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Pkg < rs[j].Pkg })
	var notes []string
	for _, r := range rs {
		if r.Skipped != "" {
			fmt.Fprintf(&b, "| %s | %s | — | %s |\n", r.Pkg, r.Name, cell(r.Skipped))
			continue
		}
		var ms []string
		for _, v := range r.Metrics {
			ms = append(ms, format(v.Value, v.Unit)+" "+v.Unit)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s |\n", r.Pkg, r.Name, r.N, cell(strings.Join(ms, " · ")))
		for _, n := range r.Notes {
			notes = append(notes, fmt.Sprintf("%s %s: %s", r.Pkg, r.Name, n))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\nWhat the benchmarks logged:\n\n")
		for _, n := range notes {
			fmt.Fprintf(&b, "- %s\n", oneLine(n))
		}
	}
	b.WriteString("\n")
	return b.String()
}

// format prints v for its unit: rates and counts grouped by thousands,
// times and sizes with sensible decimals.
func format(v float64, unit string) string {
	switch {
	case (strings.HasSuffix(unit, "/s") && math.Abs(v) >= 100) || unit == "msgs" || unit == "events" || unit == "rows":
		return group(math.Round(v))
	case strings.HasSuffix(unit, "-ms") || strings.HasSuffix(unit, "_ms"):
		return strconv.FormatFloat(v, 'f', 1, 64)
	case strings.Contains(unit, "MiB"):
		return strconv.FormatFloat(v, 'f', 1, 64)
	case unit == "ns/op" && v >= 1e6:
		return group(math.Round(v))
	case math.Abs(v) >= 100:
		return group(math.Round(v))
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// group writes an integer with thousands separators: 1,234,567.
func group(v float64) string {
	s := strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func cell(s string) string { return strings.ReplaceAll(oneLine(s), "|", `\|`) }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

const method = `## How the pipeline figures are measured

- **(a) ingest drain.** The gateway (uplink at a dead address, so that only ingest runs) starts once to create its persistent
  session (clean session off, QoS 1 subscriptions) and stops; four QoS 1 publishers then queue N messages of simulator-like
  traffic (4 scanners, 2 sensors) for it at Mosquitto; the clock starts when the gateway process starts and stops when its
  ` + "`edge_gateway_ingest_events_total{result=\"accepted\"}`" + ` reaches N (polled every 20 ms), i.e. when every message is committed
  to bbolt; the second row waits for the MQTT driver's PUBACK count (` + "`edge_gateway_mqtt_acked_total`" + `). Baseline: a bare paho
  client with the driver's settings (persistent session, manual ack, in-order handler, MQTT 3.1.1) draining the same
  backlog on topics of its own, acknowledging each message as it arrives.
- **(b) sustained.** ` + "`cmd/simulate`" + ` at full speed (QoS 1, 4 scanners, 2 sensors) for EDGE_BENCH_SUSTAIN; the rate is the growth
  of ` + "`edge_gateway_uplink_acked_events_total`" + ` (acknowledged by Pulsar) and of the accepted count over the run minus a warm-up at
  each end. Baseline: a bare subscriber on the same topics during the same run (Mosquitto delivers every message to
  both), so that both see the same offered load and the same machine. While the bare subscriber keeps up, its rate is the
  simulator's (sim-msgs/s in the raw table); the gateway falling short of it means Mosquitto queues for the gateway.
- **(c) latency.** The simulator at 1,000 messages/s; every payload carries its publish time (ts), which the gateway keeps as
  the event time; a Pulsar consumer on the events topics takes receipt time − event time (and the broker's publish time
  − event time, and the gateway's receive stamp − event time). Baseline: a bare relay — a paho subscriber with the
  gateway's session settings handing each message to a pulsar-client-go producer with the uplink's settings and acking
  it at once, storing nothing — on the same traffic at the same time, read by the same kind of consumer. A bare paho
  subscriber, also on the same traffic, gives the MQTT hop alone.
- **(d) backlog drain.** N events published through MQTT into the gateway while its uplink points at a dead address; then
  the gateway restarts pointed at the real Pulsar, and the clock runs from the restart until its buffer is empty (every
  event acknowledged by Pulsar, checked against ` + "`edge_gateway_uplink_acked_events_total`" + `). Baseline: a bare pulsar-client-go
  producer with the uplink's settings (batching off, send timeout off, 1,000 pending, LZ4) sending EDGE_BENCH_RAW_N events
  shaped like the gateway's (CBOR envelope, key, event time, sequence ID) to a fresh topic of the same namespace (broker
  deduplication on), from creating its client to the last receipt.
- **(e) memory.** VmRSS of the gateway process during (c) and (d) (and (a)).
- Sizes: EDGE_BENCH_INGEST_N, EDGE_BENCH_PUBLISHERS, EDGE_BENCH_SUSTAIN, EDGE_BENCH_LATENCY, EDGE_BENCH_DRAIN_N,
  EDGE_BENCH_RAW_N (test/bench/pipeline_test.go); UPLINK_BENCH_N; SINK_BENCH_EVENTS. Raw output of the last run:
  ` + "`.state/bench/`" + `.

## Caveats

- One run of each pipeline benchmark, on a shared machine: the services (two JVMs and Mosquitto), the load generators
  and the gateway compete for the same cores, so absolute rates move from run to run; compare the ratios.
- The baselines do less than the gateway by design (no parsing, no durable commit, no CBOR, no ordering across
  reconnects): a ratio below 1 is the price of the guarantees, not necessarily waste.
`

// Sections of BENCHMARKS.md measured by hand (e.g. firmware delta sizes,
// which need builds of two commits) sit between these markers; a new run
// keeps them, before "## Every figure".
const (
	keepBegin = "<!-- kept by make bench: begin -->"
	keepEnd   = "<!-- kept by make bench: end -->"
)

// keepSections copies the kept sections of prev into next.
func keepSections(prev, next string) string {
	var kept []string
	for rest := prev; ; {
		i := strings.Index(rest, keepBegin)
		if i < 0 {
			break
		}
		j := strings.Index(rest[i:], keepEnd)
		if j < 0 {
			break
		}
		kept = append(kept, rest[i:i+j+len(keepEnd)]+"\n\n")
		rest = rest[i+j+len(keepEnd):]
	}
	if len(kept) == 0 {
		return next
	}
	at := strings.Index(next, "## Every figure")
	if at < 0 {
		at = len(next)
	}
	return next[:at] + strings.Join(kept, "") + next[at:]
}
