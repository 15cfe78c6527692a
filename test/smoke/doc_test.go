// Package smoke checks that the real services started by test/services.sh
// (Mosquitto, Pulsar standalone, Cassandra) behave as the gateway and the
// sink rely on. Each test is skipped under -short and fails with a hint when
// its service is not running.
package smoke

import (
	"fmt"
	"time"
)

// unique returns a name that no earlier run used, so tests never see each
// other's data on long-lived services.
func unique(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, time.Now().UnixNano())
}
