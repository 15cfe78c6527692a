package ingest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/test/testenv"
	"github.com/edgegw/gateway/units"
)

func fakeConfig() *Config {
	c := NewConfig()
	c.Subscriptions = []Subscription{{Topic: "s/+dev", Kind: "scan", Source: "{dev}"}}
	return c
}

func scanPayload(i int) []byte { return fmt.Appendf(nil, `{"barcode":"B%05d"}`, i) }

func barcodes(evs []*event.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i], _ = e.Attrs["barcode"].(string)
	}
	return out
}

func seqBarcodes(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("B%05d", i))
	}
	return out
}

// In a synctest bubble: the proof that nothing is acked while Emit has not
// returned is that every goroutine of the driver is blocked (and a minute of
// the bubble's clock has passed, for anything on a timer), not a sleep.
func TestAckOnlyAfterEmitReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		entered, release := make(chan struct{}), make(chan struct{})
		sink := &memSink{Hook: func(ctx context.Context, call int, _ []*event.Event) error {
			if call == 1 {
				close(entered)
				select {
				case <-release:
				case <-ctx.Done(): // the test failed: let the driver stop
					return ctx.Err()
				}
			}
			return nil
		}}
		cfg := fakeConfig()
		cfg.AckWindow = 0
		_, fc, _ := startFake(t, cfg, sink)
		fc.deliver("s/a", scanPayload(1), 1)
		<-entered
		fc.deliver("s/a", scanPayload(2), 1)
		fc.deliver("s/a", scanPayload(3), 1)
		synctest.Wait()
		time.Sleep(time.Minute) // the bubble's clock: runs every timer due within a minute
		synctest.Wait()
		if a := fc.acked(); len(a) != 0 {
			t.Fatalf("acked %v while Emit had not returned", a)
		}
		close(release)
		synctest.Wait()
		time.Sleep(time.Minute) // a batch may wait for a timer to close
		synctest.Wait()
		if a := fc.acked(); !reflect.DeepEqual(a, []int{1, 2, 3}) {
			t.Fatalf("acks %v, want [1 2 3]", a)
		}
		evs, _, _ := sink.Snapshot()
		if got := barcodes(evs); !reflect.DeepEqual(got, seqBarcodes(1, 3)) {
			t.Fatalf("emitted %v", got)
		}
	})
}

func TestErrFullPausesWithoutAcking(t *testing.T) {
	const k = 4
	var fc *fakeClient
	var ackedWhileFull []int
	sink := &memSink{Hook: func(_ context.Context, call int, _ []*event.Event) error {
		if call <= k {
			ackedWhileFull = append(ackedWhileFull, len(fc.acked()))
			return fmt.Errorf("stream scans: %w", drivers.ErrFull)
		}
		return nil
	}}
	d, f, _ := startFake(t, fakeConfig(), sink)
	fc = f
	for i := 1; i <= 10; i++ {
		fc.deliver("s/a", scanPayload(i), 1)
	}
	testenv.Eventually(t, 10*time.Second, "10 acks", func() bool { return len(fc.acked()) == 10 })
	evs, _, _ := sink.Snapshot()
	if got := barcodes(evs); !reflect.DeepEqual(got, seqBarcodes(1, 10)) {
		t.Fatalf("emitted %v", got)
	}
	if !reflect.DeepEqual(ackedWhileFull, make([]int, k)) {
		t.Fatalf("acks seen while the stream was full: %v", ackedWhileFull)
	}
	st := d.Stats()
	if st.FullRetries != k || st.Paused || st.Accepted != 10 || st.Acked != 10 || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPoisonIsQuarantinedAndAcked(t *testing.T) {
	sink := &memSink{}
	cfg := fakeConfig()
	cfg.MaxPayload = 100
	d, fc, _ := startFake(t, cfg, sink)
	fc.deliver("s/a", scanPayload(1), 1)
	fc.deliver("s/a", []byte(`{"barcode":`), 1)
	fc.deliver("s/a", []byte(`{"barcode":"`+strings.Repeat("x", 200)+`"}`), 1)
	fc.deliver("other/topic", scanPayload(9), 1)
	fc.deliver("s/a", []byte(`{"nobarcode":1}`), 0)
	fc.deliver("s/a", scanPayload(2), 1)
	testenv.Eventually(t, 5*time.Second, "6 acks", func() bool { return len(fc.acked()) == 6 })
	if a := fc.acked(); !slices.IsSorted(a) {
		t.Fatalf("ack order %v", a)
	}
	evs, _, q := sink.Snapshot()
	if got := barcodes(evs); !reflect.DeepEqual(got, []string{"B00001", "B00002"}) {
		t.Fatalf("emitted %v", got)
	}
	want := map[string]uint64{ReasonMalformed: 1, ReasonOversize: 1, ReasonUnsubscribed: 1, ReasonMissingField: 1}
	if st := d.Stats(); !reflect.DeepEqual(st.Quarantined, want) {
		t.Fatalf("quarantined %v, want %v", st.Quarantined, want)
	}
	if len(q) != 4 || q[0].Source != "s/a" || !strings.HasPrefix(q[1].Reason, "oversize: ") {
		t.Fatalf("quarantine records %+v", q)
	}
}

func TestInvalidEventIsIsolated(t *testing.T) {
	sink := &memSink{Hook: func(_ context.Context, _ int, evs []*event.Event) error {
		for _, e := range evs {
			if e.Attrs["barcode"] == "B00002" {
				return fmt.Errorf("sink: %w", event.ErrInvalid)
			}
		}
		return nil
	}}
	cfg := fakeConfig()
	cfg.AckWindow = units.Duration(50 * time.Millisecond)
	d, fc, _ := startFake(t, cfg, sink)
	for i := 1; i <= 3; i++ {
		fc.deliver("s/a", scanPayload(i), 1)
	}
	testenv.Eventually(t, 5*time.Second, "3 acks", func() bool { return len(fc.acked()) == 3 })
	evs, _, _ := sink.Snapshot()
	if got := barcodes(evs); !reflect.DeepEqual(got, []string{"B00001", "B00003"}) {
		t.Fatalf("emitted %v", got)
	}
	if n := d.Stats().Quarantined[ReasonInvalidEvent]; n != 1 {
		t.Fatalf("invalid_event quarantined %d", n)
	}
}

func TestCancelDuringEmitAcksNothing(t *testing.T) {
	entered := make(chan struct{})
	sink := &memSink{Hook: func(ctx context.Context, _ int, _ []*event.Event) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}}
	_, fc, stop := startFake(t, fakeConfig(), sink)
	fc.deliver("s/a", scanPayload(1), 1)
	<-entered
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if a := fc.acked(); len(a) != 0 || !fc.disconnected {
		t.Fatalf("acked %v, disconnected %v", a, fc.disconnected)
	}
}

// TestBatchBounds: while Emit is blocked messages queue up; then batches are
// cut at broker_inflight QoS 1 messages, or at ack_batch.
func TestBatchBounds(t *testing.T) {
	for _, tc := range []struct {
		name     string
		qos      byte
		inflight int
		want     []int
	}{
		{"inflight bound", 1, 10, []int{1, 10, 10, 4}},
		{"qos0 ignores inflight", 0, 10, []int{1, 16, 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entered, release := make(chan struct{}), make(chan struct{})
			sink := &memSink{Hook: func(_ context.Context, call int, _ []*event.Event) error {
				if call == 1 {
					close(entered)
					<-release
				}
				return nil
			}}
			cfg := fakeConfig()
			cfg.AckWindow, cfg.AckBatch, cfg.MaxPending = 0, 16, 64
			_, fc, _ := startFakeOpts(t, cfg, sink, Options{BrokerInflight: tc.inflight})
			fc.deliver("s/a", scanPayload(1), tc.qos)
			<-entered
			for i := 2; i <= 25; i++ {
				fc.deliver("s/a", scanPayload(i), tc.qos)
			}
			close(release)
			testenv.Eventually(t, 5*time.Second, "25 events", func() bool { return sink.Count() == 25 })
			evs, batches, _ := sink.Snapshot()
			if !reflect.DeepEqual(batches, tc.want) {
				t.Fatalf("batch sizes %v, want %v", batches, tc.want)
			}
			if got := barcodes(evs); !reflect.DeepEqual(got, seqBarcodes(1, 25)) {
				t.Fatalf("order %v", got)
			}
		})
	}
}

func TestAutoAckBatch(t *testing.T) {
	for _, c := range []struct{ inflight, pending, want int }{
		{20, 4096, 256}, {0, 4096, 256}, {1000, 4096, 500}, {65535, 4096, 4096}, {1000, 300, 300},
	} {
		if got := autoAckBatch(c.inflight, c.pending); got != c.want {
			t.Errorf("autoAckBatch(%d, %d) = %d, want %d", c.inflight, c.pending, got, c.want)
		}
	}
}
