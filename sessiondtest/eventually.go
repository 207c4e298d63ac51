package sessiondtest

import (
	"runtime"
	"testing"
	"time"
)

// EventuallyTimeout is how long Eventually waits at most: generous, so
// that a loaded machine running the tests with -race does not fail them; a
// condition that holds ends the wait at once.
const EventuallyTimeout = 10 * time.Second

// Eventually waits until cond holds, polling it every millisecond at first
// and every 10 milliseconds at most. If it does not hold within
// EventuallyTimeout, Eventually fails t with what it waited for and the
// stacks of all goroutines, which show where the work is stuck.
//
// It waits for work that another goroutine does and that the test cannot
// be told of: a timer's function after ManualClock.Advance, a close
// reaching the server, goroutines ending, a server getting ready. It is
// never a way to let a timeout pass: tests move time with testing/synctest
// or a ManualClock. Inside a synctest bubble, use synctest.Wait instead.
//
// cond runs on the calling goroutine, so it may fail t itself.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(EventuallyTimeout)
	for poll := time.Millisecond; !cond(); poll = min(2*poll, 10*time.Millisecond) {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("timed out after %v waiting for %s; goroutines:\n%s", EventuallyTimeout, what, buf)
		}
		time.Sleep(poll)
	}
}
