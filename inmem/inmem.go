// Package inmem is a Store that keeps everything in memory: for tests, for
// caches of sessions that may be lost on restart, and as the reference that
// the durable stores must agree with.
package inmem

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/memindex"
)

// DefaultEventRetention is how many events the log keeps when Options leave it zero.
const DefaultEventRetention = 100_000

// Options configure a Store.
type Options struct {
	// EventRetention is how many of the newest events Events can return.
	// 0 means DefaultEventRetention.
	EventRetention int
}

// Store is an in-memory sessiond.Store.
type Store struct {
	memindex.Reads // Get, FindToken, FindDevice, Live, List, Stats, Conns, Conn, NodeConns, ConnNodes, Leases, ClaimDue, Reschedule
	leases         memindex.Leases
	consumers      memindex.Consumers

	closed atomic.Bool

	evMu   sync.Mutex // writers: numbering events and appending them, in that order
	events *memindex.EventRing
}

var (
	_ sessiond.Store       = (*Store)(nil)
	_ sessiond.EventWaiter = (*Store)(nil)
	_ sessiond.Consumers   = (*Store)(nil)
)

// New returns an empty Store.
func New(opts Options) *Store {
	if opts.EventRetention <= 0 {
		opts.EventRetention = DefaultEventRetention
	}
	s := &Store{events: memindex.NewEventRing(opts.EventRetention)}
	s.Reads = memindex.Reads{Index: memindex.New(), Lease: &s.leases, Check: s.check}
	return s
}

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return sessiond.ErrUnavailable
	}
	return ctx.Err()
}

// Create implements sessiond.Store.
func (s *Store) Create(ctx context.Context, c sessiond.Change, lim sessiond.Limit) ([]*sessiond.Session, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	// No copy of the session: the index copies what it keeps.
	defer s.Index.Lock(c.Session.Subject).Unlock()
	plan, err := s.Index.PlanCreate(c, lim, false)
	if err != nil {
		return nil, err
	}
	s.evMu.Lock()
	defer s.evMu.Unlock()
	if err := s.Index.ApplyCreate(c, plan, func() { s.appendEvents(plan.Events) }); err != nil {
		return nil, err
	}
	copy(c.Events, plan.Events[len(plan.Events)-len(c.Events):])
	return plan.Evicted, nil
}

// commit publishes a change and its events as one step: readers of the
// event log never see an event before the change it records.
func (s *Store) commit(changes []sessiond.Change, deletes []string, events []sessiond.Event) {
	s.evMu.Lock()
	defer s.evMu.Unlock()
	s.Index.Apply(changes, deletes)
	s.appendEvents(events)
}

// appendEvents numbers events and puts them in the ring. s.evMu is held.
func (s *Store) appendEvents(events []sessiond.Event) {
	last := s.events.Last()
	for i := range events {
		last++
		events[i].Seq = last
	}
	s.events.Append(events)
}

// Update implements sessiond.Store.
func (s *Store) Update(ctx context.Context, c sessiond.Change) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	defer s.Index.Lock(c.Session.Subject).Unlock()
	if err := s.Index.CheckUpdate(c); err != nil {
		return err
	}
	s.commit([]sessiond.Change{c}, nil, c.Events)
	return nil
}

// Delete implements sessiond.Store.
func (s *Store) Delete(ctx context.Context, id string, version uint64) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	subject, ok := s.Index.SubjectOf(id)
	if !ok {
		return sessiond.ErrNotFound
	}
	defer s.Index.Lock(subject).Unlock()
	if err := s.Index.CheckDelete(id, version); err != nil {
		return err
	}
	s.commit(nil, []string{id}, nil)
	return nil
}

// PutLease implements sessiond.Store.
func (s *Store) PutLease(ctx context.Context, l sessiond.NodeLease) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	defer s.leases.Lock()()
	if err := s.leases.CheckPut(l); err != nil {
		return err
	}
	s.leases.Put(l)
	return nil
}

// DeleteLease implements sessiond.Store.
func (s *Store) DeleteLease(ctx context.Context, node string, version uint64) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	defer s.leases.Lock()()
	if err := s.leases.CheckDelete(node, version); err != nil {
		return err
	}
	s.leases.Delete(node)
	return nil
}

// Events implements sessiond.Store: one partition.
func (s *Store) Events(ctx context.Context, after sessiond.Cursor, limit int) ([]sessiond.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if err := after.Within(1); err != nil {
		return nil, err
	}
	// Events older than the ring are gone: the caller sees a jump in Seq.
	out, _ := s.events.After(after.Seq(0), limit)
	return out, nil
}

// Head implements sessiond.Store.
func (s *Store) Head(ctx context.Context) (sessiond.Cursor, error) {
	if err := s.check(ctx); err != nil {
		return sessiond.Cursor{}, err
	}
	return sessiond.CursorOf(s.events.Last()), nil
}

// WaitEvents implements sessiond.EventWaiter.
func (s *Store) WaitEvents(ctx context.Context, after sessiond.Cursor) (sessiond.Cursor, error) {
	if err := s.check(ctx); err != nil {
		return sessiond.Cursor{}, err
	}
	if err := after.Within(1); err != nil {
		return sessiond.Cursor{}, err
	}
	n, err := s.events.Wait(ctx, after.Seq(0))
	return sessiond.CursorOf(n), err
}

// Close implements sessiond.Store. Data is dropped.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}

// ClaimConsumer implements sessiond.Consumers.
func (s *Store) ClaimConsumer(ctx context.Context, name, owner string, start sessiond.Cursor, now time.Time, ttl time.Duration) (sessiond.Cursor, error) {
	if err := s.check(ctx); err != nil {
		return sessiond.Cursor{}, err
	}
	if err := sessiond.CheckConsumerCall(name, owner, start, 1, ttl, true); err != nil {
		return sessiond.Cursor{}, err
	}
	defer s.consumers.Lock()()
	rec, err := s.consumers.Claim(name, owner, start, now, ttl)
	if err != nil {
		return sessiond.Cursor{}, err
	}
	s.consumers.Put(name, rec)
	return rec.Cursor, nil
}

// CommitConsumer implements sessiond.Consumers.
func (s *Store) CommitConsumer(ctx context.Context, name, owner string, c sessiond.Cursor, now time.Time, ttl time.Duration) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := sessiond.CheckConsumerCall(name, owner, c, 1, ttl, false); err != nil {
		return err
	}
	defer s.consumers.Lock()()
	rec, err := s.consumers.Commit(name, owner, c, now, ttl)
	if err != nil {
		return err
	}
	s.consumers.Put(name, rec)
	return nil
}
