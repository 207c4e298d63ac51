package httpapi

import (
	"fmt"
	"testing"
	"time"

	"github.com/sessiond/sessiond/sessiondtest"
)

func TestFailureLimiterTableIsBounded(t *testing.T) {
	clock := sessiondtest.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := newFailureLimiter(2, time.Minute, 3, clock.Now)

	// More addresses than the table holds: the oldest windows are dropped.
	for i := range 5 {
		l.fail(fmt.Sprint("10.0.0.", i))
		l.fail(fmt.Sprint("10.0.0.", i))
		clock.Advance(time.Second)
	}
	if n := l.len(); n != 3 {
		t.Fatalf("the table holds %d addresses, want its bound 3", n)
	}
	for i, want := range []bool{false, false, true, true, true} {
		if _, blocked := l.blocked(fmt.Sprint("10.0.0.", i)); blocked != want {
			t.Errorf("10.0.0.%d blocked %v, want %v", i, blocked, want)
		}
	}

	// Ended windows are dropped by the next call, without a timer.
	clock.Advance(time.Minute)
	if _, blocked := l.blocked("10.0.0.4"); blocked {
		t.Error("blocked after its window ended")
	}
	if n := l.len(); n != 0 {
		t.Errorf("%d addresses remembered after every window ended, want 0", n)
	}

	// Only ended windows are dropped: a later one stays.
	l.fail("a")
	clock.Advance(30 * time.Second)
	l.fail("b")
	l.fail("b")
	clock.Advance(30 * time.Second)
	if wait, blocked := l.blocked("b"); !blocked || wait != 30*time.Second {
		t.Errorf("b: blocked %v for %v, want true for 30s", blocked, wait)
	}
	if n := l.len(); n != 1 {
		t.Errorf("%d addresses remembered, want 1 (a's window ended)", n)
	}
}

func TestNilFailureLimiterBlocksNothing(t *testing.T) {
	var l *failureLimiter
	l.fail("x")
	if _, blocked := l.blocked("x"); blocked {
		t.Fatal("a nil limiter blocked")
	}
}
