package sink

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	"github.com/fxamacker/cbor/v2"

	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/testenv"
)

// t0 is just before a UTC midnight, so the generated events span two day
// partitions.
var t0 = time.Date(2025, 6, 30, 23, 55, 0, 123456000, time.UTC)

func TestSinkWritesPublishedEvents(t *testing.T) {
	it := newITest(t)
	evs := gen("gw-a", 600, t0)
	evs = append(evs, gen("gw-b", 30, t0.Add(time.Hour))...)
	gap, err := event.NewGap("scans", "buffer", event.Gap{From: 1000, To: 1009, Count: 7, Reason: event.GapOverflow}, t0)
	if err != nil {
		t.Fatal(err)
	}
	gap.Gateway, gap.Seq, gap.Received = "gw-a", 1010, t0
	evs = append(evs, gap)
	it.publish(evs)

	s := it.runSink(it.config(), Options{})
	want := expectedCounts(evs)
	it.waitRows(90*time.Second, want)
	testenv.Eventually(t, 30*time.Second, "every message acknowledged", func() bool {
		return s.Stats().Acked == uint64(len(evs))
	})
	sameEvents(t, it.storedEvents(), evs)

	// Query tables: compare every row with the event it came from.
	byKey := keysOf(evs)
	iter := it.session.Query("SELECT barcode, time, gateway, stream, seq, source, dock, scanner, symbology FROM " +
		it.keyspace + ".scans_by_barcode").Iter()
	var (
		bc, gw, stream, source, dock, scanner, sym string
		seq                                        int64
		tm                                         time.Time
		n                                          int
	)
	for iter.Scan(&bc, &tm, &gw, &stream, &seq, &source, &dock, &scanner, &sym) {
		e := byKey[eventKey(gw, stream, seq)]
		if e == nil || e.Kind != event.KindScan || e.Attrs["barcode"] != bc || e.Attrs["dock"] != dock ||
			e.Attrs["scanner"] != scanner || e.Attrs["symbology"] != sym || e.Source != source ||
			!tm.Equal(e.Time.Truncate(time.Millisecond)) {
			t.Errorf("scans_by_barcode row %s %s/%s/%d does not match its event %+v", bc, gw, stream, seq, e)
		}
		n++
	}
	if err := iter.Close(); err != nil || n != want[TableScansByBarcode] {
		t.Fatalf("scans_by_barcode: %d rows, %v", n, err)
	}
	iter = it.session.Query("SELECT gateway, source, day, time, stream, seq, value, unit FROM " + it.keyspace + ".readings").Iter()
	var (
		dy    time.Time
		value float64
		unit  string
	)
	n = 0
	for iter.Scan(&gw, &source, &dy, &tm, &stream, &seq, &value, &unit) {
		e := byKey[eventKey(gw, stream, seq)]
		if e == nil || e.Kind != event.KindReading || e.Source != source || !dy.Equal(day(e.Time)) ||
			e.Attrs["value"] != value || e.Attrs["unit"] != unit {
			t.Errorf("readings row %s/%s/%d (%v %s) does not match its event %+v", gw, stream, seq, value, unit, e)
		}
		n++
	}
	if err := iter.Close(); err != nil || n != want[TableReadings] {
		t.Fatalf("readings: %d rows, %v", n, err)
	}
	var from, to, count int64
	var reason string
	if err := it.session.Query("SELECT from_seq, to_seq, count, reason, source FROM "+it.keyspace+
		".gaps WHERE gateway = ? AND stream = ? AND seq = ?", "gw-a", "scans", 1010).Scan(&from, &to, &count, &reason, &source); err != nil {
		t.Fatal(err)
	}
	if from != 1000 || to != 1009 || count != 7 || reason != event.GapOverflow || source != "buffer" {
		t.Errorf("gap row = %d..%d count %d %q %q", from, to, count, reason, source)
	}

	// Per-table TTLs were applied.
	for tb, want := range map[string]time.Duration{TableEvents: 90 * 24 * time.Hour, TableScansByBarcode: 365 * 24 * time.Hour} {
		var ttl int
		if err := it.session.Query("SELECT TTL(source) FROM " + it.keyspace + "." + tb + " LIMIT 1").Scan(&ttl); err != nil {
			t.Fatal(err)
		}
		if d := time.Duration(ttl) * time.Second; d > want || d < want-time.Hour {
			t.Errorf("%s TTL = %s, want about %s", tb, d, want)
		}
	}
	var gapTTL *int
	if err := it.session.Query("SELECT TTL(reason) FROM " + it.keyspace + ".gaps LIMIT 1").Scan(&gapTTL); err != nil || gapTTL != nil {
		t.Errorf("gaps TTL = %v, %v; want none", gapTTL, err)
	}

	st := s.Stats()
	total := want[TableEvents] + want[TableScansByBarcode] + want[TableReadings] + want[TableGaps]
	if st.Consumed != uint64(len(evs)) || st.RowsWritten != uint64(total) || st.DeadLettered != 0 {
		t.Errorf("stats = %+v, want %d consumed, %d rows", st, len(evs), total)
	}
}

func TestSinkReplayIsIdempotent(t *testing.T) {
	it := newITest(t)
	evs := gen("gw-r", 300, t0)
	it.publish(evs)
	cfg := it.config()
	s := it.runSink(cfg, Options{})
	want := expectedCounts(evs)
	it.waitRows(90*time.Second, want)
	testenv.Eventually(t, 30*time.Second, "first pass acknowledged", func() bool { return s.Stats().Acked == uint64(len(evs)) })
	first := s.Stats().RowsWritten

	// Rewind the subscription on every events topic: everything replays.
	// The client sends acks in groups: wait until the broker has them all
	// (no backlog), or an ack still on its way would land after the rewind
	// and keep its message from replaying.
	for _, stream := range []string{"scans", "telemetry", "io"} {
		tn, err := utils.GetTopicName(it.topic(stream))
		if err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, "the broker has the acks of "+stream, func() error {
			st, err := it.admin.Topics().GetStats(*tn)
			if err != nil {
				return err
			}
			if sub, ok := st.Subscriptions[cfg.Pulsar.Subscription]; !ok || sub.MsgBacklog != 0 {
				return fmt.Errorf("subscription backlog %d (present %v)", sub.MsgBacklog, ok)
			}
			return nil
		})
		if err := it.admin.Subscriptions().ResetCursorToTimestamp(*tn, cfg.Pulsar.Subscription, 0); err != nil {
			t.Fatalf("reset cursor of %s: %v", stream, err)
		}
	}
	testenv.Eventually(t, 90*time.Second, "replay acknowledged", func() bool { return s.Stats().Acked == 2*uint64(len(evs)) })
	if got := s.Stats().RowsWritten; got != 2*first {
		t.Errorf("rows written after replay = %d, want %d (everything rewritten)", got, 2*first)
	}
	for tb, n := range want {
		if got := it.count(tb); got != n {
			t.Errorf("%s: %d rows after replay, want %d", tb, got, n)
		}
	}
	sameEvents(t, it.storedEvents(), evs)
}

func TestSinkDeadLettersGarbage(t *testing.T) {
	it := newITest(t)
	cfg := it.config()
	dlq, err := it.client.Subscribe(pulsar.ConsumerOptions{Topic: cfg.Pulsar.DeadLetter(), SubscriptionName: "test",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()

	evs := gen("gw-d", 90, t0)
	it.publish(evs[:45])
	garbage := []byte("not cbor at all")
	garbageID := it.publishRaw("scans", garbage, "dock1-scanner")
	noSeq, err := cbor.Marshal(map[string]any{"gateway": "gw-d", "stream": "scans", "source": "x", "kind": "scan", "time": 1})
	if err != nil {
		t.Fatal(err)
	}
	noSeqID := it.publishRaw("scans", noSeq, "x")
	bigSeq := *evs[0]
	bigSeq.Seq = math.MaxInt64 + 1 // decodes, but does not fit a bigint
	bigSeqPayload, err := event.Marshal(&bigSeq)
	if err != nil {
		t.Fatal(err)
	}
	bigSeqID := it.publishRaw("scans", bigSeqPayload, bigSeq.Source)
	it.publish(evs[45:])

	s := it.runSink(cfg, Options{})
	it.waitRows(90*time.Second, expectedCounts(evs))
	sameEvents(t, it.storedEvents(), evs)

	want := map[string]struct {
		payload []byte
		reason  string
	}{
		garbageID.String(): {garbage, "decode: "},
		noSeqID.String():   {noSeq, "decode: event: seq: missing"},
		bigSeqID.String():  {bigSeqPayload, "invalid: event: seq exceeds"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for range want {
		m, err := dlq.Receive(ctx)
		if err != nil {
			t.Fatalf("dead-letter topic: %v", err)
		}
		p := m.Properties()
		w, ok := want[p[PropMessageID]]
		if !ok {
			t.Fatalf("unexpected dead letter %q with properties %v", m.Payload(), p)
		}
		delete(want, p[PropMessageID])
		if string(m.Payload()) != string(w.payload) || !strings.HasPrefix(p[PropReason], w.reason) ||
			p[PropOriginalTopic] != it.topic("scans") || p["gateway"] != "gw-x" {
			t.Errorf("dead letter %q: properties %v, want reason %q", m.Payload(), p, w.reason)
		}
		_ = dlq.Ack(m)
	}
	testenv.Eventually(t, 30*time.Second, "all acknowledged", func() bool {
		st := s.Stats()
		return st.Acked == uint64(len(evs)+3) && st.DeadLettered == 3
	})
	// The sink must not consume its own dead-letter topic.
	tn, _ := utils.GetTopicName(cfg.Pulsar.DeadLetter())
	stats, err := it.admin.Topics().GetStats(*tn)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := stats.Subscriptions[cfg.Pulsar.Subscription]; ok {
		t.Errorf("the sink subscribed to its dead-letter topic")
	}
}

func TestTraceNewestFirst(t *testing.T) {
	it := newITest(t)
	s := it.runSink(it.config(), Options{}) // before any topic exists: found by discovery
	q := NewQuerier(it.session, it.keyspace)
	bc := "PKG-TRACE-" + it.id
	scan := func(gw, dock string, seq uint64, at time.Duration, barcode string) *event.Event {
		return &event.Event{Gateway: gw, Stream: "scans", Seq: seq, Source: dock + "-scanner", Kind: event.KindScan,
			Time: t0.Add(at), Received: t0.Add(at + time.Millisecond),
			Attrs: map[string]any{"barcode": barcode, "dock": dock, "scanner": "zebra-" + dock}}
	}
	evs := []*event.Event{
		scan("gw-1", "dock1", 1, 0, bc),
		scan("gw-1", "dock4", 2, time.Hour, bc),
		scan("gw-1", "dock4", 3, time.Hour+time.Second, "OTHER-"+it.id),
		scan("gw-3", "dock7", 1, 2*time.Hour, bc),
		scan("gw-2", "dock2", 1, 3*time.Hour, bc),
	}
	it.publish(evs)
	var got []Scan
	testenv.Eventually(t, 60*time.Second, "four scans of "+bc, func() bool {
		var err error
		got, err = q.Trace(context.Background(), bc, 0)
		return err == nil && len(got) == 4
	})
	want := []*event.Event{evs[4], evs[3], evs[1], evs[0]}
	for i, w := range want {
		g := got[i]
		if !g.Time.Equal(w.Time.Truncate(time.Millisecond)) || g.Gateway != w.Gateway || g.Dock != w.Attrs["dock"] ||
			g.Scanner != w.Attrs["scanner"] || g.Source != w.Source || g.Stream != w.Stream || g.Seq != int64(w.Seq) ||
			g.Barcode != bc || !g.Received.Equal(w.Received.Truncate(time.Millisecond)) {
			t.Errorf("trace[%d] = %+v, want event %+v", i, g, w)
		}
	}
	if two, err := q.Trace(context.Background(), bc, 2); err != nil || len(two) != 2 || two[0] != got[0] || two[1] != got[1] {
		t.Errorf("trace limit 2 = %v, %v", two, err)
	}
	if none, err := q.Trace(context.Background(), "NO-SUCH-"+it.id, 0); err != nil || len(none) != 0 {
		t.Errorf("unknown barcode: %v, %v", none, err)
	}

	// Events of gw-1 in a window, newest first.
	rows, err := q.Events(context.Background(), EventsQuery{Gateway: "gw-1", Since: t0.Add(-time.Minute), Until: t0.Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []string
	for _, r := range rows {
		seqs = append(seqs, fmt.Sprint(r.Seq))
		if r.Gateway != "gw-1" || r.Kind != event.KindScan || r.Attrs["dock"] == "" {
			t.Errorf("events row %+v", r)
		}
	}
	if strings.Join(seqs, ",") != "3,2,1" {
		t.Errorf("events of gw-1 = seqs %v, want 3,2,1", seqs)
	}
	if rows, err := q.Events(context.Background(), EventsQuery{Gateway: "gw-1", Since: t0.Add(-time.Minute),
		Until: t0.Add(2 * time.Hour), Limit: 1}); err != nil || len(rows) != 1 || rows[0].Seq != 3 {
		t.Errorf("events limit 1 = %+v, %v", rows, err)
	}
	_ = s
}
