package buffer

import (
	"os/exec"
	"strings"
	"testing"
)

// The buffer is a library that knows nothing of transports or of the rest of
// the gateway.
func TestImportsNothingOfTheGateway(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{"mqtt", "pulsar", "paho", "mochi", "gateway/edge", "gateway/uplink",
		"gateway/drivers", "gateway/sink", "gateway/event", "cassandra", "gocql"}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("implausible dependency list: %v", deps)
	}
	for _, dep := range deps {
		for _, f := range forbidden {
			if strings.Contains(dep, f) {
				t.Errorf("buffer depends on %s", dep)
			}
		}
	}
}
