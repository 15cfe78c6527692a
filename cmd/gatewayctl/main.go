// Command gatewayctl is the operator CLI of the edge gateway fleet.
//
// Every subcommand lives in its own file and registers itself from init
// with addCommand. The only global flag is the output format; each
// command has the flags of what it talks to, as local flags: the Cassandra
// flags (cassandraFlags) on events and trace, the Pulsar flags
// (pulsarFlags) on config push, config show and status. Flag defaults come
// from the environment that newRoot is given, then from built-in defaults.
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
	"github.com/spf13/pflag"

	"github.com/edgegw/gateway/sink"
	"github.com/edgegw/gateway/units"
)

// commands are the subcommand constructors, added from init by each
// subcommand's file.
var commands []func(*app) *cobra.Command

// addCommand registers a subcommand; call it from init.
func addCommand(f func(*app) *cobra.Command) { commands = append(commands, f) }

// app holds what every subcommand shares: the global flags, the logger
// and the environment the flag defaults come from.
type app struct {
	output string // table or json
	log    *slog.Logger
	getenv func(string) string
}

// env is the environment variable key, or fallback when it is unset or
// empty.
func (a *app) env(key, fallback string) string {
	if v := a.getenv(key); v != "" {
		return v
	}
	return fallback
}

// Environment variables behind the Cassandra flags.
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
	a := &app{log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})), getenv: getenv}
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
	root.PersistentFlags().StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	for _, c := range commands {
		root.AddCommand(c(a))
	}
	return root
}

// cassandraFlags say how to reach the sink's Cassandra tables (events,
// trace). Each falls back to an environment variable, then to a default.
type cassandraFlags struct {
	hosts        string // comma-separated host[:port]
	keyspace     string
	consistency  string
	user         string
	passwordFile string
	timeout      time.Duration
}

// add registers the flags on fs (local flags of the command that queries).
func (c *cassandraFlags) add(fs *pflag.FlagSet, a *app) {
	fs.StringVar(&c.hosts, "cassandra", a.env(envCassandra, "127.0.0.1:9042"), "Cassandra contact points, host[:port],... (env "+envCassandra+")")
	fs.StringVar(&c.keyspace, "keyspace", a.env(envKeyspace, "edge"), "keyspace of the sink's tables (env "+envKeyspace+")")
	fs.StringVar(&c.consistency, "consistency", a.env(envConsistency, "local_quorum"), "read consistency (env "+envConsistency+")")
	fs.StringVar(&c.user, "cassandra-user", a.env(envUser, ""), "Cassandra username (env "+envUser+")")
	fs.StringVar(&c.passwordFile, "cassandra-password-file", a.env(envPasswordFile, ""), "file holding the Cassandra password (env "+envPasswordFile+")")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "timeout of each Cassandra request")
}

// withSession connects to Cassandra, runs f and closes the session.
func (c *cassandraFlags) withSession(a *app, f func(*gocql.Session) error) error {
	cc := sink.DefaultConfig().Cassandra
	cc.Hosts = strings.Split(c.hosts, ",")
	cc.Keyspace = c.keyspace
	cc.Consistency = c.consistency
	cc.Username, cc.PasswordFile = c.user, c.passwordFile
	cc.Timeout, cc.ConnectTimeout = units.Duration(c.timeout), units.Duration(c.timeout)
	s, err := sink.Connect(cc, a.log)
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
