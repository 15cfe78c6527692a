package main

import (
	"fmt"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/spf13/cobra"

	"github.com/edgegw/gateway/sink"
)

func init() { addCommand(newTraceCmd) }

func newTraceCmd(a *app) *cobra.Command {
	var limit int
	var db cassandraFlags
	c := &cobra.Command{
		Use:   "trace BARCODE",
		Short: "Show where and when a package was scanned, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return db.withSession(a, func(s *gocql.Session) error {
				scans, err := sink.NewQuerier(s, db.keyspace).Trace(cmd.Context(), args[0], limit)
				if err != nil {
					return err
				}
				return printRows(cmd.OutOrStdout(), a.output, scans, "TIME\tGATEWAY\tDOCK\tSCANNER\tSOURCE\tSTREAM\tSEQ", func(sc sink.Scan) string {
					return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%d", sc.Time.Format(time.RFC3339Nano), sc.Gateway, dash(sc.Dock), dash(sc.Scanner), sc.Source, sc.Stream, sc.Seq)
				})
			})
		},
	}
	db.add(c.Flags(), a)
	c.Flags().IntVar(&limit, "limit", 0, "show at most N scans (0: all)")
	return c
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
