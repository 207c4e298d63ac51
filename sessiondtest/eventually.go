package sessiondtest

import (
	"testing"
	"time"
)

// EventuallyTimeout is how long Eventually waits at most: generous, so that
// a loaded machine running tests with -race does not fail them, since a
// condition that holds ends the wait at once.
const EventuallyTimeout = 10 * time.Second

// Eventually waits until cond holds, polling it every millisecond at first
// and every 10 milliseconds at most, and fails t (naming what it waited
// for) if it does not hold within EventuallyTimeout.
//
// It waits for work that another goroutine does and that the test cannot
// be told of: a timer's function after ManualClock.Advance, a close
// reaching the server, a server getting ready. It is never a way to let a
// timeout pass: tests move time with testing/synctest or a ManualClock.
// Inside a synctest bubble, use synctest.Wait instead.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(EventuallyTimeout)
	for poll := time.Millisecond; !cond(); poll = min(2*poll, 10*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", EventuallyTimeout, what)
		}
		time.Sleep(poll)
	}
}
