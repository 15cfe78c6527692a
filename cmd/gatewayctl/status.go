package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgegw/gateway/edge/fleet"
	"github.com/edgegw/gateway/uplink"
)

func init() { addCommand(newStatusCmd) }

// fleetRow is one gateway in `status`.
type fleetRow struct {
	Gateway    string        `json:"gateway"`
	Online     bool          `json:"online"`
	AgeSeconds float64       `json:"heartbeat_age_seconds"`
	Status     *fleet.Status `json:"status,omitempty"`
	Error      string        `json:"error,omitempty"` // the heartbeat does not decode
}

func newStatusCmd(a *app) *cobra.Command {
	p := &pulsarFlags{}
	var watch bool
	var every time.Duration
	c := &cobra.Command{
		Use:   "status [--watch]",
		Short: "List the fleet from the status topic: online, build, config version and state, backlog, uplink, drops",
		Long: `List the fleet from the gateways' heartbeats on the status topic.

A gateway is online when its last heartbeat is younger than three of its
heartbeat intervals and did not say it was stopping. CONFIG is the running
fleet config version (0: the gateway's local file); STATE and REASON are about
the latest bundle the gateway looked at (applied, probation, rejected,
rolled-back; local when none). BACKLOG lists, per stream, the events buffered
and the age of the oldest.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctl, err := p.control(a)
			if err != nil {
				return err
			}
			defer ctl.Close()
			out := cmd.OutOrStdout()
			if !watch {
				ctx, cancel := context.WithTimeout(cmd.Context(), p.timeout)
				defer cancel()
				msgs, err := ctl.Read(ctx, ctl.Topic(p.statusTopic))
				if err != nil {
					return err
				}
				return printFleet(out, a.output, fleetRows(uplink.Latest(msgs), time.Now()))
			}
			return watchFleet(cmd.Context(), ctl, ctl.Topic(p.statusTopic), every, func(rows []fleetRow) error {
				if a.output != "json" {
					fmt.Fprintf(out, "\x1b[H\x1b[2J%s  (every %s; Ctrl-C to stop)\n", time.Now().Format(time.RFC3339), every)
				}
				return printFleet(out, a.output, rows)
			})
		},
	}
	p.add(c.Flags(), a)
	c.Flags().BoolVarP(&watch, "watch", "w", false, "refresh until interrupted")
	c.Flags().DurationVar(&every, "interval", 2*time.Second, "refresh interval of --watch")
	return c
}

// watchFleet follows the status topic and calls show with the fleet every
// interval until ctx ends.
func watchFleet(ctx context.Context, ctl *uplink.Control, topic string, every time.Duration, show func([]fleetRow) error) error {
	if every <= 0 {
		return errors.New("--interval must be positive")
	}
	var mu sync.Mutex
	var latest map[string]uplink.KeyedMessage
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ctl.Watch(wctx, topic, nil, func(l map[string]uplink.KeyedMessage) {
			mu.Lock()
			latest = l
			mu.Unlock()
		})
	}()
	defer func() { cancel(); <-done }()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		mu.Lock()
		l := latest
		mu.Unlock()
		if l != nil {
			if err := show(fleetRows(l, time.Now())); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func fleetRows(latest map[string]uplink.KeyedMessage, now time.Time) []fleetRow {
	rows := make([]fleetRow, 0, len(latest))
	for key, m := range latest {
		r := fleetRow{Gateway: key, AgeSeconds: now.Sub(m.Published).Seconds()}
		s, err := fleet.DecodeStatus(m.Payload)
		if err != nil {
			r.Error = err.Error()
		} else {
			r.Status, r.Online, r.AgeSeconds = s, s.Online(now), now.Sub(s.Time).Seconds()
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Gateway < rows[j].Gateway })
	return rows
}

func printFleet(w io.Writer, format string, rows []fleetRow) error {
	if format == "json" {
		return writeJSON(w, rows)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GATEWAY\tONLINE\tSEEN\tBUILD\tCONFIG\tSTATE\tUPLINK\tDROPS\tBACKLOG\tREASON")
	for _, r := range rows {
		s := r.Status
		if s == nil {
			fmt.Fprintf(tw, "%s\t-\t%s\t-\t-\t-\t-\t-\t-\t%s\n", r.Gateway, age(r.AgeSeconds), r.Error)
			continue
		}
		online := "no"
		switch {
		case r.Online:
			online = "yes"
		case s.Stopping:
			online = "stopped"
		}
		cfg := "local"
		if s.Config.Version > 0 {
			cfg = fmt.Sprintf("v%d", s.Config.Version)
		}
		state := string(s.Config.State)
		if s.Config.Bundle > 0 && s.Config.Bundle != s.Config.Version {
			state = fmt.Sprintf("%s v%d", state, s.Config.Bundle)
		}
		var backlog []string
		for _, st := range s.Streams {
			b := fmt.Sprintf("%s=%d", st.Name, st.Backlog)
			if st.Backlog > 0 {
				b += "/" + age(st.OldestAgeSeconds)
			}
			backlog = append(backlog, b)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s ago\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.Gateway, online, age(r.AgeSeconds), dash(s.Build.Version),
			cfg, state, dash(s.Uplink), s.Drops, dash(strings.Join(backlog, " ")), dash(truncate(s.Config.Reason, 80)))
	}
	return tw.Flush()
}

// age renders seconds as a short duration ("4s", "3m12s", "2h5m").
func age(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
