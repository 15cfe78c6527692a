package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgegw/gateway/event"
)

func rulesTest(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	rc := run(append([]string{"rules", "test"}, args...), &out, &errb)
	return rc, out.String(), errb.String()
}

// The replay of the mis-sort sample through configs/dev.yaml fires the
// alert (naming the scan's simulated seq) and the dock 1 light once, and
// summarises the steady readings.
func TestRulesTestMissort(t *testing.T) {
	rc, out, errs := rulesTest(t, "-config", "../../configs/dev.yaml", "-events", "testdata/dev-missort.jsonl")
	if rc != exitOK {
		t.Fatalf("rc %d: %s", rc, errs)
	}
	for _, want := range []string{
		"2026-03-01T08:00:01Z  FIRED missort  source=dock1-scn-01  actions: alert alerts\n",
		"FIRED missort-dock1-light  source=dock1-scn-01  actions: gpio dock1-io/missort-light blink\n",
		"alert alerts/1: barcode=00106141410000000026 cause_kind=scan dock=dock1 route=R3 rule=missort seq=2 stream=scans\n",
		"summary telemetry/2: count=2 from=2026-03-01T08:00:00Z last=4.2 max=4.2 mean=4.15 metric=value min=4.1",
		"2 firings\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// The cold-chain sample through configs/vehicle.yaml: one excursion, its
// start alert at 2 minutes with the peak so far and its end alert with
// start, end and peak; the short blip does not fire. The same events as
// CBOR replay the same.
func TestRulesTestColdChain(t *testing.T) {
	rc, out, errs := rulesTest(t, "-config", "../../configs/vehicle.yaml", "-events", "testdata/vehicle-excursion.jsonl")
	if rc != exitOK {
		t.Fatalf("rc %d: %s", rc, errs)
	}
	for _, want := range []string{
		"2026-03-01T10:04:00Z  FIRED cold-chain-excursion (start)  source=cargo-temp  actions: alert alerts; gpio cab-io/buzzer blink\n",
		"peak=10.5 phase=start rule=cold-chain-excursion seq=7 start=2026-03-01T10:02:00Z",
		"end=2026-03-01T10:06:00Z peak=10.5 phase=end rule=cold-chain-excursion seq=11 start=2026-03-01T10:02:00Z",
		"2 firings\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	evs, err := readEvents("testdata/vehicle-excursion.jsonl", "json")
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, e := range evs {
		e.Gateway, e.Time = "van-0417", e.Received
		enc, err := event.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, enc...)
	}
	path := filepath.Join(t.TempDir(), "events.cbor")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	rc, cborOut, errs := rulesTest(t, "-config", "../../configs/vehicle.yaml", "-events", path)
	if rc != exitOK || cborOut != out {
		t.Fatalf("CBOR replay (rc %d, %s) differs:\n%s\nJSON:\n%s", rc, errs, cborOut, out)
	}
}

// A rule that does not compile is reported as validate reports it.
func TestRulesTestBadRule(t *testing.T) {
	b, err := os.ReadFile("../../configs/dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bad.yaml")
	bad := strings.Replace(string(b), "tables.routes[attrs.route] != attrs.dock\n    actions:\n      - alert", "tables.routes[attrs.route] != atrs.dock\n    actions:\n      - alert", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	rc, _, errs := rulesTest(t, "-config", path, "-events", "testdata/dev-missort.jsonl")
	if rc != exitFailure || !strings.Contains(errs, "bad.yaml:") || !strings.Contains(errs, ": rules[0].when: rule missort: unknown name atrs") {
		t.Fatalf("rc %d, stderr %s", rc, errs)
	}
	if rc, _, _ := rulesTest(t, "-config", path); rc != exitUsage {
		t.Fatalf("missing -events: rc %d", rc)
	}
}
