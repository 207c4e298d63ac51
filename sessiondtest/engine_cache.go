package sessiondtest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessiond/sessiond"
)

// The validation cache (Config.ValidationCache).

// Validations served from the cache read nothing from the store.
func testValidationCacheSkipsTheStore(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, h, sessiond.Config{ValidationCache: time.Minute})
		c := e.create("alice")
		if _, err := e.validate(c.Token); err != nil {
			t.Fatal(err)
		}
		reads := e.store.reads.Load()
		for range 10 {
			v, err := e.validate(c.Token)
			if err != nil || v.Session.ID != c.Session.ID {
				t.Fatalf("cached validation: %+v, %v", v, err)
			}
		}
		if n := e.store.reads.Load() - reads; n != 0 {
			t.Fatalf("10 validations within the cache's time read the store %d times", n)
		}
		// Past the cache's time, the store is read again.
		time.Sleep(time.Minute)
		if _, err := e.validate(c.Token); err != nil {
			t.Fatal(err)
		}
		if e.store.reads.Load() == reads {
			t.Fatal("a validation after the cache's time did not read the store")
		}
	})
}

// On the engine that revoked a session, no validation that starts after
// the revoke returned succeeds, however validations race it: 50 rounds.
func testCachedRevokeIsSeenAtOnce(t *testing.T, h Harness) {
	clock := NewManualClock(clockStart)
	e := start(t, h, sessiond.Config{Clock: clock, ValidationCache: time.Hour})
	for round := range 50 {
		c := e.create("alice")
		if _, err := e.validate(c.Token); err != nil {
			t.Fatal(err)
		}
		var revoked, stop atomic.Bool
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for !stop.Load() {
					after := revoked.Load()
					_, err := e.validate(c.Token)
					if after && err == nil {
						t.Errorf("round %d: a validation that began after the revoke returned succeeded", round)
						return
					}
				}
			})
		}
		if err := e.m.Revoke(context.Background(), c.Session.ID, ""); err != nil {
			t.Fatal(err)
		}
		revoked.Store(true)
		for range 20 {
			if _, err := e.validate(c.Token); !errors.Is(err, sessiond.ErrEnded) {
				t.Fatalf("round %d: validation after the revoke: %v; want session_ended", round, err)
			}
		}
		stop.Store(true)
		wg.Wait()
	}
}

// A revoke through another engine reaches this engine's cache through
// the event log, long before the cache's time runs out.
func testAnotherEnginesRevokeReachesTheCache(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		a := start(t, h, sessiond.Config{ValidationCache: time.Hour, Node: "host-a"})
		b := start(t, h, sessiond.Config{Node: "host-b", Store: a.store.Store})
		c := a.create("alice")
		if _, err := a.validate(c.Token); err != nil {
			t.Fatal(err)
		}
		if err := b.m.Revoke(t.Context(), c.Session.ID, ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // stores that poll their log (in fake time)
		synctest.Wait()
		if _, err := a.validate(c.Token); !errors.Is(err, sessiond.ErrEnded) {
			t.Fatalf("validation through the caching engine 2s after a revoke through another: %v; want session_ended", err)
		}
	})
}

// gateStore holds the first Get after it is armed, once it has read the
// session, until released: a validation's read made before a revoke that
// returns after it.
type gateStore struct {
	sessiond.Store
	armed   atomic.Bool
	read    chan struct{}
	release chan struct{}
}

func (g *gateStore) Get(ctx context.Context, id string) (*sessiond.Session, error) {
	s, err := g.Store.Get(ctx, id)
	if g.armed.CompareAndSwap(true, false) {
		close(g.read)
		<-g.release
	}
	return s, err
}

func (g *gateStore) FindToken(ctx context.Context, h sessiond.TokenHash) (*sessiond.Session, error) {
	return findToken(ctx, g.Store, h)
}

func (g *gateStore) WaitEvents(ctx context.Context, after sessiond.Cursor) (sessiond.Cursor, error) {
	return waitEvents(ctx, g.Store, after)
}

// A validation that read the session before a revoke on the same engine,
// and comes back after the revoke returned, does not put the session it
// read in the cache: the next validation fails.
func testAReadOlderThanARevokeIsNotCached(t *testing.T, h Harness) {
	clock := NewManualClock(clockStart)
	g := &gateStore{Store: openStore(t, h), read: make(chan struct{}), release: make(chan struct{})}
	p := web()
	p.TouchInterval, p.RotateAfter, p.RotationGrace = time.Hour, 0, 0 // validations write nothing
	p.TTL, p.IdleTimeout = 4*time.Hour, 2*time.Hour
	e := start(t, h, sessiond.Config{Clock: clock, Store: g, ValidationCache: time.Minute, Policies: []sessiond.Policy{p}})
	c := e.create("alice")
	clock.Jump(2 * time.Minute) // the create's cached copy is out of time: the next validation reads
	g.armed.Store(true)
	done := make(chan error, 1)
	go func() {
		_, err := e.validate(c.Token)
		done <- err
	}()
	<-g.read
	if err := e.m.Revoke(context.Background(), c.Session.ID, ""); err != nil {
		t.Fatal(err)
	}
	close(g.release)
	if err := <-done; err != nil { // it read the session live: it may have succeeded
		t.Logf("the validation held across the revoke: %v", err)
	}
	if _, err := e.validate(c.Token); !errors.Is(err, sessiond.ErrEnded) {
		t.Fatalf("validation after the revoke returned: %v; want session_ended, not the copy read before it", err)
	}
}
