package pebble

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"

	cpebble "github.com/cockroachdb/pebble/v2"
)

// An open that fails once Pebble is open (here: a data format this build
// does not read) leaves nothing running: the space watcher that Pebble's
// open had started is stopped, and the database is closed.
func TestFailedOpenStopsWhatItStarted(t *testing.T) {
	dir := t.TempDir()
	db, err := cpebble.Open(dir, quiet(dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(metaFormat, []byte("99"), cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDisk(t)
		d.dir = dir
		d.backgroundError(d.enospc) // as if a flush met a full disk while Pebble opened
		_, err := openStore(context.Background(), Options{Dir: dir, EventRetention: 10}, discard, d.health)
		if err == nil || !strings.Contains(err.Error(), `data format "99"`) {
			t.Fatalf("open of a store of another format: %v", err)
		}
		synctest.Wait()
		if d.watching.Load() {
			t.Fatal("the space watcher runs on after the open failed")
		}
		select {
		case <-d.closing:
		default:
			t.Fatal("the health of a failed open is not closed")
		}
	})
	db, err = cpebble.Open(dir, quiet(dir))
	if err != nil {
		t.Fatalf("the database of the failed open is not closed: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// When Pebble fails for good while it opens, openDB returns at once, and
// the database, if Pebble opens it all the same, is closed: nothing of it
// runs on (the synctest bubble ends only once every goroutine has), and
// the directory can be opened again.
func TestOpenDBClosesADatabaseOpenedAfterAFailure(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		for range 10 { // the select may find the open done first: try again
			h := newHealth(dir, -1, discard)
			h.fail("injected: Pebble failed while opening")
			o := quiet(dir)
			o.Logger, o.EventListener = logger{l: discard, health: h}, h.listener()
			db, err := openDB(context.Background(), dir, h, o)
			if err == nil {
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if !strings.Contains(err.Error(), "injected") {
				t.Fatalf("openDB after a failure: %v", err)
			}
			synctest.Wait() // the open goes on, and ends
			return
		}
		t.Fatal("openDB never saw the failure first")
	})
	db, err := cpebble.Open(dir, quiet(dir))
	if err != nil {
		t.Fatalf("the database opened after the failure is not closed: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// quiet are Pebble options that log nothing.
func quiet(dir string) *cpebble.Options {
	return &cpebble.Options{Logger: logger{l: discard, health: newHealth(dir, -1, discard)}}
}
