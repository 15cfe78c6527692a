package ingest

import (
	"fmt"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/testenv"
	"github.com/edgegw/gateway/units"
)

// Device timestamps are judged against the gateway's receive time: far in
// the past or the future, or not a time, they are flagged and replaced by
// the receive time, the device's value kept. When the gateway's own clock
// jumps, the judgement follows it (Received is what the gateway's clock said).
func TestDeviceTimeAgainstGatewayClock(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clk := &fakeClock{t: t0}
	sink := &memSink{}
	cfg := fakeConfig()
	cfg.DeviceTime = DeviceTimeConfig{MaxPast: units.Duration(time.Hour), MaxFuture: units.Duration(5 * time.Minute)}
	cfg.Subscriptions[0].Fields = FieldMap{Time: "ts"}
	_, fc := startFakeClock(t, cfg, sink, clk)
	msg := func(bc string, ts any) []byte {
		b := fmt.Appendf(nil, `{"barcode":%q,"ts":%v}`, bc, ts)
		return b
	}
	rfc := func(t time.Time) string { return fmt.Sprintf("%q", t.Format(time.RFC3339Nano)) }
	fc.deliver("s/a", msg("ok", rfc(t0.Add(-time.Minute))), 1)
	fc.deliver("s/a", msg("past", rfc(t0.Add(-48*time.Hour))), 1)
	fc.deliver("s/a", msg("future", rfc(t0.Add(24*time.Hour))), 1)
	fc.deliver("s/a", msg("epoch0", 0), 1)
	fc.deliver("s/a", msg("garbage", `"yesterday"`), 1)
	testenv.Eventually(t, 5*time.Second, "5 events", func() bool { return sink.Count() == 5 })
	// The gateway's clock jumps back an hour (NTP correction): a device
	// that was right all along now looks an hour ahead, beyond max_future.
	clk.add(-time.Hour)
	fc.deliver("s/a", msg("after-jump", rfc(t0)), 1)
	testenv.Eventually(t, 5*time.Second, "6 events", func() bool { return sink.Count() == 6 })

	evs, _, _ := sink.Snapshot()
	want := []struct {
		bc       string
		recv     time.Time
		time     time.Time // zero: the receive time
		flag     string
		original any
	}{
		{"ok", t0, t0.Add(-time.Minute), "", nil},
		{"past", t0, time.Time{}, TimeImplausible, t0.Add(-48 * time.Hour)},
		{"future", t0, time.Time{}, TimeImplausible, t0.Add(24 * time.Hour)},
		{"epoch0", t0, time.Time{}, TimeImplausible, time.Unix(0, 0).UTC()},
		{"garbage", t0, time.Time{}, TimeUnparseable, "yesterday"},
		{"after-jump", t0.Add(-time.Hour), time.Time{}, TimeImplausible, t0},
	}
	for i, w := range want {
		e := evs[i]
		if e.Attrs["barcode"] != w.bc || !e.Received.Equal(w.recv) {
			t.Fatalf("event %d: barcode %v received %v, want %s %v", i, e.Attrs["barcode"], e.Received, w.bc, w.recv)
		}
		wantTime := w.time
		if wantTime.IsZero() {
			wantTime = w.recv
		}
		if !e.Time.Equal(wantTime) {
			t.Errorf("%s: time %v, want %v", w.bc, e.Time, wantTime)
		}
		flag, _ := e.Attrs["time_flag"].(string)
		if flag != w.flag {
			t.Errorf("%s: time_flag %q, want %q", w.bc, flag, w.flag)
		}
		if w.original != nil {
			got := e.Attrs["device_time"]
			if gt, ok := got.(time.Time); ok {
				if !gt.Equal(w.original.(time.Time)) {
					t.Errorf("%s: device_time %v, want %v", w.bc, got, w.original)
				}
			} else if got != w.original {
				t.Errorf("%s: device_time %v (%T), want %v", w.bc, got, got, w.original)
			}
		}
	}
}
