package pebble

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"
)

// fakeDisk is a health whose free space the test sets, and which counts
// the flushes it asks Pebble for.
type fakeDisk struct {
	*health
	free    atomic.Uint64
	nudges  atomic.Int64
	enospc  error
	flushOK func(cpebble.FlushInfo)
}

func newFakeDisk(t *testing.T) *fakeDisk {
	d := &fakeDisk{health: newHealth(t.TempDir(), -1, discard), enospc: fmt.Errorf("flush: %w", syscall.ENOSPC)}
	d.freeBytes = func(string) (uint64, error) { return d.free.Load(), nil }
	nudge := func() { d.nudges.Add(1) }
	d.nudge.Store(&nudge)
	d.flushOK = d.listener().FlushEnd
	t.Cleanup(d.close)
	return d
}

// tick lets the watcher see n more readings of the free space.
func tick(n int) {
	time.Sleep(time.Duration(n) * spaceRefresh)
	synctest.Wait()
}

func (d *fakeDisk) wantNudges(t *testing.T, want int64, when string) {
	t.Helper()
	if got := d.nudges.Load(); got != want {
		t.Fatalf("%s: Pebble asked to flush %d times, want %d", when, got, want)
	}
}

// The space watcher keeps watching until a flush succeeds: when the flush
// it asked for meets a full disk again, it asks again once there is room,
// rather than leave the writes stalled in Pebble waiting.
func TestSpaceWatcherAsksAgainAfterAFailedFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDisk(t)
		d.backgroundError(d.enospc)
		tick(3)
		d.wantNudges(t, 0, "disk full")
		d.free.Store(1 << 30)
		tick(1)
		d.wantNudges(t, 1, "space back")
		tick(3)
		d.wantNudges(t, 1, "space back, no new failure")
		// The flush asked for fails: the space went again.
		d.free.Store(0)
		d.backgroundError(d.enospc)
		tick(3)
		d.wantNudges(t, 1, "full again")
		d.free.Store(1 << 30)
		tick(1)
		d.wantNudges(t, 2, "space back again")
		// A flush succeeds: writes are accepted and the watcher ends.
		d.flushOK(cpebble.FlushInfo{})
		tick(1)
		if d.bgFull.Load() || d.watching.Load() {
			t.Fatalf("after a successful flush: bgFull %v, watcher running %v", d.bgFull.Load(), d.watching.Load())
		}
		if err := d.admit(1); err != nil {
			t.Fatalf("admit after a successful flush: %v", err)
		}
	})
}

// One watcher at most: a full disk reported again after admit saw space
// back (and cleared the flag), before the watcher's next reading, does
// not start a second watcher beside the first.
func TestSpaceWatcherIsOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDisk(t)
		d.backgroundError(d.enospc)
		synctest.Wait()
		d.free.Store(1 << 30)
		if err := d.admit(1); err != nil || d.bgFull.Load() {
			t.Fatalf("admit with space back: %v, bgFull %v", err, d.bgFull.Load())
		}
		d.backgroundError(d.enospc)
		tick(1)
		d.wantNudges(t, 1, "a tick with room after two ENOSPC reports around an admit")
		tick(4)
		d.wantNudges(t, 1, "no new failure")
	})
}
