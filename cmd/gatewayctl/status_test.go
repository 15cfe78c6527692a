package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/edge/fleet"
	"github.com/edgegw/gateway/test/harness"
	"github.com/edgegw/gateway/test/testenv"
	"github.com/edgegw/gateway/uplink"
)

func TestStatusTable(t *testing.T) {
	pulsarURL, _ := testenv.Pulsar(t)
	ns := strings.SplitN(harness.Namespace(t, "ctlstatus"), "/", 2)
	o := uplink.DefaultOptions()
	o.ServiceURL, o.AdminURL, o.Tenant, o.Namespace = pulsarURL, "http://unused:1", ns[0], ns[1]
	c, err := uplink.NewControl(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	now := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range []fleet.Status{
		{Gateway: "gw-a", Time: now, HeartbeatSeconds: 10, Build: fleet.Build{Version: "1.2.3"}, Uplink: fleet.UplinkOnline,
			Config:  fleet.ConfigStatus{Version: 4, Decision: fleet.Decision{State: fleet.StateApplied, Bundle: 4}},
			Streams: []fleet.StreamStatus{{Name: "scans", Backlog: 12, OldestAgeSeconds: 3.5}, {Name: "telemetry"}}},
		{Gateway: "gw-b", Time: now.Add(-time.Minute), HeartbeatSeconds: 10, Uplink: fleet.UplinkOffline, Drops: 7,
			Config: fleet.ConfigStatus{Version: 4, Decision: fleet.Decision{State: fleet.StateRolledBack, Bundle: 5, Reason: "uplink not healthy"}}},
		{Gateway: "gw-c", Time: now, HeartbeatSeconds: 10, Stopping: true,
			Config: fleet.ConfigStatus{Decision: fleet.Decision{State: fleet.StateRejected, Bundle: 2, Reason: "bad-signature: x"}}},
	} {
		b, _ := json.Marshal(s)
		if err := c.Publish(ctx, c.Topic("status"), uplink.KeyedMessage{Key: s.Gateway, Payload: b}); err != nil {
			t.Fatal(err)
		}
	}
	flags := []string{"--pulsar", pulsarURL, "--tenant", ns[0], "--namespace", ns[1]}
	var rows []fleetRow
	if err := json.Unmarshal([]byte(mustCtl(t, append([]string{"status", "-o", "json"}, flags...)...)), &rows); err != nil {
		t.Fatal(err)
	}
	online := map[string]bool{}
	for _, r := range rows {
		online[r.Gateway] = r.Online
	}
	if len(rows) != 3 || !online["gw-a"] || online["gw-b"] || online["gw-c"] {
		t.Fatalf("rows %+v", rows)
	}
	table := mustCtl(t, append([]string{"status"}, flags...)...)
	lines := map[string]string{}
	for _, l := range strings.Split(table, "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			lines[f[0]] = strings.Join(f[1:], " ")
		}
	}
	for gw, want := range map[string][]string{
		"gw-a": {"yes ", "1.2.3 v4 applied online 0 scans=12/3.5s telemetry=0 -"},
		"gw-b": {"no ", "- v4 rolled-back v5 offline 7 - uplink not healthy"},
		"gw-c": {"stopped ", "- local rejected v2 - 0 - bad-signature: x"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[gw], w) {
				t.Errorf("%s: %q lacks %q:\n%s", gw, lines[gw], w, table)
			}
		}
	}
}

func TestStatusWatch(t *testing.T) {
	pulsarURL, _ := testenv.Pulsar(t)
	ns := strings.SplitN(harness.Namespace(t, "ctlwatch"), "/", 2)
	o := uplink.DefaultOptions()
	o.ServiceURL, o.AdminURL, o.Tenant, o.Namespace = pulsarURL, "http://unused:1", ns[0], ns[1]
	c, err := uplink.NewControl(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	publish := func(gw string) {
		b, _ := json.Marshal(fleet.Status{Gateway: gw, Time: time.Now(), HeartbeatSeconds: 10})
		if err := c.Publish(ctx, c.Topic("status"), uplink.KeyedMessage{Key: gw, Payload: b}); err != nil {
			t.Fatal(err)
		}
	}
	publish("gw-1")
	var shown [][]fleetRow
	err = watchFleet(ctx, c, c.Topic("status"), 50*time.Millisecond, func(rows []fleetRow) error {
		shown = append(shown, rows)
		switch {
		case len(rows) == 1 && len(shown) == 1:
			publish("gw-2") // a gateway appears while watching
		case len(rows) == 2:
			cancel()
		}
		return nil
	})
	var last []fleetRow
	if len(shown) > 0 {
		last = shown[len(shown)-1]
	}
	if err != nil || len(shown) < 2 || len(last) != 2 || !last[1].Online {
		t.Fatalf("watch: %v, %d refreshes, last %+v", err, len(shown), last)
	}
}
