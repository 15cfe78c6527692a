package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/edgegw/gateway/edge/config"
	"github.com/edgegw/gateway/edge/rules"
	"github.com/edgegw/gateway/event"
)

const rulesUsage = `usage: gateway rules test -config FILE -events FILE [-format json|cbor]
  Replays recorded events through the config's rules on a simulated clock
  (each event's received time, else its time) and prints every firing with
  its actions, every alert and summary, and the rules' counts. Nothing is
  stored and no output is driven. Events are JSON lines (one event
  envelope per line: stream, source, kind, time, received, attrs) or a
  sequence of CBOR event envelopes (.cbor files, or -format cbor).
exit codes: 0 replayed, 1 the config or the events are invalid, 2 usage`

// rulesCommand is `gateway rules ...`.
func rulesCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprintln(stderr, rulesUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("rules test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, rulesUsage) }
	cfgPath := fs.String("config", "", "config `FILE`")
	evPath := fs.String("events", "", "recorded events `FILE`")
	format := fs.String("format", "", "json or cbor (default: cbor for .cbor files, else json)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *cfgPath == "" || *evPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		printConfigError(*cfgPath, err, stderr)
		return exitFailure
	}
	tables, err := rules.LoadTables(cfg.Tables, cfg.Dir)
	if err != nil {
		printConfigError(*cfgPath, cfg.Locate(err), stderr)
		return exitFailure
	}
	set, err := rules.Compile(cfg.Rules, cfg.Tables, rules.Options{Tables: tables})
	if err != nil {
		printConfigError(*cfgPath, err, stderr)
		return exitFailure
	}
	f := *format
	if f == "" {
		f = "json"
		if strings.EqualFold(filepath.Ext(*evPath), ".cbor") {
			f = "cbor"
		}
	}
	evs, err := readEvents(*evPath, f)
	if err != nil {
		fmt.Fprintf(stderr, "gateway rules test: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "%d rules, %d events\n", len(cfg.Rules), len(evs))
	n, err := rules.Replay(set, evs, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "gateway rules test: %s: %v\n", *evPath, err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "%d firings\n", n)
	return exitOK
}

// jsonEvent is an event envelope as a JSON line.
type jsonEvent struct {
	Stream   string         `json:"stream"`
	Source   string         `json:"source"`
	Kind     string         `json:"kind"`
	Time     time.Time      `json:"time"`
	Received time.Time      `json:"received"`
	Attrs    map[string]any `json:"attrs"`
}

// readEvents reads a file of events in format (json lines or cbor).
func readEvents(path, format string) ([]*event.Event, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*event.Event
	switch format {
	case "json":
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for line := 1; sc.Scan(); line++ {
			text := strings.TrimSpace(sc.Text())
			if text == "" || strings.HasPrefix(text, "#") {
				continue
			}
			dec := json.NewDecoder(strings.NewReader(text))
			dec.UseNumber()
			dec.DisallowUnknownFields()
			var je jsonEvent
			if err := dec.Decode(&je); err != nil {
				return nil, fmt.Errorf("%s:%d: %v", path, line, err)
			}
			out = append(out, &event.Event{Stream: je.Stream, Source: je.Source, Kind: je.Kind, Time: je.Time, Received: je.Received, Attrs: numbers(je.Attrs)})
		}
		return out, sc.Err()
	case "cbor":
		dec := cbor.NewDecoder(bytes.NewReader(b))
		for i := 1; ; i++ {
			var raw cbor.RawMessage
			if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
				return out, nil
			} else if err != nil {
				return nil, fmt.Errorf("%s: event %d: %v", path, i, err)
			}
			e, err := event.Unmarshal(raw)
			if err != nil {
				return nil, fmt.Errorf("%s: event %d: %v", path, i, err)
			}
			out = append(out, e)
		}
	}
	return nil, fmt.Errorf("format %q: want json or cbor", format)
}

// numbers turns JSON numbers into int64 or float64, as drivers give them.
func numbers(m map[string]any) map[string]any {
	for k, v := range m {
		switch x := v.(type) {
		case json.Number:
			if i, err := x.Int64(); err == nil {
				m[k] = i
			} else if f, err := x.Float64(); err == nil {
				m[k] = f
			}
		case map[string]any:
			m[k] = numbers(x)
		}
	}
	return m
}
