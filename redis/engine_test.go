package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/redistest"
	"github.com/sessiond/sessiond/sessiondtest"
)

// The engine suite opens its stores inside testing/synctest bubbles. A
// rueidis client cannot run there: its goroutines wait on sockets, which
// keeps a bubble from ever being idle (its fake time would never move),
// and one made outside wakes the callers it pipelines for through a
// sync.Cond, which the runtime refuses for a goroutine of a bubble
// ("semaphore wake of synctest goroutine from outside bubble", fatal).
//
// So the suite's stores are relayed: each call is handed, over channels
// made outside any bubble, to a worker goroutine outside, which makes it
// on a client made outside. A caller in a bubble waiting for its answer
// is not durably blocked (the channel is not the bubble's), so fake time
// stands still while a call is in flight, as it would for a store that
// answers at once. The worker calls with a context of its own (30s of
// real time): a bubble's context may not be waited on from outside.

// relayTimeout bounds each relayed call, in real time.
const relayTimeout = 30 * time.Second

// relay runs functions on workers outside any bubble.
type relay struct {
	free chan *slot // slots not in use
	work chan *slot
}

type slot struct {
	fn   func(context.Context)
	done chan struct{}
}

// newRelay starts n workers, stopped when t ends. Call it outside any bubble.
func newRelay(t *testing.T, n int) *relay {
	r := &relay{free: make(chan *slot, n), work: make(chan *slot)}
	for range n {
		r.free <- &slot{done: make(chan struct{})}
		go func() {
			for s := range r.work {
				ctx, cancel := context.WithTimeout(context.Background(), relayTimeout)
				s.fn(ctx)
				cancel()
				s.done <- struct{}{}
			}
		}()
	}
	t.Cleanup(func() { close(r.work) })
	return r
}

// do runs fn on a worker and waits for it; ctx's error, if it has one
// already, is returned instead.
func (r *relay) do(ctx context.Context, fn func(context.Context)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s := <-r.free
	s.fn = fn
	r.work <- s
	<-s.done
	s.fn = nil
	r.free <- s
	return nil
}

// relayedStore is a Store whose calls go through a relay.
type relayedStore struct {
	s *Store
	r *relay
}

var (
	_ sessiond.Store       = relayedStore{}
	_ sessiond.EventWaiter = relayedStore{}
)

func (rs relayedStore) Create(ctx context.Context, c sessiond.Change, lim sessiond.Limit) (ev []*sessiond.Session, err error) {
	if rerr := rs.r.do(ctx, func(ctx context.Context) { ev, err = rs.s.Create(ctx, c, lim) }); rerr != nil {
		return nil, rerr
	}
	return ev, err
}

func (rs relayedStore) Get(ctx context.Context, id string) (v *sessiond.Session, err error) {
	if rerr := rs.r.do(ctx, func(ctx context.Context) { v, err = rs.s.Get(ctx, id) }); rerr != nil {
		return nil, rerr
	}
	return v, err
}

func (rs relayedStore) FindDevice(ctx context.Context, subject, deviceID string) (v []*sessiond.Session, err error) {
	if rerr := rs.r.do(ctx, func(ctx context.Context) { v, err = rs.s.FindDevice(ctx, subject, deviceID) }); rerr != nil {
		return nil, rerr
	}
	return v, err
}

func (rs relayedStore) Update(ctx context.Context, c sessiond.Change) (err error) {
	if rerr := rs.r.do(ctx, func(ctx context.Context) { err = rs.s.Update(ctx, c) }); rerr != nil {
		return rerr
	}
	return err
}

func (rs relayedStore) Delete(ctx context.Context, id string, version uint64) (err error) {
	if rerr := rs.r.do(ctx, func(ctx context.Context) { err = rs.s.Delete(ctx, id, version) }); rerr != nil {
		return rerr
	}
	return err
}

func (rs relayedStore) Live(ctx context.Context, subject string) (v []*sessiond.Session, err error) {
	if rerr := rs.r.do(ctx, func(ctx context.Context) { v, err = rs.s.Live(ctx, subject) }); rerr != nil {
		return nil, rerr
	}
	return v, err
}

func (rs relayedStore) List(ctx context.Context, q sessiond.Query) (p sessiond.Page, err error) {
	if rerr := rs.r.do(ctx, func(ctx context.Context) { p, err = rs.s.List(ctx, q) }); rerr != nil {
		return sessiond.Page{}, rerr
	}
	return p, err
}

func (rs relayedStore) Stats(ctx context.Context) (st sessiond.StoreStats, err error) {
	if rerr := rs.r.do(ctx, func(ctx context.Context) { st, err = rs.s.Stats(ctx) }); rerr != nil {
		return sessiond.StoreStats{}, rerr
	}
	return st, err
}

func (rs relayedStore) Conns(ctx context.Context, sessionID string) (v []sessiond.Connection, err error) {
	if rerr := rs.r.do(ctx, func(ctx context.Context) { v, err = rs.s.Conns(ctx, sessionID) }); rerr != nil {
		return nil, rerr
	}
	return v, err
}

func (rs relayedStore) Conn(ctx context.Context, connID string) (v *sessiond.Connection, err error) {
	if rerr := rs.r.do(ctx, func(ctx context.Context) { v, err = rs.s.Conn(ctx, connID) }); rerr != nil {
		return nil, rerr
	}
	return v, err
}

func (rs relayedStore) NodeConns(ctx context.Context, node string, limit int) (v []sessiond.Connection, err error) {
	if rerr := rs.r.do(ctx, func(ctx context.Context) { v, err = rs.s.NodeConns(ctx, node, limit) }); rerr != nil {
		return nil, rerr
	}
	return v, err
}

func (rs relayedStore) ConnNodes(ctx context.Context) (v []string, err error) {
	if rerr := rs.r.do(ctx, func(ctx context.Context) { v, err = rs.s.ConnNodes(ctx) }); rerr != nil {
		return nil, rerr
	}
	return v, err
}

func (rs relayedStore) PutLease(ctx context.Context, l sessiond.NodeLease) (err error) {
	if rerr := rs.r.do(ctx, func(ctx context.Context) { err = rs.s.PutLease(ctx, l) }); rerr != nil {
		return rerr
	}
	return err
}

func (rs relayedStore) Leases(ctx context.Context) (v []sessiond.NodeLease, err error) {
	if rerr := rs.r.do(ctx, func(ctx context.Context) { v, err = rs.s.Leases(ctx) }); rerr != nil {
		return nil, rerr
	}
	return v, err
}

func (rs relayedStore) DeleteLease(ctx context.Context, node string, version uint64) (err error) {
	if rerr := rs.r.do(ctx, func(ctx context.Context) { err = rs.s.DeleteLease(ctx, node, version) }); rerr != nil {
		return rerr
	}
	return err
}

func (rs relayedStore) Events(ctx context.Context, after sessiond.Cursor, limit int) (v []sessiond.Event, err error) {
	if rerr := rs.r.do(ctx, func(ctx context.Context) { v, err = rs.s.Events(ctx, after, limit) }); rerr != nil {
		return nil, rerr
	}
	return v, err
}

func (rs relayedStore) Head(ctx context.Context) (v sessiond.Cursor, err error) {
	if rerr := rs.r.do(ctx, func(ctx context.Context) { v, err = rs.s.Head(ctx) }); rerr != nil {
		return sessiond.Cursor{}, rerr
	}
	return v, err
}

// Close makes no call to Redis: no relay needed.
func (rs relayedStore) Close() error { return rs.s.Close() }

// engineHarness is storeHarness for the engine suite: relayed stores.
func engineHarness(t *testing.T, rawURL string) sessiondtest.Harness {
	c := open(t, rawURL)
	r := newRelay(t, 64)
	return sessiondtest.Harness{
		Open: func(tb testing.TB) sessiond.Store {
			s, err := NewStore(c, StoreOptions{KeyPrefix: fmt.Sprintf("test%d:", prefixes.Add(1))})
			if err != nil {
				tb.Fatal(err)
			}
			return relayedStore{s: s, r: r}
		},
	}
}

func TestEngineStandalone(t *testing.T) {
	sessiondtest.TestEngine(t, engineHarness(t, redistest.Standalone(t)))
}

func TestEngineCluster(t *testing.T) {
	sessiondtest.TestEngine(t, engineHarness(t, redistest.Cluster(t)))
}

func TestEngineSentinel(t *testing.T) {
	sessiondtest.TestEngine(t, engineHarness(t, redistest.Sentinel(t)))
}

// relayPoll is how often, in a bubble's fake time, the relayed store's
// WaitEvents looks at the log.
const relayPoll = time.Second

// WaitEvents polls the logs' heads through the relay every relayPoll of
// the bubble's time: the store's own WaitEvents waits on the real clock,
// and a call in flight through the relay keeps the bubble's time from
// moving. The store's WaitEvents itself is checked by the store suite.
func (rs relayedStore) WaitEvents(ctx context.Context, after sessiond.Cursor) (sessiond.Cursor, error) {
	for {
		head, err := rs.Head(ctx)
		if err != nil || after.Behind(head) {
			return head, err
		}
		t := time.NewTimer(relayPoll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return sessiond.Cursor{}, ctx.Err()
		}
	}
}

func (rs relayedStore) ClaimDue(ctx context.Context, now time.Time, hold time.Duration, limit int) (due []sessiond.Due, next time.Time, err error) {
	if rerr := rs.r.do(ctx, func(ctx context.Context) { due, next, err = rs.s.ClaimDue(ctx, now, hold, limit) }); rerr != nil {
		return nil, time.Time{}, rerr
	}
	return due, next, err
}

func (rs relayedStore) Reschedule(ctx context.Context, d sessiond.Due, version uint64) (err error) {
	if rerr := rs.r.do(ctx, func(ctx context.Context) { err = rs.s.Reschedule(ctx, d, version) }); rerr != nil {
		return rerr
	}
	return err
}
