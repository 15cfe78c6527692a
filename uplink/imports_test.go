package uplink

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// uplink must not depend on the buffer, the drivers or edge (DESIGN.md:
// dependencies flow cmd → edge → {drivers, buffer, uplink}).
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := []string{"/buffer", "/drivers", "/edge", "/cmd", "/sink"}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			for _, bad := range forbidden {
				if strings.HasPrefix(p, "github.com/edgegw/gateway"+bad) {
					t.Errorf("%s imports %s", f, p)
				}
			}
		}
	}
}
