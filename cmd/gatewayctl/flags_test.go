package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// walk calls f for every command of the tree, with its path below the
// root ("config push").
func walk(c *cobra.Command, f func(path string, c *cobra.Command)) {
	for _, sub := range c.Commands() {
		if sub.Name() == "help" || sub.Name() == "completion" {
			continue
		}
		f(strings.TrimPrefix(sub.CommandPath(), "gatewayctl "), sub)
		walk(sub, f)
	}
}

// hasFlag: the command takes the flag, as its own or inherited.
func hasFlag(c *cobra.Command, name string) bool {
	return c.Flags().Lookup(name) != nil || c.InheritedFlags().Lookup(name) != nil
}

// Each command has the flags of what it talks to, and only those: the
// Cassandra flags on events and trace, the Pulsar flags on config push,
// config show, config reset, status and the firmware commands; -o
// everywhere.
func TestFlagsOnlyWhereTheyApply(t *testing.T) {
	root := newRoot(func(string) string { return "" }, &strings.Builder{}, &strings.Builder{})
	cassandra := []string{"cassandra", "keyspace", "consistency", "cassandra-user", "cassandra-password-file", "timeout"}
	pulsar := []string{"pulsar", "pulsar-admin", "tenant", "namespace", "token-file", "tls-ca-file", "tls-cert-file",
		"tls-key-file", "tls-allow-insecure", "pulsar-timeout", "config-topic", "status-topic"}
	want := map[string][]string{ // command -> the flag groups it has
		"events":           {"cassandra"},
		"trace":            {"cassandra"},
		"config push":      {"pulsar"},
		"config show":      {"pulsar"},
		"config reset":     {"pulsar"},
		"status":           {"pulsar"},
		"firmware push":    {"pulsar"},
		"firmware status":  {"pulsar"},
		"firmware rollout": {"pulsar"},
	}
	seen := map[string]bool{}
	walk(root, func(path string, c *cobra.Command) {
		seen[path] = true
		for group, names := range map[string][]string{"cassandra": cassandra, "pulsar": pulsar} {
			wantIt := slices.Contains(want[path], group)
			for _, n := range names {
				if got := hasFlag(c, n); got != wantIt {
					t.Errorf("%s: flag --%s present %v, want %v", path, n, got, wantIt)
				}
				// Local flags everywhere: nothing is inherited but -o.
				if c.InheritedFlags().Lookup(n) != nil {
					t.Errorf("%s: --%s is inherited, want a local flag", path, n)
				}
			}
		}
		if !hasFlag(c, "output") {
			t.Errorf("%s: no -o/--output", path)
		}
	})
	for path := range want {
		if !seen[path] {
			t.Errorf("command %q not found", path)
		}
	}
	// The root has only -o (and cobra's --help).
	root.PersistentFlags().VisitAll(func(f *pflag.Flag) {
		if f.Name != "output" && f.Name != "help" {
			t.Errorf("global flag --%s", f.Name)
		}
	})
}

// Help shows a flag only where it applies, and a Cassandra flag given to a
// command that does not use it is an error, not ignored.
func TestFlagsInHelpAndRefusedElsewhere(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		has, lacks []string
	}{
		{[]string{"events", "--help"}, []string{"--cassandra", "--keyspace", "--timeout"}, []string{"--pulsar"}},
		{[]string{"trace", "--help"}, []string{"--cassandra", "--consistency"}, []string{"--tenant"}},
		{[]string{"config", "push", "--help"}, []string{"--pulsar", "--tenant", "--pulsar-timeout"}, []string{"--cassandra", "--keyspace"}},
		{[]string{"status", "--help"}, []string{"--pulsar", "--status-topic"}, []string{"--cassandra"}},
		{[]string{"keys", "gen", "--help"}, []string{"--out", "--output"}, []string{"--cassandra", "--pulsar", "--keyspace"}},
		{[]string{"version", "--help"}, nil, []string{"--cassandra", "--pulsar"}},
	} {
		out := mustCtl(t, tc.args...)
		for _, w := range tc.has {
			if !strings.Contains(out, w) {
				t.Errorf("%q: help lacks %s:\n%s", tc.args, w, out)
			}
		}
		for _, w := range tc.lacks {
			if strings.Contains(out, w+" ") {
				t.Errorf("%q: help shows %s:\n%s", tc.args, w, out)
			}
		}
	}
	if _, _, err := runCtl(t, "--cassandra", "h:1", "keys", "gen", "--out", t.TempDir()); err == nil || !strings.Contains(err.Error(), "unknown flag: --cassandra") {
		t.Errorf("keys gen --cassandra: %v", err)
	}
}

// Flag defaults come from the environment newRoot is given (not from the
// process environment), for the Pulsar flags as for the Cassandra flags.
func TestFlagDefaultsFromInjectedEnv(t *testing.T) {
	env := map[string]string{
		envPulsarURL: "pulsar+ssl://env-broker:6651", envPulsarTenant: "env-tenant", envPulsarNamespace: "env-ns",
		envPulsarAdminURL: "https://env-admin:8443", envPulsarToken: "/env/token", envPulsarCA: "/env/ca.pem",
		envCassandra: "env-cass:9042", envKeyspace: "env_ks", envConsistency: "one", envUser: "env-user", envPasswordFile: "/env/pw",
	}
	t.Setenv(envPulsarURL, "pulsar://process-env:1") // must not be read
	root := newRoot(func(k string) string { return env[k] }, &strings.Builder{}, &strings.Builder{})
	flags := map[string]map[string]string{
		"pulsar":    {"pulsar": envPulsarURL, "tenant": envPulsarTenant, "namespace": envPulsarNamespace, "pulsar-admin": envPulsarAdminURL, "token-file": envPulsarToken, "tls-ca-file": envPulsarCA},
		"cassandra": {"cassandra": envCassandra, "keyspace": envKeyspace, "consistency": envConsistency, "cassandra-user": envUser, "cassandra-password-file": envPasswordFile},
	}
	for _, path := range [][]string{{"config", "push"}, {"config", "show"}, {"status"}, {"events"}, {"trace"}} {
		c, _, err := root.Find(path)
		if err != nil {
			t.Fatal(err)
		}
		group := "pulsar"
		if path[0] == "events" || path[0] == "trace" {
			group = "cassandra"
		}
		for name, key := range flags[group] {
			if f := c.Flags().Lookup(name); f == nil || f.DefValue != env[key] {
				t.Errorf("%v --%s: default %v, want %q from %s", path, name, f, env[key], key)
			}
		}
	}
}

// Flags may still come before the subcommand's name, as before.
func TestFlagsBeforeSubcommand(t *testing.T) {
	_, key, doc := keyFixture(t)
	out, errs, err := runCtl(t, "config", "--pulsar", "pulsar://127.0.0.1:1", "push", "--target", "dock-1", "-f", doc, "--key", key, "--dry-run")
	if err != nil || !strings.Contains(out, "dry run") {
		t.Fatalf("config --pulsar X push: %v\n%s\n%s", err, out, errs)
	}
}
