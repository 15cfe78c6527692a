// Package status renders the gateway's local status page in a real headless
// Chromium, with the real gateway binary, Mosquitto and Pulsar: what a
// person at the dock door sees on a phone.
package status

import (
	"os"
	"testing"

	"github.com/edgegw/gateway/test/harness"
)

func TestMain(m *testing.M) {
	rc := m.Run()
	harness.Cleanup()
	os.Exit(rc)
}
