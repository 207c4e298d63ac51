package sessiond

import "time"

// Clock tells the time and runs functions later. The engine takes all its
// time from its Clock; tests inject a fake one or run under testing/synctest.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a timer made by a Clock's AfterFunc.
type Timer interface {
	// Stop prevents the timer from firing; it reports whether it did so.
	Stop() bool
	// Reset makes the timer fire after d, reporting whether it was active.
	Reset(d time.Duration) bool
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
