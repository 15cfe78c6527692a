package edge

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgegw/gateway/buffer"
	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/units"
	"github.com/edgegw/gateway/uplink"
)

func testIngest(t *testing.T, scansMax int64) (*ingest, *buffer.DB) {
	t.Helper()
	db, err := buffer.Open(filepath.Join(t.TempDir(), "b.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, sc := range []buffer.StreamConfig{
		{Name: "scans", Priority: 10, MaxEvents: scansMax, Overflow: buffer.PolicyRejectNew},
		{Name: "telemetry", Overflow: buffer.PolicyDropOldest},
	} {
		if err := db.ConfigureStream(sc); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	return &ingest{db: db, gateway: "gw-1", boot: db.Boot(), start: time.Now(), now: func() time.Time { return now },
		stats: &ingestStats{m: newMetrics()}}, db
}

func read(t *testing.T, db *buffer.DB, stream string) []*event.Event {
	t.Helper()
	es, err := db.Read(stream, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*event.Event, len(es))
	for i, e := range es {
		ev, err := event.Unmarshal(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Seq != e.Seq {
			t.Fatalf("stored seq %d, encoded seq %d", e.Seq, ev.Seq)
		}
		out[i] = ev
	}
	return out
}

func TestEmitStampsAndGroupsByStream(t *testing.T) {
	in, db := testIngest(t, 0)
	devTime := time.Date(2026, 11, 25, 11, 59, 0, 0, time.UTC)
	evs := []*event.Event{
		{Stream: "scans", Source: "dock1", Kind: "scan", Time: devTime, Attrs: map[string]any{"barcode": "A"}},
		{Stream: "telemetry", Source: "temp", Kind: "reading", Attrs: map[string]any{"value": 4.5}},
		{Stream: "scans", Source: "dock1", Kind: "scan", Attrs: map[string]any{"barcode": "B"}},
	}
	if err := in.Emit(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	scans := read(t, db, "scans")
	if len(scans) != 2 || scans[0].Attrs["barcode"] != "A" || scans[1].Attrs["barcode"] != "B" || scans[0].Seq >= scans[1].Seq {
		t.Fatalf("scans %+v", scans)
	}
	e := scans[0]
	if e.Gateway != "gw-1" || e.Boot != db.Boot() || !e.Time.Equal(devTime) || !e.Received.Equal(in.now()) {
		t.Fatalf("stamps %+v", e)
	}
	if !scans[1].Time.Equal(in.now()) {
		t.Fatalf("zero event time not replaced by receive time: %v", scans[1].Time)
	}
	if tel := read(t, db, "telemetry"); len(tel) != 1 || tel[0].Kind != "reading" {
		t.Fatalf("telemetry %+v", tel)
	}
}

func TestEmitFullStreamRefusesWholeBatch(t *testing.T) {
	in, db := testIngest(t, 2)
	ctx := context.Background()
	scan := func(b string) *event.Event {
		return &event.Event{Stream: "scans", Source: "d", Kind: "scan", Attrs: map[string]any{"barcode": b}}
	}
	if err := in.Emit(ctx, []*event.Event{scan("1"), scan("2")}); err != nil {
		t.Fatal(err)
	}
	err := in.Emit(ctx, []*event.Event{{Stream: "telemetry", Source: "t", Kind: "reading"}, scan("3")})
	if !errors.Is(err, drivers.ErrFull) {
		t.Fatalf("err %v, want ErrFull", err)
	}
	if tel := read(t, db, "telemetry"); len(tel) != 0 {
		t.Fatalf("a refused batch stored %d telemetry events; a retry would duplicate them", len(tel))
	}
	if got := read(t, db, "scans"); len(got) != 2 {
		t.Fatalf("scans %d", len(got))
	}
}

func TestEmitRedeliveryNotStoredTwice(t *testing.T) {
	in, db := testIngest(t, 0)
	ctx := context.Background()
	mk := func(redelivered bool) *event.Event {
		return &event.Event{Stream: "scans", Source: "d", Kind: "scan", Attrs: map[string]any{"barcode": "X"},
			DedupKey: []byte("0123456789abcdef"), Redelivered: redelivered}
	}
	if err := in.Emit(ctx, []*event.Event{mk(false)}); err != nil {
		t.Fatal(err)
	}
	if err := in.Emit(ctx, []*event.Event{mk(true)}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, db, "scans"); len(got) != 1 {
		t.Fatalf("a re-delivery was stored again: %d events", len(got))
	}
	// The same input without the DUP flag is a new reading: stored.
	if err := in.Emit(ctx, []*event.Event{mk(false)}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, db, "scans"); len(got) != 2 {
		t.Fatalf("a fresh input with a known key was dropped: %d events", len(got))
	}
}

func TestGatewayStateOfflineAndFill(t *testing.T) {
	_, db := testIngest(t, 4)
	in := &ingest{db: db, gateway: "gw", now: time.Now, start: time.Now(), stats: &ingestStats{m: newMetrics()}}
	for i := 0; i < 3; i++ {
		if err := in.Emit(context.Background(), []*event.Event{{Stream: "scans", Source: "d", Kind: "scan"}}); err != nil {
			t.Fatal(err)
		}
	}
	up, err := uplink.New(uplink.Options{ServiceURL: "pulsar://127.0.0.1:1", RequireDedup: false, Tenant: "public", Namespace: "default", TopicPrefix: "events-", Compression: "lz4", SendTimeout: units.Duration(time.Second), OperationTimeout: units.Duration(time.Second), ConnectionTimeout: units.Duration(time.Second), MaxPending: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	st := gatewayState(db, up, 0)
	if st.UplinkOnline {
		t.Fatal("uplink with no producer reported online")
	}
	if st.BufferFill != 0.75 {
		t.Fatalf("fill %v, want 0.75 (3 of max_events 4)", st.BufferFill)
	}
}
