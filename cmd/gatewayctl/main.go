// Command gatewayctl is the operator CLI of the edge gateway fleet.
//
// Global flags say how to reach Cassandra (each falls back to an environment
// variable, then to a default); every subcommand lives in its own file and
// registers itself from init with addCommand.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/spf13/cobra"

	"github.com/edgegw/gateway/sink"
)

// commands are the subcommand constructors, added from init by each
// subcommand's file.
var commands []func(*app) *cobra.Command

// addCommand registers a subcommand; call it from init.
func addCommand(f func(*app) *cobra.Command) { commands = append(commands, f) }

// app holds the global flags shared by the subcommands.
type app struct {
	cassandra    string // comma-separated host[:port]
	keyspace     string
	consistency  string
	user         string
	passwordFile string
	timeout      time.Duration
	output       string // table or json
	log          *slog.Logger
}

// Environment variables behind the global flags.
const (
	envCassandra    = "EDGE_CASSANDRA"
	envKeyspace     = "EDGE_KEYSPACE"
	envConsistency  = "EDGE_CASSANDRA_CONSISTENCY"
	envUser         = "EDGE_CASSANDRA_USER"
	envPasswordFile = "EDGE_CASSANDRA_PASSWORD_FILE"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot(os.Getenv, os.Stdout, os.Stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		os.Exit(1)
	}
}

// newRoot builds the command tree; getenv supplies the flag fallbacks.
func newRoot(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	a := &app{log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))}
	root := &cobra.Command{
		Use:           "gatewayctl",
		Short:         "Operate the edge gateway fleet and query its events",
		SilenceUsage:  true,
		SilenceErrors: false,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if a.output != "table" && a.output != "json" {
				return fmt.Errorf("--output: want table or json, got %q", a.output)
			}
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	def := func(key, fallback string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return fallback
	}
	f := root.PersistentFlags()
	f.StringVar(&a.cassandra, "cassandra", def(envCassandra, "127.0.0.1:9042"), "Cassandra contact points, host[:port],... (env "+envCassandra+")")
	f.StringVar(&a.keyspace, "keyspace", def(envKeyspace, "edge"), "keyspace of the sink's tables (env "+envKeyspace+")")
	f.StringVar(&a.consistency, "consistency", def(envConsistency, "local_quorum"), "read consistency (env "+envConsistency+")")
	f.StringVar(&a.user, "cassandra-user", def(envUser, ""), "Cassandra username (env "+envUser+")")
	f.StringVar(&a.passwordFile, "cassandra-password-file", def(envPasswordFile, ""), "file holding the Cassandra password (env "+envPasswordFile+")")
	f.DurationVar(&a.timeout, "timeout", 10*time.Second, "timeout of each Cassandra request")
	f.StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	for _, c := range commands {
		root.AddCommand(c(a))
	}
	return root
}

// withSession connects to Cassandra, runs f and closes the session.
func (a *app) withSession(f func(*gocql.Session) error) error {
	c := sink.DefaultConfig().Cassandra
	c.Hosts = strings.Split(a.cassandra, ",")
	c.Keyspace = a.keyspace
	c.Consistency = a.consistency
	c.Username, c.PasswordFile = a.user, a.passwordFile
	c.Timeout, c.ConnectTimeout = sink.Duration(a.timeout), sink.Duration(a.timeout)
	s, err := sink.Connect(c, a.log)
	if err != nil {
		return err
	}
	defer s.Close()
	return f(s)
}

// writeJSON prints v as indented JSON.
// printRows writes rows as indented JSON (an empty list, never null) when
// output is json, else as a table: header, then line(row) for each row,
// both tab-separated.
func printRows[T any](w io.Writer, output string, rows []T, header string, line func(T) string) error {
	if output == "json" {
		if rows == nil {
			rows = []T{}
		}
		return writeJSON(w, rows)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, line(r))
	}
	return tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
