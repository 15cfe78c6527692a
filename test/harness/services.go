package harness

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/edgegw/gateway/test/testenv"
)

// Service runs one of the service scripts under test/ ("pulsar", "mosquitto",
// "cassandra") with an action ("up", "down"), failing the test on error.
// Only fault tests use it: they run alone, after every other package.
func Service(t testing.TB, name, action string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(testenv.RepoRoot(), "test", name+".sh"), action)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("test/%s.sh %s: %v\n%s", name, action, err, out)
	}
	t.Logf("test/%s.sh %s: ok", name, action)
}
