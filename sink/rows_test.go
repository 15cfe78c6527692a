package sink

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/edgegw/gateway/event"
)

func testEvent(kind string, attrs map[string]any) *event.Event {
	return &event.Event{
		Gateway: "gw1", Stream: "scans", Seq: 42, Source: "dock3-scanner", Kind: kind,
		Time:     time.Date(2025, 3, 4, 23, 59, 59, 123456000, time.UTC),
		Received: time.Date(2025, 3, 5, 0, 0, 0, 5000, time.UTC),
		Boot:     3, Mono: 99, Attrs: attrs,
	}
}

func columns(t *testing.T, name string) int {
	for _, tb := range tables {
		if tb.name == name {
			if len(tb.columns) != len(tb.types) {
				t.Fatalf("table %s: %d columns, %d types", name, len(tb.columns), len(tb.types))
			}
			return len(tb.columns)
		}
	}
	t.Fatalf("no table %s", name)
	return 0
}

func TestDeriveRows(t *testing.T) {
	ttl := DefaultConfig().Cassandra.TTL
	for _, tc := range []struct {
		name   string
		e      *event.Event
		tables []string
	}{
		{"scan", testEvent("scan", map[string]any{"barcode": "PKG1", "dock": "d3", "scanner": "s1"}), []string{"events", "scans_by_barcode"}},
		{"scan without barcode", testEvent("scan", map[string]any{"symbology": "ean13"}), []string{"events"}},
		{"reading", testEvent("reading", map[string]any{"value": 21.5, "unit": "C"}), []string{"events", "readings"}},
		{"gap", testEvent("gap", map[string]any{"from": int64(10), "to": int64(19), "count": int64(10), "reason": "overflow"}), []string{"events", "gaps"}},
		{"malformed gap", testEvent("gap", map[string]any{"from": int64(10)}), []string{"events"}},
		{"gpio", testEvent("gpio", map[string]any{"pin": "GPIO17", "level": true}), []string{"events"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := deriveRows(tc.e, []byte{0xa0}, ttl)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != len(tc.tables) {
				t.Fatalf("got %d rows, want %v", len(rows), tc.tables)
			}
			for i, r := range rows {
				if r.table != tc.tables[i] {
					t.Errorf("row %d in %s, want %s", i, r.table, tc.tables[i])
				}
				if got, want := len(r.values), columns(t, r.table)+1; got != want {
					t.Errorf("%s: %d values, want %d (columns + ttl)", r.table, got, want)
				}
				if r.size <= 0 || r.partition == "" {
					t.Errorf("%s: size %d partition %q", r.table, r.size, r.partition)
				}
			}
			ev := rows[0].values
			if ev[1] != time.Date(2025, 3, 4, 0, 0, 0, 0, time.UTC) {
				t.Errorf("day = %v, want the UTC day of the event time", ev[1])
			}
			if ev[12] != 90*24*3600 {
				t.Errorf("ttl = %v", ev[12])
			}
		})
	}
}

func TestDeriveRowsScanColumns(t *testing.T) {
	e := testEvent("scan", map[string]any{"barcode": "PKG1", "device": "zebra-7", "symbology": "code128"})
	rows, err := deriveRows(e, nil, TTLConfig{})
	if err != nil {
		t.Fatal(err)
	}
	v := rows[1].values // barcode time gateway stream seq source dock scanner symbology received ttl
	if v[0] != "PKG1" || v[2] != "gw1" || v[4] != int64(42) || v[5] != "dock3-scanner" || v[6] != "" ||
		v[7] != "zebra-7" || v[8] != "code128" || v[10] != 0 {
		t.Errorf("scan row = %v", v)
	}
}

func TestDeriveRowsUnset(t *testing.T) {
	e := testEvent("reading", map[string]any{"unit": "C"}) // no value
	e.Received = time.Time{}
	rows, err := deriveRows(e, []byte{1}, TTLConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// events: received (7); readings: value (7), and attrs stay set.
	if rows[0].values[7] != gocql.UnsetValue || rows[1].values[7] != gocql.UnsetValue {
		t.Errorf("missing values must be unset (no tombstones): %v / %v", rows[0].values, rows[1].values)
	}
	e.Attrs = nil
	rows, _ = deriveRows(e, []byte{1}, TTLConfig{})
	if rows[0].values[10] != gocql.UnsetValue || rows[1].values[9] != gocql.UnsetValue {
		t.Errorf("no attrs must be unset: %v / %v", rows[0].values, rows[1].values)
	}
}

func TestDeriveRowsRange(t *testing.T) {
	e := testEvent("scan", nil)
	e.Seq = math.MaxUint64
	_, err := deriveRows(e, nil, TTLConfig{})
	var re errRange
	if !errors.As(err, &re) || re.field != "seq" {
		t.Fatalf("err = %v, want a seq range error", err)
	}
}

func TestAttrString(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{"x", "x"}, {int64(-3), "-3"}, {uint64(math.MaxUint64), "18446744073709551615"}, {0.1, "0.1"},
		{true, "true"}, {[]byte{1, 0xab}, "01ab"}, {time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC), "2025-01-02T03:04:05.000006Z"},
	} {
		if got := AttrString(tc.v); got != tc.want {
			t.Errorf("AttrString(%#v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestPlanChunks(t *testing.T) {
	mk := func(table, part string, size int) row { return row{table: table, partition: part, size: size} }
	j1, j2 := &job{}, &job{}
	items := []item{
		{j1, []row{mk("events", "a", 10), mk("scans_by_barcode", "b1", 10)}},
		{j2, []row{mk("events", "a", 10), mk("scans_by_barcode", "b2", 10)}},
		{j1, []row{mk("events", "a", 10), mk("events", "a", 100), mk("events", "c", 500)}},
	}
	var got []string
	for _, c := range plan(items, 3, 50) {
		s := c[0].row.table + "/" + c[0].row.partition
		for _, p := range c {
			if p.row.table != c[0].row.table || p.row.partition != c[0].row.partition {
				t.Fatalf("chunk mixes partitions: %v", c)
			}
			s += fmt.Sprintf(" %d", p.row.size)
		}
		got = append(got, s)
	}
	// events/a has four rows: three fit (row cap 3), the 100-byte one is
	// over the byte cap and goes alone.
	want := []string{"events/a 10 10 10", "events/a 100", "scans_by_barcode/b1 10", "scans_by_barcode/b2 10", "events/c 500"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("chunks = %q, want %q", got, want)
	}
}

func TestJobSettle(t *testing.T) {
	var results []error
	newJob := func(n int32) *job {
		j := &job{done: func(err error) { results = append(results, err) }}
		j.left.Store(n)
		return j
	}
	poison := &PoisonError{Err: errors.New("too big")}

	j := newJob(2)
	j.settle(nil)
	if len(results) != 0 {
		t.Fatal("done before all rows settled")
	}
	j.settle(nil)
	if len(results) != 1 || results[0] != nil {
		t.Fatalf("results = %v", results)
	}

	j = newJob(3)
	j.settle(poison)
	j.settle(errAbandoned)
	j.settle(nil)
	if len(results) != 2 || !errors.Is(results[1], errAbandoned) {
		t.Fatalf("abandoned must win over poison (never dead-letter a half-written message): %v", results)
	}

	j = newJob(2)
	j.settle(nil)
	j.settle(poison)
	var pe *PoisonError
	if len(results) != 3 || !errors.As(results[2], &pe) {
		t.Fatalf("results = %v", results)
	}
}
