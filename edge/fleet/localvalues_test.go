package fleet

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/edgegw/gateway/edge/config"
)

// groupDoc is a document for a group: what differs per gateway is named by
// placeholders.
const groupDoc = `
broker:
  listen: ${local:broker_listen}
  allow_anonymous: true
streams:
  - name: scans
sources:
  - name: docks
    driver: mqtt
    mqtt:
      brokers: [embedded]
      subscriptions:
        - topic: site/${gateway.id}/+dock/scan
          kind: scan
uplink:
  service_url: pulsar://10.0.0.1:6650
  admin_url: http://10.0.0.1:8080
`

func localWith(t *testing.T, id, values string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(fmt.Sprintf("gateway:\n  id: %s\nbuffer:\n  path: /data/b.db\nstreams:\n  - name: scans\nuplink:\n  service_url: pulsar://127.0.0.1:6650\n  admin_url: http://127.0.0.1:8080\nfleet:\n  probation: 1s\n%s", id, values)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// One group document gives each gateway its own values; a gateway that
// does not define one refuses the bundle, naming the setting and line.
func TestMergeFillsLocalValues(t *testing.T) {
	for _, gw := range []struct{ id, listen string }{{"dock-7", "0.0.0.0:1883"}, {"van-12", "127.0.0.1:2883"}} {
		local := localWith(t, gw.id, "  local_values:\n    broker_listen: "+gw.listen+"\n")
		cfg, err := Merge(local, []byte(groupDoc))
		if err != nil {
			t.Fatalf("%s: %v", gw.id, err)
		}
		if cfg.Broker.Listen != gw.listen || !strings.Contains(fmt.Sprint(cfg.Sources[0].Parsed), "site/"+gw.id+"/+dock/scan") {
			t.Fatalf("%s: broker listen %q, source %+v", gw.id, cfg.Broker.Listen, cfg.Sources[0].Parsed)
		}
	}
	_, err := Merge(localWith(t, "dock-8", ""), []byte(groupDoc))
	if err == nil || !strings.Contains(err.Error(), "line 3: broker.listen: ${local:broker_listen} is not defined by this gateway") {
		t.Fatalf("a gateway without the value: %v", err)
	}
	var re *RejectError
	if !errors.As(err, &re) || re.Reason != ReasonInvalid {
		t.Fatalf("not a ReasonInvalid refusal: %v", err)
	}
}

// A dry run without a local file accepts placeholders and still reports
// errors elsewhere; with one, it reports what that gateway lacks.
func TestCheckDocumentPlaceholders(t *testing.T) {
	if _, err := CheckDocument([]byte(groupDoc)); err != nil {
		t.Fatalf("placeholders refused: %v", err)
	}
	bad := strings.Replace(groupDoc, "  - name: scans\n", "  - name: scans\n    overflow: nope\n", 1)
	if _, err := CheckDocument([]byte(bad)); err == nil || !strings.Contains(err.Error(), "line 7: streams[0].overflow") {
		t.Fatalf("error elsewhere: %v", err)
	}
	if _, err := CheckDocument([]byte(strings.Replace(groupDoc, "${local:broker_listen}", "${env:LISTEN}", 1))); err == nil || !strings.Contains(err.Error(), "unknown placeholder") {
		t.Fatalf("unknown placeholder: %v", err)
	}
	_, err := CheckDocumentFor([]byte(groupDoc), localWith(t, "dock-8", "  local_values:\n    other: x\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3: broker.listen: ${local:broker_listen} is not defined") {
		t.Fatalf("with a local file lacking the value: %v", err)
	}
	if _, err := CheckDocumentFor([]byte(groupDoc), localWith(t, "dock-8", "  local_values:\n    broker_listen: 127.0.0.1:1883\n")); err != nil {
		t.Fatalf("with a local file: %v", err)
	}
}
