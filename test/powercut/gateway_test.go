package powercut

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/harness"
	"github.com/edgegw/gateway/test/testenv"
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
	for round := range 3 {
		s.GW.Start()
		before := acks.N.Load()
		var wg sync.WaitGroup
		for d := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				acks.Burst(t, s.Broker, fmt.Sprintf("pc%d-%d", round, d), 20000, 200)
			}()
		}
		testenv.Eventually(t, 60*time.Second, "a few thousand scans acknowledged", func() bool { return acks.N.Load() >= before+3000 })
		s.GW.Kill()
		wg.Wait()
		dropped += f.Unsynced()
		f.Cut()
		if err := f.Remount(); err != nil {
			t.Fatal(err)
		}
	}
	s.GW.Start()
	s.GW.Stop()
	f.Cut()
	// Read the backing file, not through the mount: this process serves
	// the file system and must not fault on its pages (see the package doc).
	got := harness.StoredScans(t, filepath.Join(f.Backing(), "buffer.db"))
	acks.Mu.Lock()
	defer acks.Mu.Unlock()
	missing := 0
	for k := range acks.Acked {
		if got[k] == 0 {
			missing++
			if missing <= 3 {
				t.Errorf("scan %s was acknowledged and is not in the buffer", k)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged scans missing after 3 power cuts", missing, len(acks.Acked))
	}
	written, synced := f.Written()
	t.Logf("%d scans acknowledged across 3 power cuts mid-burst (%d sent), all in the buffer; %d stored in all; the gateway wrote %d bytes, synced %d, and %d were dropped by the cuts",
		len(acks.Acked), acks.Sent.Load(), len(got), written, synced, dropped)
}
