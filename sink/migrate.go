package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/edgegw/gateway/units"
)

// schemaName is the row of schema_version the sink owns.
const schemaName = "sink"

// lockTTL is how long, in seconds, a migrator holds the schema lock without
// renewing it; a migrator that dies releases it by expiry.
const lockTTL = 60

// errLockLost means another instance took the schema lock while we held it
// (ours expired): Migrate starts over.
var errLockLost = errors.New("sink: schema lock lost")

// Migrate creates the keyspace (if missing) and brings the tables to
// SchemaVersion. Several sinks may run it at once: the keyspace and the
// schema_version table are created with IF NOT EXISTS; then one instance
// takes a lock in schema_version with a lightweight transaction, applies the
// missing migrations (each idempotent), advances the version with another
// lightweight transaction and releases the lock, while the others poll until
// the version is reached. Every step waits for schema agreement. owner names
// this instance in the lock.
func Migrate(ctx context.Context, s *gocql.Session, c CassandraConfig, owner string, log *slog.Logger) error {
	ks := c.Keyspace
	for _, ddl := range []string{keyspaceDDL(c), versionTableDDL(ks)} {
		if err := execDDL(ctx, s, ddl); err != nil {
			return err
		}
	}
	poll := newBackoff(RetryConfig{Initial: units.Duration(100 * time.Millisecond), Max: units.Duration(2 * time.Second), Multiplier: 1.5})
	for {
		v, holder, err := readVersion(ctx, s, ks)
		if errors.Is(err, gocql.ErrNotFound) {
			// First start (or the row was deleted): create it, then look again.
			if _, err := s.Query("INSERT INTO "+ks+".schema_version (name, version) VALUES (?, 0) IF NOT EXISTS",
				schemaName).MapScanCASContext(ctx, map[string]any{}); err != nil {
				return fmt.Errorf("sink: schema_version: %w", err)
			}
			continue
		}
		if err != nil {
			return err
		}
		switch {
		case v > SchemaVersion:
			log.Warn("schema is newer than this sink; continuing", "schema_version", v, "known", SchemaVersion)
			fallthrough
		case v == SchemaVersion:
			return s.AwaitSchemaAgreement(ctx)
		case holder == "":
			applied, err := s.Query(fmt.Sprintf("UPDATE %s.schema_version USING TTL %d SET owner = ? WHERE name = ? IF owner = null", ks, lockTTL),
				owner, schemaName).MapScanCASContext(ctx, map[string]any{})
			if err != nil {
				return fmt.Errorf("sink: schema lock: %w", err)
			}
			if applied {
				err := migrateLocked(ctx, s, ks, v, owner, log)
				release(ctx, s, ks, owner, log)
				if err != nil && !errors.Is(err, errLockLost) {
					return err
				}
				continue
			}
		default:
			log.Info("waiting for another sink to migrate the schema", "holder", holder, "schema_version", v)
		}
		if err := sleep(ctx, poll.Next()); err != nil {
			return err
		}
	}
}

func readVersion(ctx context.Context, s *gocql.Session, ks string) (int, string, error) {
	var v int
	var holder string
	err := s.Query("SELECT version, owner FROM "+ks+".schema_version WHERE name = ?", schemaName).
		Consistency(gocql.Serial).ScanContext(ctx, &v, &holder)
	if err != nil {
		return 0, "", fmt.Errorf("sink: read schema version: %w", err)
	}
	return v, holder, nil
}

func migrateLocked(ctx context.Context, s *gocql.Session, ks string, from int, owner string, log *slog.Logger) error {
	for _, m := range migrations {
		if m.version <= from {
			continue
		}
		renewed, err := s.Query(fmt.Sprintf("UPDATE %s.schema_version USING TTL %d SET owner = ? WHERE name = ? IF owner = ?", ks, lockTTL),
			owner, schemaName, owner).MapScanCASContext(ctx, map[string]any{})
		if err != nil {
			return fmt.Errorf("sink: renew schema lock: %w", err)
		}
		if !renewed {
			return errLockLost
		}
		log.Info("migrating schema", "keyspace", ks, "to_version", m.version)
		for _, stmt := range m.stmts(ks) {
			if err := execDDL(ctx, s, stmt); err != nil {
				return err
			}
		}
		if err := s.AwaitSchemaAgreement(ctx); err != nil {
			return fmt.Errorf("sink: schema agreement: %w", err)
		}
		applied, err := s.Query("UPDATE "+ks+".schema_version SET version = ?, updated = ? WHERE name = ? IF owner = ? AND version = ?",
			m.version, time.Now(), schemaName, owner, from).MapScanCASContext(ctx, map[string]any{})
		if err != nil {
			return fmt.Errorf("sink: advance schema version: %w", err)
		}
		if !applied {
			return errLockLost
		}
		from = m.version
	}
	return nil
}

// release gives the lock back; if it fails the lock expires by itself.
func release(ctx context.Context, s *gocql.Session, ks, owner string, log *slog.Logger) {
	if _, err := s.Query("UPDATE "+ks+".schema_version SET owner = null WHERE name = ? IF owner = ?",
		schemaName, owner).MapScanCASContext(ctx, map[string]any{}); err != nil {
		log.Warn("releasing the schema lock failed; it expires by itself", "err", err, "ttl_seconds", lockTTL)
	}
}

// execDDL runs one schema statement; "already exists" is success, since
// every statement is meant to be idempotent.
func execDDL(ctx context.Context, s *gocql.Session, stmt string) error {
	err := s.Query(stmt).ExecContext(ctx)
	var re gocql.RequestError
	if err == nil || errors.As(err, &re) && re.Code() == gocql.ErrCodeAlreadyExists {
		return nil
	}
	return fmt.Errorf("sink: schema: %w (in %q)", err, firstLine(stmt))
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}
