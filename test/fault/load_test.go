package fault

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/harness"
)

// load publishes scans from several publishers until stopped, each at QoS 1
// with its own counter. A publish that fails (broker restarting) is retried
// with the same counter until the broker acknowledges it, so acknowledged
// counters are gap-free: the test knows exactly what the broker accepted.
type load struct {
	s        *harness.Setup
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	acked    map[string]int // publisher -> highest acknowledged counter
	total    atomic.Int64
	interval time.Duration
}

func startLoad(t *testing.T, s *harness.Setup, pubs int, interval time.Duration) *load {
	l := &load{s: s, stop: make(chan struct{}), acked: map[string]int{}, interval: interval}
	for p := 0; p < pubs; p++ {
		name := fmt.Sprintf("pub%d", p)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.run(t, name, fmt.Sprintf("dock%d", p+1))
		}()
	}
	return l
}

func (l *load) run(t *testing.T, name, dock string) {
	var pub *harness.Publisher
	defer func() {
		if pub != nil {
			pub.Close()
		}
	}()
	tick := time.NewTicker(l.interval)
	defer tick.Stop()
	for n := 1; ; {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		if pub == nil {
			p, err := harness.TryPublisher(l.s.MQTT, fmt.Sprintf("%s-%s", l.s.ID, name))
			if err != nil {
				continue // broker down: try again on the next tick
			}
			pub = p
		}
		if err := pub.Publish(l.s.ScanTopic(dock, "scn-"+name), harness.ScanPayload(name, n)); err != nil {
			// Not acknowledged: reconnect and publish the same counter again.
			pub.Close()
			pub = nil
			continue
		}
		l.mu.Lock()
		l.acked[name] = n
		l.mu.Unlock()
		l.total.Add(1)
		n++
	}
}

// finish stops publishing and returns what the broker acknowledged.
func (l *load) finish() map[string]int {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for k, v := range l.acked {
		out[k] = v
	}
	return out
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// waitTotal waits until at least n messages were acknowledged in total.
func (l *load) waitTotal(g *harness.Gateway, n int64) {
	g.Eventually(2*time.Minute, fmt.Sprintf("%d messages published", n), func() bool { return l.total.Load() >= n })
}
