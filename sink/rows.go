package sink

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/units"
)

// Table names.
const (
	TableEvents         = "events"
	TableScansByBarcode = "scans_by_barcode"
	TableReadings       = "readings"
	TableGaps           = "gaps"
)

// row is one upsert: the table, the partition it lands in (rows of one
// partition may share an unlogged batch), the bound values of the table's
// insert statement (TTL last) and an estimate of its size.
type row struct {
	table     string
	partition string
	values    []any
	size      int
}

// day is the UTC calendar day of t, the partition bucket of the events and
// readings tables.
func day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// errRange is returned for an event whose numbers do not fit Cassandra's
// bigint; such an event is dead-lettered.
type errRange struct{ field string }

func (e errRange) Error() string { return "event: " + e.field + " exceeds the range of a bigint" }

func bigint(field string, v uint64) (int64, error) {
	if v > math.MaxInt64 {
		return 0, errRange{field}
	}
	return int64(v), nil
}

// deriveRows returns every row an event writes: always one in events, plus
// one in scans_by_barcode for a scan with a barcode, in readings for a
// reading, and in gaps for a well-formed gap. payload is the event's
// encoding, kept in the events row as the source of truth.
func deriveRows(e *event.Event, payload []byte, ttl TTLConfig) ([]row, error) {
	seq, err := bigint("seq", e.Seq)
	if err != nil {
		return nil, err
	}
	boot, err := bigint("boot", e.Boot)
	if err != nil {
		return nil, err
	}
	mono, err := bigint("mono", e.Mono)
	if err != nil {
		return nil, err
	}
	// Missing values are bound as unset, not null: a null is a tombstone.
	var attrs, received any = gocql.UnsetValue, gocql.UnsetValue
	as := attrStrings(e.Attrs)
	if as != nil {
		attrs = as
	}
	if !e.Received.IsZero() {
		received = e.Received
	}
	d := day(e.Time)
	key := e.Gateway + "\x00" + d.Format(time.DateOnly)
	rows := []row{{
		table:     TableEvents,
		partition: key,
		values: []any{e.Gateway, d, e.Time, e.Stream, seq, e.Source, e.Kind, received,
			boot, mono, attrs, payload, ttlSeconds(ttl.Events)},
		size: 96 + len(payload) + len(e.Gateway) + len(e.Stream) + len(e.Source) + len(e.Kind) + attrsSize(as),
	}}
	switch e.Kind {
	case event.KindScan:
		bc, _ := e.Attrs["barcode"].(string)
		if bc == "" {
			break
		}
		sym, _ := e.Attrs["symbology"].(string)
		dock, _ := e.Attrs["dock"].(string)
		scanner, ok := e.Attrs["scanner"].(string)
		if !ok {
			scanner, _ = e.Attrs["device"].(string)
		}
		rows = append(rows, row{
			table:     TableScansByBarcode,
			partition: bc,
			values: []any{bc, e.Time, e.Gateway, e.Stream, seq, e.Source, dock, scanner, sym,
				received, ttlSeconds(ttl.ScansByBarcode)},
			size: 64 + len(bc) + len(e.Gateway) + len(e.Stream) + len(e.Source) + len(dock) + len(scanner) + len(sym),
		})
	case event.KindReading:
		var value any = gocql.UnsetValue
		if v, ok := number(e.Attrs["value"]); ok {
			value = v
		}
		unit, _ := e.Attrs["unit"].(string)
		rows = append(rows, row{
			table:     TableReadings,
			partition: e.Gateway + "\x00" + e.Source + "\x00" + d.Format(time.DateOnly),
			values: []any{e.Gateway, e.Source, d, e.Time, e.Stream, seq, e.Kind, value, unit, attrs,
				ttlSeconds(ttl.Readings)},
			size: 64 + len(e.Gateway) + len(e.Source) + len(e.Stream) + len(unit) + attrsSize(as),
		})
	case event.KindGap:
		g, err := event.GapOf(e)
		if err != nil {
			// The event itself is kept in events; only the gaps row needs
			// its attributes.
			break
		}
		// from/to/count are bounded by seq, which fits a bigint; values past
		// it (a malformed gap) are clamped rather than refused.
		rows = append(rows, row{
			table:     TableGaps,
			partition: e.Gateway + "\x00" + e.Stream,
			values: []any{e.Gateway, e.Stream, seq, clamp(g.From), clamp(g.To), clamp(g.Count), g.Reason,
				e.Time, e.Source, ttlSeconds(ttl.Gaps)},
			size: 64 + len(e.Gateway) + len(e.Stream) + len(g.Reason) + len(e.Source),
		})
	}
	return rows, nil
}

func clamp(v uint64) int64 { return int64(min(v, math.MaxInt64)) }

func ttlSeconds(d units.Duration) int { return int(d.D() / time.Second) }

// number returns a numeric attribute as a float64.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// attrStrings renders attribute values as text for the attrs map<text,
// text> columns: strings as they are, numbers in Go syntax, booleans as
// true/false, times in RFC 3339 with nanoseconds, bytes in hex. The typed
// values stay in the events payload.
func attrStrings(attrs map[string]any) map[string]string {
	if len(attrs) == 0 {
		return nil
	}
	m := make(map[string]string, len(attrs))
	for k, v := range attrs {
		m[k] = AttrString(v)
	}
	return m
}

// AttrString renders one attribute value as attrStrings does.
func AttrString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []byte:
		return hex.EncodeToString(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

func attrsSize(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v) + 8
	}
	return n
}
