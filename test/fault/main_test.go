// Package fault holds the fault tests: they stop and restart the shared
// Mosquitto, Pulsar and Cassandra, and SIGKILL the gateway, so they run
// alone, after every other package (see test/run-tests.sh).
package fault

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
