package backoff

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func delays(b *Backoff, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = b.Next()
	}
	return out
}

func equal(t *testing.T, got []time.Duration, want ...time.Duration) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestDoublesToCap(t *testing.T) {
	b := Backoff{Min: time.Second, Max: time.Minute}
	equal(t, delays(&b, 9), time.Second, 2*time.Second, 4*time.Second, 8*time.Second, 16*time.Second,
		32*time.Second, time.Minute, time.Minute, time.Minute)
}

func TestResetStartsOver(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	delays(&b, 5)
	b.Reset()
	equal(t, delays(&b, 2), 100*time.Millisecond, 200*time.Millisecond)
}

func TestFactor(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second, Factor: 1.5}
	equal(t, delays(&b, 4), 100*time.Millisecond, 150*time.Millisecond, 225*time.Millisecond, 337500*time.Microsecond)
}

func TestMaxBelowMin(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 300 * time.Millisecond}
	equal(t, delays(&b, 3), time.Second, 300*time.Millisecond, 300*time.Millisecond)
}

func TestNoOverflow(t *testing.T) {
	b := Backoff{Min: time.Hour, Max: 1<<63 - 1, Factor: 1e6}
	for range 10 {
		if d := b.Next(); d <= 0 {
			t.Fatalf("delay %v", d)
		}
	}
}

func TestJitter(t *testing.T) {
	r := 0.5
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second, Jitter: [2]float64{0.8, 1.2}, Rand: func() float64 { return r }}
	equal(t, delays(&b, 5), 100*time.Millisecond, 200*time.Millisecond, 400*time.Millisecond, 800*time.Millisecond, time.Second)
	b.Reset()
	r = 0
	if d := b.Next(); d != 80*time.Millisecond {
		t.Fatalf("low: %v", d)
	}
	r = 0.999999
	if d := b.Next(); d < 239*time.Millisecond || d > 240*time.Millisecond {
		t.Fatalf("high: %v", d)
	}
	// The growth is not jittered: the next base is 400ms.
	r = 0.5
	if d := b.Next(); d != 400*time.Millisecond {
		t.Fatalf("after jitter: %v", d)
	}
}

func TestJitterDefaultRandInRange(t *testing.T) {
	b := Backoff{Min: time.Second, Max: time.Second, Jitter: [2]float64{0.5, 1}}
	for range 1000 {
		if d := b.Next(); d < 500*time.Millisecond || d > time.Second {
			t.Fatalf("delay %v out of [0.5s, 1s]", d)
		}
	}
}

func TestWaitSleepsNext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := Backoff{Min: time.Second, Max: 4 * time.Second}
		start := time.Now()
		for _, want := range []time.Duration{time.Second, 3 * time.Second, 7 * time.Second, 11 * time.Second} {
			if !b.Wait(t.Context()) {
				t.Fatal("Wait = false")
			}
			if got := time.Since(start); got != want {
				t.Fatalf("woke after %v, want %v", got, want)
			}
		}
	})
}

func TestWaitEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		b := Backoff{Min: time.Hour, Max: time.Hour}
		start := time.Now()
		if b.Wait(ctx) {
			t.Fatal("Wait = true after ctx ended")
		}
		if got := time.Since(start); got != 30*time.Second {
			t.Fatalf("returned after %v, want 30s", got)
		}
	})
}

func TestSleepCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep = true on a cancelled ctx")
	}
}
