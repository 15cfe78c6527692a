package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/edgegw/gateway/test/testenv"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Binary returns the path of a freshly built command of this repository
// (e.g. "gateway", "simulate", "sink"); all commands are built once per test
// process into a temporary directory. Call Cleanup from TestMain.
func Binary(name string) (string, error) {
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "edgegw-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", buildDir+string(filepath.Separator), "./cmd/...")
		cmd.Dir = testenv.RepoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/...: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		return "", buildErr
	}
	return filepath.Join(buildDir, name), nil
}

// Cleanup removes the built binaries.
func Cleanup() {
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
}
