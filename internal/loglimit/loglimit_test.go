package loglimit

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func TestAllowOncePerInterval(t *testing.T) {
	l := New[string](time.Minute, 0)
	if ok, held := l.Allow("a", t0); !ok || held != 0 {
		t.Fatalf("first: %v %d", ok, held)
	}
	for i := range 5 {
		if ok, _ := l.Allow("a", t0.Add(time.Duration(i)*time.Second)); ok {
			t.Fatalf("repeat %d let through", i)
		}
	}
	if ok, _ := l.Allow("b", t0); !ok {
		t.Fatal("other key held back")
	}
	if w := l.Wait("a", t0.Add(20*time.Second)); w != 40*time.Second {
		t.Fatalf("Wait = %v", w)
	}
	if ok, held := l.Allow("a", t0.Add(time.Minute)); !ok || held != 5 {
		t.Fatalf("after interval: %v %d", ok, held)
	}
	if ok, held := l.Allow("a", t0.Add(2*time.Minute)); !ok || held != 0 {
		t.Fatalf("quiet: %v %d", ok, held)
	}
}

func TestFlush(t *testing.T) {
	l := New[string](time.Minute, 0)
	if n := l.Flush("a", t0); n != 0 {
		t.Fatalf("unknown key: %d", n)
	}
	l.Allow("a", t0)
	l.Allow("a", t0.Add(time.Second))
	l.Allow("a", t0.Add(2*time.Second))
	if n := l.Flush("a", t0.Add(time.Minute)); n != 2 {
		t.Fatalf("Flush = %d", n)
	}
	// The flushed line counts as the latest: the next waits a full interval.
	if ok, _ := l.Allow("a", t0.Add(time.Minute+time.Second)); ok {
		t.Fatal("let through right after a flush")
	}
}

func TestMaxKeysPrunes(t *testing.T) {
	l := New[int](time.Minute, 2)
	l.Allow(1, t0)
	l.Allow(2, t0.Add(30*time.Second))
	l.Allow(3, t0.Add(time.Minute)) // forgets 1 (its interval passed), keeps 2
	if ok, _ := l.Allow(2, t0.Add(time.Minute)); ok {
		t.Fatal("key 2 forgotten")
	}
	l.Allow(4, t0.Add(time.Minute)) // none has passed: forgets all
	if ok, _ := l.Allow(2, t0.Add(time.Minute)); !ok {
		t.Fatal("key 2 kept past MaxKeys")
	}
	if n := l.Len(); n != 2 {
		t.Fatalf("Len = %d", n)
	}
}

func TestHeld(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("x", Held(0))
	log.Info("y", Held(3))
	if got := buf.String(); strings.Contains(strings.Split(got, "\n")[0], Key) || !strings.Contains(got, Key+"=3") {
		t.Fatalf("log:\n%s", got)
	}
}

// lineChan receives each line written to it (slog writes a line a Write).
type lineChan chan string

func (c lineChan) Write(p []byte) (int, error) {
	c <- strings.TrimSuffix(string(p), "\n")
	return len(p), nil
}

// read appends the lines written so far to seen.
func (c lineChan) read(seen []string) []string {
	for {
		select {
		case l := <-c:
			seen = append(seen, l)
		default:
			return seen
		}
	}
}

func TestSummary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := make(lineChan, 100)
		var got []string
		log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
		s := NewSummary(log, slog.LevelWarn, "refused", 5*time.Second)
		s.Event("remote", "a")
		for i := range 9 {
			time.Sleep(100 * time.Millisecond)
			s.Event("remote", "b", "i", i)
		}
		if got = out.read(got); len(got) != 1 || got[0] != `level=WARN msg=refused remote=a` {
			t.Fatalf("before the interval: %q", got)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		got = out.read(got)
		if len(got) != 2 || got[1] != `level=WARN msg=refused remote=b i=8 suppressed=8` {
			t.Fatalf("after the interval: %q", got)
		}
		// One held event: its own line, no count.
		s.Event("remote", "c")
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if got = out.read(got); len(got) != 3 || got[2] != `level=WARN msg=refused remote=c` {
			t.Fatalf("single held: %q", got)
		}
		// Stop writes what is held, then lets everything through.
		s.Event("remote", "d")
		s.Stop()
		s.Event("remote", "e")
		if got = out.read(got); len(got) != 5 || got[3] != `level=WARN msg=refused remote=d` || got[4] != `level=WARN msg=refused remote=e` {
			t.Fatalf("stop: %q", got)
		}
	})
}
