package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edgegw/gateway/edge/config"
)

// localYAML is a gateway's local file; %s is the trusted-keys file.
const localYAML = `
gateway:
  id: dock-7
  groups: [east, docks]
  trusted_keys_file: %s
buffer:
  path: /data/edgegw/buffer.db
  disk_budget: 64MiB
streams:
  - name: scans
uplink:
  service_url: pulsar://127.0.0.1:6650
  admin_url: http://127.0.0.1:8080
http:
  listen: 127.0.0.1:9108
fleet:
  probation: 1s
`

// pushedYAML is a valid pushed document (no local-only sections).
const pushedYAML = `
streams:
  - name: scans
    max_events: 5000
  - name: telemetry
    overflow: drop-oldest
uplink:
  service_url: pulsar://10.0.0.1:6650
  admin_url: http://10.0.0.1:8080
`

type testEnv struct {
	t     *testing.T
	key   *PrivateKey
	other *PrivateKey // not trusted
	keys  TrustedKeys
	local *config.Config
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	other, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "trusted_keys")
	if err := os.WriteFile(path, []byte("# operators\n"+TrustedLine(key.Public(), "ops team")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	local, err := config.Parse([]byte(fmt.Sprintf(localYAML, path)))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := LoadTrustedKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{t: t, key: key, other: other, keys: keys, local: local}
}

// bundle returns a bundle for target signed by the trusted key.
func (e *testEnv) bundle(target Target, version uint64, doc string) *Bundle {
	b := &Bundle{Target: target, Version: version, IssuedAt: time.Unix(1700000000, 123456789).UTC(), Document: []byte(doc)}
	b.Sign(e.key)
	return b
}

func (e *testEnv) wire(b *Bundle) []byte {
	e.t.Helper()
	data, err := Marshal(b)
	if err != nil {
		e.t.Fatal(err)
	}
	return data
}

// memStore is a Store in memory.
type memStore struct {
	mu  sync.Mutex
	m   map[string][]byte
	err error // returned by Put when set
}

func (s *memStore) Get(key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key], nil
}

func (s *memStore) Put(key string, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[key] = append([]byte(nil), val...)
	return nil
}

// fakeRuntime records swaps; the uplink is healthy unless the running
// config's service URL is in dead (or wanDown is set); the rest of the
// gateway is healthy unless unhealthy returns a reason for the running
// config.
type fakeRuntime struct {
	mu        sync.Mutex
	running   *config.Config
	swaps     []*config.Config
	failNext  error
	dead      map[string]bool
	wanDown   bool
	unhealthy func(cfg *config.Config) string
	swapDelay time.Duration
}

func (r *fakeRuntime) Swap(ctx context.Context, cfg *config.Config) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.failNext; err != nil {
		r.failNext = nil
		return err
	}
	r.swaps = append(r.swaps, cfg)
	r.running = cfg
	if r.swapDelay > 0 {
		time.Sleep(r.swapDelay)
	}
	return ctx.Err()
}

func (r *fakeRuntime) UplinkHealthy() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.wanDown {
		return false, "stream scans: dial tcp: no route to host"
	}
	if r.running != nil && r.dead[r.running.Uplink.ServiceURL] {
		return false, "stream scans: connection refused"
	}
	return true, ""
}

func (r *fakeRuntime) Healthy() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unhealthy != nil && r.running != nil {
		if why := r.unhealthy(r.running); why != "" {
			return false, why
		}
	}
	return true, ""
}

func (r *fakeRuntime) current() *config.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running
}

var errBoom = errors.New("boom")

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o644) }
