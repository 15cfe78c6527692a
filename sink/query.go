package sink

import (
	"context"
	"errors"
	"fmt"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Scan is one row of a package's scan history.
type Scan struct {
	Time      time.Time `json:"time"`
	Barcode   string    `json:"barcode"`
	Gateway   string    `json:"gateway"`
	Dock      string    `json:"dock,omitempty"`
	Scanner   string    `json:"scanner,omitempty"`
	Source    string    `json:"source"`
	Stream    string    `json:"stream"`
	Seq       int64     `json:"seq"`
	Symbology string    `json:"symbology,omitempty"`
	Received  time.Time `json:"received,omitzero"`
}

// EventRow is one row of the events table (without the payload).
type EventRow struct {
	Time     time.Time         `json:"time"`
	Gateway  string            `json:"gateway"`
	Stream   string            `json:"stream"`
	Seq      int64             `json:"seq"`
	Source   string            `json:"source"`
	Kind     string            `json:"kind"`
	Received time.Time         `json:"received,omitzero"`
	Attrs    map[string]string `json:"attrs,omitempty"`
}

// Querier answers operator questions from the sink's tables.
type Querier struct {
	s  *gocql.Session
	ks string
}

// NewQuerier reads the tables of keyspace through s.
func NewQuerier(s *gocql.Session, keyspace string) *Querier { return &Querier{s: s, ks: keyspace} }

// Trace returns the scans of barcode, newest first, at most limit of them
// (limit <= 0: all).
func (q *Querier) Trace(ctx context.Context, barcode string, limit int) ([]Scan, error) {
	stmt := "SELECT barcode, time, gateway, stream, seq, source, dock, scanner, symbology, received FROM " +
		q.ks + ".scans_by_barcode WHERE barcode = ?"
	args := []any{barcode}
	if limit > 0 {
		stmt += " LIMIT ?"
		args = append(args, limit)
	}
	iter := q.s.Query(stmt, args...).IterContext(ctx)
	var out []Scan
	var sc Scan
	for iter.Scan(&sc.Barcode, &sc.Time, &sc.Gateway, &sc.Stream, &sc.Seq, &sc.Source, &sc.Dock, &sc.Scanner,
		&sc.Symbology, &sc.Received) {
		sc.Time, sc.Received = sc.Time.UTC(), sc.Received.UTC()
		out = append(out, sc)
		sc = Scan{}
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("sink: trace %q: %w", barcode, err)
	}
	return out, nil
}

// EventsQuery selects recent events of one gateway.
type EventsQuery struct {
	Gateway string
	Since   time.Time // inclusive; required
	Until   time.Time // inclusive; zero means now
	Limit   int       // <= 0: no limit
}

// maxEventDays bounds how many day partitions one Events call reads.
const maxEventDays = 400

// Events returns the events of q.Gateway with Since <= time <= Until, newest
// first. It reads one (gateway, day) partition per day, from Until's day
// back to Since's, and stops once it has Limit rows.
func (q *Querier) Events(ctx context.Context, eq EventsQuery) ([]EventRow, error) {
	if eq.Gateway == "" {
		return nil, errors.New("sink: events: gateway required")
	}
	until := eq.Until
	if until.IsZero() {
		until = time.Now()
	}
	if eq.Since.After(until) {
		return nil, fmt.Errorf("sink: events: since %s is after until %s", eq.Since.Format(time.RFC3339), until.Format(time.RFC3339))
	}
	first, last := day(eq.Since), day(until)
	if last.Sub(first) > maxEventDays*24*time.Hour {
		return nil, fmt.Errorf("sink: events: more than %d days requested", maxEventDays)
	}
	stmt := "SELECT time, gateway, stream, seq, source, kind, received, attrs FROM " + q.ks +
		".events WHERE gateway = ? AND day = ? AND time >= ? AND time <= ?"
	var out []EventRow
	for d := last; !d.Before(first); d = d.AddDate(0, 0, -1) {
		s, args := stmt, []any{eq.Gateway, d, eq.Since, until}
		if eq.Limit > 0 {
			s += " LIMIT ?"
			args = append(args, eq.Limit-len(out))
		}
		iter := q.s.Query(s, args...).IterContext(ctx)
		var r EventRow
		for iter.Scan(&r.Time, &r.Gateway, &r.Stream, &r.Seq, &r.Source, &r.Kind, &r.Received, &r.Attrs) {
			r.Time, r.Received = r.Time.UTC(), r.Received.UTC()
			out = append(out, r)
			r = EventRow{}
		}
		if err := iter.Close(); err != nil {
			return nil, fmt.Errorf("sink: events of %q on %s: %w", eq.Gateway, d.Format(time.DateOnly), err)
		}
		if eq.Limit > 0 && len(out) >= eq.Limit {
			break
		}
	}
	return out, nil
}
