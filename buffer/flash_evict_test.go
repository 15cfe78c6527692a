//go:build linux && (amd64 || arm64)

package buffer

import (
	"os"
	"syscall"
	"testing"
)

// evict drops the file's pages from the page cache; false if it cannot.
func evict(b *testing.B, path string) bool {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const fadvDontNeed = 4
	_, _, e := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, fadvDontNeed, 0, 0)
	return e == 0
}
