package uplink

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/testenv"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Waiters are served by priority, then arrival; each grant is recorded, so
// the assertion is on the order of grants, not on timings. The clock only
// moves when the test moves it, so no tokens arrive until all three queue.
func TestBandwidthServesHigherPriorityFirst(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	bw := newBandwidth(100<<10, clk.Now) // 100KiB/s, burst 10KiB
	defer bw.stop()
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run := func(name string, prio, n int) {
		defer wg.Done()
		for i := 0; i < n; i++ {
			if err := bw.wait(ctx, prio, 2048); err != nil {
				return
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
		}
	}
	wg.Add(3)
	go run("low", 0, 20)
	go run("mid", 5, 20)
	go run("high", 10, 20)
	queued := func() int {
		bw.mu.Lock()
		defer bw.mu.Unlock()
		return len(bw.waiters)
	}
	testenv.Eventually(t, 5*time.Second, "three waiters queued", func() bool { return queued() == 3 })
	// Feed one grant's worth of tokens at a time, and each time wait until
	// the granted stream is queued again, so every grant sees all three
	// that still have work.
	for granted := 0; granted < 60; granted++ {
		mu.Lock()
		before := len(order)
		mu.Unlock()
		clk.add(20 * time.Millisecond) // 2048 bytes at 100KiB/s
		bw.dispatch()
		testenv.Eventually(t, 5*time.Second, "one more grant", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(order) == before+1
		})
		left := map[string]int{"high": 20, "mid": 20, "low": 20}
		mu.Lock()
		for _, s := range order {
			left[s]--
		}
		mu.Unlock()
		want := 0
		for _, n := range left {
			if n > 0 {
				want++
			}
		}
		testenv.Eventually(t, 5*time.Second, "streams with work queued again", func() bool { return queued() == want })
	}
	wg.Wait()

	last := map[string]int{}
	first := map[string]int{}
	for i, s := range order {
		if _, ok := first[s]; !ok {
			first[s] = i
		}
		last[s] = i
	}
	if !(last["high"] < first["mid"] && last["mid"] < first["low"]) {
		t.Errorf("grant order %v: want all of high, then mid, then low", order)
	}
}

func TestBandwidthRate(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	bw := newBandwidth(10000, clk.Now) // burst 1024 (the minimum)
	defer bw.stop()
	bw.mu.Lock()
	if bw.burst != 1024 {
		t.Errorf("burst %v", bw.burst)
	}
	bw.refill()
	if bw.tokens != 0 {
		t.Errorf("starts with %v tokens", bw.tokens)
	}
	clk.add(50 * time.Millisecond) // 500 bytes
	bw.refill()
	if bw.tokens != 500 {
		t.Errorf("tokens after 50ms at 10000/s = %v", bw.tokens)
	}
	clk.add(time.Hour)
	bw.refill()
	if bw.tokens != bw.burst {
		t.Errorf("tokens not capped at the burst: %v", bw.tokens)
	}
	bw.mu.Unlock()
	// A request above the burst is granted from a full bucket, into debt.
	if err := bw.wait(context.Background(), 0, 5000); err != nil {
		t.Fatal(err)
	}
	bw.mu.Lock()
	if bw.tokens != 1024-5000 {
		t.Errorf("tokens after a large grant %v", bw.tokens)
	}
	bw.mu.Unlock()
}

func TestBandwidthWaitCancelled(t *testing.T) {
	bw := newBandwidth(1024, time.Now)
	defer bw.stop()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- bw.wait(ctx, 0, 1<<20) }()
	testenv.Eventually(t, 5*time.Second, "queued", func() bool {
		bw.mu.Lock()
		defer bw.mu.Unlock()
		return len(bw.waiters) == 1
	})
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("wait = %v", err)
	}
	bw.mu.Lock()
	defer bw.mu.Unlock()
	if len(bw.waiters) != 0 {
		t.Error("cancelled waiter left in the queue")
	}
}
