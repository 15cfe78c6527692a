// Package e2e runs the real gateway binary against the real Mosquitto and
// Pulsar that test/ starts, and checks what reached Pulsar.
package e2e

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
