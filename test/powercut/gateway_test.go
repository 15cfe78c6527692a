package powercut

import (
	"path/filepath"
	"testing"

	"github.com/edgegw/gateway/test/harness"
)

// TestGatewayPowerCuts: the real gateway on its embedded broker, its buffer
// on a cut file system, four devices publishing QoS 1 with 200 in flight
// each. Three times, mid-burst: kill -9, drop every write the gateway had
// not synced (a power cut), remount, start again. At the end, every scan
// whose PUBACK a device saw is in the buffer.
func TestGatewayPowerCuts(t *testing.T) {
	f := mountCut(t)
	s := harness.NewEmbedded(t, t.TempDir(), filepath.Join(f.Dir, "buffer.db"))
	acks := harness.NewAckLog()
	dropped := int64(0)
	s.CrashMidBurst(t, acks, 3, "pc", func() {
		s.GW.Kill()
		dropped += f.Unsynced()
		f.Cut()
		if err := f.Remount(); err != nil {
			t.Fatal(err)
		}
	})
	s.GW.Start()
	s.GW.Stop()
	f.Cut()
	// Read the backing file, not through the mount: this process serves
	// the file system and must not fault on its pages (see the package doc).
	got := harness.StoredScans(t, filepath.Join(f.Backing(), "buffer.db"))
	acks.Missing(t, got, "3 power cuts")
	written, synced := f.Written()
	t.Logf("%d scans acknowledged across 3 power cuts mid-burst (%d sent), all in the buffer; %d stored in all; the gateway wrote %d bytes, synced %d, and %d were dropped by the cuts",
		len(acks.Acked), acks.Sent.Load(), len(got), written, synced, dropped)
}
