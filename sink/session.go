package sink

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Connect opens a gocql session to the cluster described by c. The session
// has no default keyspace: the sink's statements name it. It re-reads the
// password file on every call. Nodes that go down are retried every
// c.ReconnectInterval, so a session outlives a Cassandra restart.
func Connect(c CassandraConfig, log *slog.Logger) (*gocql.Session, error) {
	return connect(c, log, nil)
}

// connect is Connect with an optional dialer (tests inject faults with it).
func connect(c CassandraConfig, log *slog.Logger, dialer gocql.Dialer) (*gocql.Session, error) {
	cluster, err := clusterConfig(c, log)
	if err != nil {
		return nil, err
	}
	if dialer != nil {
		cluster.Dialer = dialer
	}
	s, err := cluster.CreateSession()
	if err != nil {
		return nil, fmt.Errorf("sink: connect to cassandra %v: %w", c.Hosts, err)
	}
	return s, nil
}

func clusterConfig(c CassandraConfig, log *slog.Logger) (*gocql.ClusterConfig, error) {
	cluster := gocql.NewCluster(c.Hosts...)
	cluster.Port = c.Port
	cons, err := gocql.ParseConsistencyWrapper(c.Consistency)
	if err != nil {
		return nil, fmt.Errorf("sink: cassandra.consistency: %w", err)
	}
	cluster.Consistency = cons
	cluster.Timeout = c.Timeout.D()
	cluster.ConnectTimeout = c.ConnectTimeout.D()
	cluster.WriteTimeout = c.Timeout.D()
	cluster.ReconnectInterval = c.ReconnectInterval.D()
	cluster.ReconnectionPolicy = &gocql.ExponentialReconnectionPolicy{
		MaxRetries: 5, InitialInterval: 100 * time.Millisecond, MaxInterval: c.ReconnectInterval.D(),
	}
	// The sink retries on its own, with backoff and forever; gocql's retry
	// policy stays off so a failure is seen (and counted) at once.
	cluster.RetryPolicy = nil
	cluster.DefaultIdempotence = true
	cluster.Logger = gocqlLogger{log.With("component", "gocql")}
	if c.Username != "" {
		pw, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("sink: cassandra.password_file: %w", err)
		}
		cluster.Authenticator = gocql.PasswordAuthenticator{Username: c.Username, Password: strings.TrimSpace(string(pw))}
	}
	if c.TLS.Enabled {
		cluster.SslOpts = &gocql.SslOptions{
			Config:                 &tls.Config{MinVersion: tls.VersionTLS12},
			CaPath:                 c.TLS.CAFile,
			CertPath:               c.TLS.CertFile,
			KeyPath:                c.TLS.KeyFile,
			EnableHostVerification: c.TLS.VerifyHostname,
		}
	}
	return cluster, nil
}

// gocqlLogger adapts slog to gocql's StructuredLogger.
type gocqlLogger struct{ l *slog.Logger }

func (g gocqlLogger) attrs(fields []gocql.LogField) []any {
	a := make([]any, 0, len(fields))
	for _, f := range fields {
		a = append(a, slog.Any(f.Name, f.Value.Any()))
	}
	return a
}

func (g gocqlLogger) Error(msg string, fields ...gocql.LogField) { g.l.Error(msg, g.attrs(fields)...) }

func (g gocqlLogger) Warning(msg string, fields ...gocql.LogField) { g.l.Warn(msg, g.attrs(fields)...) }

func (g gocqlLogger) Info(msg string, fields ...gocql.LogField) { g.l.Info(msg, g.attrs(fields)...) }

func (g gocqlLogger) Debug(msg string, fields ...gocql.LogField) { g.l.Debug(msg, g.attrs(fields)...) }
