// Package sessiondtest holds what tests of sessiond and of its adapters
// share: the conformance suites every Store adapter runs, TestStore (the
// Store contract, method by method) and TestEngine (the Manager's lifecycle
// on that store); a manual clock; and Eventually, the one way tests wait
// for work another goroutine does.
package sessiondtest

import (
	"sync"
	"time"

	"github.com/sessiond/sessiond"
)

// ManualClock is a sessiond.Clock that moves only when told. Timers whose
// time comes run their function in a new goroutine, as time.AfterFunc does.
type ManualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*manualTimer]struct{}
}

var _ sessiond.Clock = (*ManualClock)(nil)

// NewManualClock returns a clock reading t.
func NewManualClock(t time.Time) *ManualClock {
	return &ManualClock{now: t, timers: make(map[*manualTimer]struct{})}
}

// Now returns the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc runs f in its own goroutine once the clock has moved d ahead.
func (c *ManualClock) AfterFunc(d time.Duration, f func()) sessiond.Timer {
	t := &manualTimer{c: c, f: f}
	t.Reset(d)
	return t
}

// Advance moves the clock forward by d and fires the timers that came due.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*manualTimer
	for t := range c.timers {
		if !t.at.After(c.now) {
			due = append(due, t)
			delete(c.timers, t)
		}
	}
	c.mu.Unlock()
	for _, t := range due {
		go t.f()
	}
}

type manualTimer struct {
	c  *ManualClock
	f  func()
	at time.Time
}

func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, active := t.c.timers[t]
	delete(t.c.timers, t)
	return active
}

func (t *manualTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	_, active := t.c.timers[t]
	t.at = t.c.now.Add(d)
	fire := d <= 0
	if fire {
		delete(t.c.timers, t)
	} else {
		t.c.timers[t] = struct{}{}
	}
	t.c.mu.Unlock()
	if fire {
		go t.f()
	}
	return active
}

// Jump moves the clock forward by d without firing any timer, as if the
// timers ran late: for testing what reads do before a deadline is handled.
func (c *ManualClock) Jump(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Pending returns how many timers are waiting to fire: a test can check
// that what it started has stopped.
func (c *ManualClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}
