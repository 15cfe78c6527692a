// Package ota tests firmware over the air end to end: real gateway
// processes under the real launcher (gateway launch), releases pushed with
// the real gatewayctl through the test Pulsar, scans through Mosquitto.
// Releases are the gateway built with another -X main.version stamp, and
// broken ones built from ./faulty (the production binary has no fault
// switch).
package ota

import (
	"os"
	"testing"

	"github.com/edgegw/gateway/test/harness"
)

func TestMain(m *testing.M) {
	rc := m.Run()
	harness.Cleanup()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(rc)
}
