package sink

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSchemaVersionIsLastMigration(t *testing.T) {
	if got := migrations[len(migrations)-1].version; got != SchemaVersion {
		t.Fatalf("last migration is %d, SchemaVersion %d", got, SchemaVersion)
	}
	for i, m := range migrations {
		if m.version != i+1 {
			t.Fatalf("migration %d has version %d", i, m.version)
		}
		for _, s := range m.stmts("ks") {
			if !strings.Contains(s, "IF NOT EXISTS") {
				t.Errorf("migration %d statement is not idempotent: %s", m.version, s)
			}
		}
	}
}

// TestMigrateConcurrent starts three migrations of a fresh keyspace at once,
// each on its own session as three sinks would: all succeed, the version is
// reached, the tables are there, and running again changes nothing.
func TestMigrateConcurrent(t *testing.T) {
	it := newITest(t)
	c := it.config().Cassandra
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		s, err := Connect(c, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		wg.Go(func() { errs[i] = Migrate(ctx, s, c, fmt.Sprintf("sink-%d", i), testLogger(t)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migration %d: %v", i, err)
		}
	}
	check := func() {
		v, holder, err := readVersion(ctx, it.session, c.Keyspace)
		if err != nil || v != SchemaVersion || holder != "" {
			t.Fatalf("schema_version = %d, owner %q, %v; want %d and no owner", v, holder, err, SchemaVersion)
		}
		for _, tb := range tables {
			if n := it.count(tb.name); n != 0 {
				t.Errorf("table %s: count %d, want an empty table", tb.name, n)
			}
		}
	}
	check()
	if err := Migrate(ctx, it.session, c, "again", testLogger(t)); err != nil {
		t.Fatal(err)
	}
	check()
}

// TestMigrateWaitsForLockHolder: while another instance holds the lock and
// has not reached the version, Migrate waits; once the lock expires or is
// released, it migrates.
func TestMigrateWaitsForLockHolder(t *testing.T) {
	it := newITest(t)
	c := it.config().Cassandra
	ks := c.Keyspace
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, ddl := range []string{keyspaceDDL(c), versionTableDDL(ks)} {
		if err := execDDL(ctx, it.session, ddl); err != nil {
			t.Fatal(err)
		}
	}
	// A dead migrator's lock, expiring in 3 seconds.
	if applied, err := it.session.Query("INSERT INTO "+ks+".schema_version (name, version) VALUES (?, 0) IF NOT EXISTS",
		schemaName).MapScanCAS(map[string]any{}); err != nil || !applied {
		t.Fatalf("version row: %v %v", applied, err)
	}
	if applied, err := it.session.Query("UPDATE "+ks+".schema_version USING TTL 3 SET owner = 'dead' WHERE name = ? IF owner = null",
		schemaName).MapScanCAS(map[string]any{}); err != nil || !applied {
		t.Fatalf("lock: %v %v", applied, err)
	}
	start := time.Now()
	if err := Migrate(ctx, it.session, c, "live", testLogger(t)); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 2*time.Second {
		t.Errorf("migrated after %s, while the lock was held for 3s", waited)
	}
	if v, _, err := readVersion(ctx, it.session, ks); err != nil || v != SchemaVersion {
		t.Fatalf("version %d, %v", v, err)
	}
}

// TestImports keeps the sink apart from the gateway: it shares only the
// event codec, the leaf package that parses config sizes, and the leaf
// retry backoff (internal/backoff, which imports nothing of the gateway).
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		rest, ok := strings.CutPrefix(p, "github.com/edgegw/gateway/")
		if ok && rest != "sink" && rest != "event" && rest != "units" && rest != "internal/backoff" {
			t.Errorf("sink depends on %s", p)
		}
	}
}
