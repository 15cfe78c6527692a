package sink

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// table is one Cassandra table the sink writes: its columns in the order of
// a row's values (deriveRows), and its definition after the column list.
type table struct {
	name    string
	columns []string
	types   []string
	tail    string // PRIMARY KEY and WITH clauses
}

var tables = []table{
	{
		name: TableEvents,
		columns: []string{"gateway", "day", "time", "stream", "seq", "source", "kind", "received",
			"boot", "mono", "attrs", "payload"},
		types: []string{"text", "date", "timestamp", "text", "bigint", "text", "text", "timestamp",
			"bigint", "bigint", "frozen<map<text, text>>", "blob"},
		tail: `PRIMARY KEY ((gateway, day), time, stream, seq)
) WITH CLUSTERING ORDER BY (time DESC, stream ASC, seq ASC)
  AND compaction = {'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'DAYS', 'compaction_window_size': 1}`,
	},
	{
		name: TableScansByBarcode,
		columns: []string{"barcode", "time", "gateway", "stream", "seq", "source", "dock", "scanner",
			"symbology", "received"},
		types: []string{"text", "timestamp", "text", "text", "bigint", "text", "text", "text",
			"text", "timestamp"},
		tail: `PRIMARY KEY ((barcode), time, gateway, stream, seq)
) WITH CLUSTERING ORDER BY (time DESC, gateway ASC, stream ASC, seq ASC)`,
	},
	{
		name: TableReadings,
		columns: []string{"gateway", "source", "day", "time", "stream", "seq", "kind", "value", "unit",
			"attrs"},
		types: []string{"text", "text", "date", "timestamp", "text", "bigint", "text", "double", "text",
			"frozen<map<text, text>>"},
		tail: `PRIMARY KEY ((gateway, source, day), time, stream, seq)
) WITH CLUSTERING ORDER BY (time DESC, stream ASC, seq ASC)
  AND compaction = {'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'DAYS', 'compaction_window_size': 1}`,
	},
	{
		name:    TableGaps,
		columns: []string{"gateway", "stream", "seq", "from_seq", "to_seq", "count", "reason", "time", "source"},
		types:   []string{"text", "text", "bigint", "bigint", "bigint", "bigint", "text", "timestamp", "text"},
		tail: `PRIMARY KEY ((gateway, stream), seq)
) WITH CLUSTERING ORDER BY (seq DESC)`,
	},
}

func (t table) create(ks string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s.%s (\n", ks, t.name)
	for i, c := range t.columns {
		fmt.Fprintf(&b, "  %s %s,\n", c, t.types[i])
	}
	b.WriteString("  " + t.tail)
	return b.String()
}

// insert is the upsert of one row; the TTL is bound last (0 = none).
func (t table) insert(ks string) string {
	return fmt.Sprintf("INSERT INTO %s.%s (%s) VALUES (%s) USING TTL ?", ks, t.name,
		strings.Join(t.columns, ", "), strings.TrimSuffix(strings.Repeat("?, ", len(t.columns)), ", "))
}

// migration is one schema version: statements that must each be idempotent
// (CREATE ... IF NOT EXISTS, or an ALTER whose "already exists" error is
// ignored), because a migrator that dies half-way is followed by another
// that runs the whole step again.
type migration struct {
	version int
	stmts   func(ks string) []string
}

var migrations = []migration{
	{version: 1, stmts: func(ks string) []string {
		s := make([]string, 0, len(tables))
		for _, t := range tables {
			s = append(s, t.create(ks))
		}
		return s
	}},
}

// SchemaVersion is the schema version this build of the sink creates: the
// version of the last migration.
const SchemaVersion = 1

func keyspaceDDL(c CassandraConfig) string {
	var repl string
	if c.Replication.Class == "NetworkTopologyStrategy" {
		parts := []string{"'class': 'NetworkTopologyStrategy'"}
		for _, dc := range slices.Sorted(maps.Keys(c.Replication.Datacenters)) {
			parts = append(parts, fmt.Sprintf("'%s': %d", dc, c.Replication.Datacenters[dc]))
		}
		repl = strings.Join(parts, ", ")
	} else {
		repl = fmt.Sprintf("'class': 'SimpleStrategy', 'replication_factor': %d", c.Replication.Factor)
	}
	return fmt.Sprintf("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {%s}", c.Keyspace, repl)
}

func versionTableDDL(ks string) string {
	return "CREATE TABLE IF NOT EXISTS " + ks + `.schema_version (
  name text PRIMARY KEY,
  version int,
  owner text,
  updated timestamp
)`
}
