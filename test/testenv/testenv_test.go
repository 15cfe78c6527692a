package testenv

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		n := 0
		if err := Poll(time.Minute, "three calls", func() bool { n++; return n == 3 }); err != nil || n != 3 {
			t.Fatalf("Poll = %v after %d calls", err, n)
		}
		n = 0
		if err := Poll(time.Minute, "three calls", func() error {
			if n++; n < 3 {
				return fmt.Errorf("call %d", n)
			}
			return nil
		}); err != nil || n != 3 {
			t.Fatalf("Poll = %v after %d calls", err, n)
		}
		if el := time.Since(start); el >= time.Second {
			t.Fatalf("took %s of the bubble's clock", el)
		}
	})
}

// A timeout names what was awaited and, for a func() error, the last error;
// the deadline is kept (the last sleep is cut short).
func TestPollTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		err := Poll(5*time.Second, "a bool", func() bool { return false })
		if err == nil || err.Error() != "timed out after 5s waiting for: a bool" {
			t.Fatalf("bool: %v", err)
		}
		if el := time.Since(start); el != 5*time.Second {
			t.Fatalf("gave up after %s, want 5s", el)
		}
		want := errors.New("still 2 left")
		n := 0
		err = Poll(5*time.Second, "an error", func() error {
			n++
			if n == 1 {
				return errors.New("first")
			}
			return want
		})
		if !errors.Is(err, want) || !strings.HasSuffix(err.Error(), "waiting for: an error: still 2 left") {
			t.Fatalf("error: %v", err)
		}
	})
}
