package ratelimit

import (
	"fmt"
	"testing"
	"time"

	"github.com/sessiond/sessiond/sessiondtest"
)

func TestTableIsBounded(t *testing.T) {
	clock := sessiondtest.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := New(2, time.Minute, 3, clock.Now)

	// More addresses than the table holds: the oldest windows are dropped.
	for i := range 5 {
		l.Add(fmt.Sprint("10.0.0.", i))
		l.Add(fmt.Sprint("10.0.0.", i))
		clock.Advance(time.Second)
	}
	if n := l.Len(); n != 3 {
		t.Fatalf("the table holds %d addresses, want its bound 3", n)
	}
	for i, want := range []bool{false, false, true, true, true} {
		if _, blocked := l.Blocked(fmt.Sprint("10.0.0.", i)); blocked != want {
			t.Errorf("10.0.0.%d blocked %v, want %v", i, blocked, want)
		}
	}

	// Ended windows are dropped by the next call, without a timer.
	clock.Advance(time.Minute)
	if _, blocked := l.Blocked("10.0.0.4"); blocked {
		t.Error("blocked after its window ended")
	}
	if n := l.Len(); n != 0 {
		t.Errorf("%d addresses remembered after every window ended, want 0", n)
	}

	// Only ended windows are dropped: a later one stays.
	l.Add("a")
	clock.Advance(30 * time.Second)
	l.Add("b")
	l.Add("b")
	clock.Advance(30 * time.Second)
	if wait, blocked := l.Blocked("b"); !blocked || wait != 30*time.Second {
		t.Errorf("b: blocked %v for %v, want true for 30s", blocked, wait)
	}
	if n := l.Len(); n != 1 {
		t.Errorf("%d addresses remembered, want 1 (a's window ended)", n)
	}
}

func TestNilFailureLimiterBlocksNothing(t *testing.T) {
	var l *Windows
	l.Add("x")
	if _, blocked := l.Blocked("x"); blocked {
		t.Fatal("a nil limiter blocked")
	}
}

func TestTakeAllowsLimitPerWindow(t *testing.T) {
	clock := sessiondtest.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := New(3, time.Second, 100, clock.Now)
	for i := range 3 {
		if _, ok := l.Take("alice"); !ok {
			t.Fatalf("event %d refused within the limit", i+1)
		}
	}
	clock.Advance(400 * time.Millisecond)
	if wait, ok := l.Take("alice"); ok || wait != 600*time.Millisecond {
		t.Fatalf("fourth event: ok %v, wait %v; want refused for the 600ms left", ok, wait)
	}
	if _, ok := l.Take("bob"); !ok {
		t.Fatal("another key was refused")
	}
	clock.Advance(600 * time.Millisecond)
	if _, ok := l.Take("alice"); !ok {
		t.Fatal("refused after the window ended")
	}
	var none *Windows
	if _, ok := none.Take("x"); !ok {
		t.Fatal("a nil table refused")
	}
}
