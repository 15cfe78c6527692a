package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/spf13/cobra"

	"github.com/edgegw/gateway/sink"
	"github.com/edgegw/gateway/units"
)

func init() { addCommand(newEventsCmd) }

func newEventsCmd(a *app) *cobra.Command {
	var (
		gateway, since string
		limit          int
		db             cassandraFlags
	)
	c := &cobra.Command{
		Use:   "events --gateway G --since T",
		Short: "Show the recent events of one gateway, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			from, err := parseSince(since, now)
			if err != nil {
				return err
			}
			return db.withSession(a, func(s *gocql.Session) error {
				evs, err := sink.NewQuerier(s, db.keyspace).Events(cmd.Context(),
					sink.EventsQuery{Gateway: gateway, Since: from, Until: now, Limit: limit})
				if err != nil {
					return err
				}
				return printRows(cmd.OutOrStdout(), a.output, evs, "TIME\tSTREAM\tSEQ\tSOURCE\tKIND\tATTRS", func(e sink.EventRow) string {
					return fmt.Sprintf("%s\t%s\t%d\t%s\t%s\t%s", e.Time.Format(time.RFC3339Nano), e.Stream, e.Seq, e.Source, e.Kind, attrsText(e.Attrs))
				})
			})
		},
	}
	db.add(c.Flags(), a)
	c.Flags().StringVar(&gateway, "gateway", "", "gateway ID (required)")
	c.Flags().StringVar(&since, "since", "1h", "start: RFC 3339 time, or a duration back from now (e.g. 1h, 90m)")
	c.Flags().IntVar(&limit, "limit", 100, "show at most N events (0: all)")
	_ = c.MarkFlagRequired("gateway")
	return c
}

// parseSince reads an RFC 3339 time or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := units.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("--since: want an RFC 3339 time or a duration like 1h, got %q", s)
	}
	return now.Add(-d.D()), nil
}

func attrsText(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, " ")
}
