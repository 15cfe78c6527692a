package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/edgegw/gateway/buffer"
)

const bufferUsage = `usage: gateway buffer COMMAND FILE
  stats FILE             per-stream depth, bytes, oldest age, seqs, drops
  gaps FILE              recorded gaps (dropped ranges) per stream
  quarantine FILE [N]    the N oldest quarantined inputs (default 50)
  check FILE             bbolt consistency check plus the store's own counters
  compact FILE           rewrite the file without free space (gateway must be stopped)
stats, gaps, quarantine and check open the file read-only; none of them moves a
damaged file aside.`

// bufferCommand is the field tool for a buffer file: `gateway buffer ...`.
func bufferCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("buffer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, bufferUsage) }
	timeout := fs.Duration("lock-timeout", 2*time.Second, "how long to wait for the file lock")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	args = fs.Args()
	if len(args) < 2 {
		fs.Usage()
		return 2
	}
	cmd, path := args[0], args[1]
	opts := &buffer.Options{
		ReadOnly:     cmd != "compact",
		NoMoveAside:  true,
		LockTimeout:  *timeout,
		CompactRatio: -1,
		Logger:       slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	switch cmd {
	case "stats", "gaps", "quarantine", "check", "compact":
	default:
		fs.Usage()
		return 2
	}
	db, err := buffer.Open(path, opts)
	if err != nil {
		fmt.Fprintf(stderr, "gateway buffer %s: %v\n", cmd, err)
		if errors.Is(err, buffer.ErrLocked) {
			fmt.Fprintln(stderr, "the file is in use: stop the gateway first (its status page shows live stats)")
		}
		return 1
	}
	defer db.Close()
	switch cmd {
	case "stats":
		printStats(stdout, db.Stats())
	case "gaps":
		return printGaps(db, stdout, stderr)
	case "quarantine":
		n := 50
		if len(args) > 2 {
			if n, err = strconv.Atoi(args[2]); err != nil || n <= 0 {
				fmt.Fprintf(stderr, "gateway buffer quarantine: bad count %q\n", args[2])
				return 2
			}
		}
		items, err := db.QuarantineList(n)
		if err != nil {
			fmt.Fprintf(stderr, "gateway buffer quarantine: %v\n", err)
			return 1
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tTIME\tSOURCE\tREASON\tBYTES\tPAYLOAD")
		for _, q := range items {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d\t%.60q\n", q.ID, q.Time.UTC().Format(time.RFC3339), q.Source, q.Reason, len(q.Payload), q.Payload)
		}
		_ = w.Flush()
		fmt.Fprintf(stdout, "%d held, %d dropped to stay within the bound\n", db.Stats().Quarantined, db.Stats().QuarantineDropped)
	case "check":
		if err := db.Check(context.Background()); err != nil {
			fmt.Fprintf(stdout, "%s: FAILED\n%v\n", path, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: ok\n", path)
	case "compact":
		before := db.Stats().FileSize
		if err := db.Compact(context.Background()); err != nil {
			fmt.Fprintf(stderr, "gateway buffer compact: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: %d -> %d bytes\n", path, before, db.Stats().FileSize)
	}
	return 0
}

func printStats(out io.Writer, s buffer.Stats) {
	fmt.Fprintf(out, "file %d bytes, live payload %d bytes, boot %d, replaced-bad-file %d, quarantine %d (dropped %d)\n",
		s.FileSize, s.LiveBytes, s.Boot, s.Recovered, s.Quarantined, s.QuarantineDropped)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "STREAM\tPRIO\tPOLICY\tDEPTH\tBYTES\tOLDEST AGE\tFIRST\tNEXT\tACKED\tDROP OVERFLOW\tDROP TTL\tDROP BUDGET\tLIMITS")
	for _, st := range s.Streams {
		c := st.Config
		fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", c.Name, c.Priority, c.Overflow,
			st.Depth, st.Bytes, st.OldestAge.Round(time.Second), st.FirstSeq, st.NextSeq, st.AckedSeq,
			st.Drops.Overflow, st.Drops.TTL, st.Drops.Budget, limits(c))
	}
	_ = w.Flush()
}

func limits(c buffer.StreamConfig) string {
	s := ""
	add := func(format string, v any) {
		if s != "" {
			s += " "
		}
		s += fmt.Sprintf(format, v)
	}
	if c.MaxEvents > 0 {
		add("events<=%d", c.MaxEvents)
	}
	if c.MaxBytes > 0 {
		add("bytes<=%d", c.MaxBytes)
	}
	if c.MaxAge > 0 {
		add("age<=%s", c.MaxAge)
	}
	if s == "" {
		return "none"
	}
	return s
}

func printGaps(db *buffer.DB, stdout, stderr io.Writer) int {
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "STREAM\tFROM\tTO\tCOUNT\tREASON\tAT")
	names := []string{""}
	for _, st := range db.Stats().Streams {
		names = append(names, st.Config.Name)
	}
	for _, name := range names {
		gaps, err := db.Gaps(name)
		if err != nil {
			fmt.Fprintf(stderr, "gateway buffer gaps: %v\n", err)
			return 1
		}
		for _, g := range gaps {
			label, count := name, strconv.FormatUint(g.Count, 10)
			if label == "" {
				label = "(whole store)"
			}
			if g.Reason == buffer.ReasonCorrupt {
				count = "unknown"
			}
			fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%s\n", label, g.From, g.To, count, g.Reason, g.At.UTC().Format(time.RFC3339))
		}
	}
	_ = w.Flush()
	return 0
}
