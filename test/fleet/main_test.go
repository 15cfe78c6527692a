// Package fleet tests fleet operations end to end: real gateway processes,
// the real gatewayctl, Mosquitto and Pulsar. Every test publishes scans
// throughout and checks at the end that each arrived exactly once.
package fleet

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
