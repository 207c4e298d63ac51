package sessiondtest

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/sessiond/sessiond"
)

// ErrFault is what a FaultyStore's refused writes return: a store that
// cannot be reached.
var ErrFault = errors.New("store unreachable (injected fault)")

// FaultyStore wraps a Store and fails some of its writes on demand: a store
// that is down or slow for a while, as a node sees it.
type FaultyStore struct {
	sessiond.Store
	// UpdatesDown fails every Update while set.
	UpdatesDown atomic.Bool
	// LeasesDown fails PutLease while set: for the node LeaseNode only, or
	// for every node if LeaseNode is "".
	LeasesDown atomic.Bool
	LeaseNode  string
	// Failed counts the writes failed so far.
	Failed atomic.Int64
}

// FindToken passes on the wrapped store's TokenFinder, if it has one.
func (f *FaultyStore) FindToken(ctx context.Context, h sessiond.TokenHash) (*sessiond.Session, error) {
	return findToken(ctx, f.Store, h)
}

// WaitEvents passes on the wrapped store's EventWaiter, if it has one.
func (f *FaultyStore) WaitEvents(ctx context.Context, after sessiond.Cursor) (sessiond.Cursor, error) {
	return waitEvents(ctx, f.Store, after)
}

// waitEvents is the WaitEvents of a store wrapper: the wrapped store's,
// or, for a store that has none, a wait for ctx (no event is ever seen
// coming, as the engine treats such a store).
func waitEvents(ctx context.Context, st sessiond.Store, after sessiond.Cursor) (sessiond.Cursor, error) {
	if w, ok := st.(sessiond.EventWaiter); ok {
		return w.WaitEvents(ctx, after)
	}
	<-ctx.Done()
	return sessiond.Cursor{}, ctx.Err()
}

// findToken is the FindToken of a store wrapper: the wrapped store's, or
// ErrNotFound for a store that has none (as the engine treats it).
func findToken(ctx context.Context, st sessiond.Store, h sessiond.TokenHash) (*sessiond.Session, error) {
	if tf := tokenFinder(st); tf != nil {
		return tf.FindToken(ctx, h)
	}
	return nil, sessiond.ErrNotFound
}

func (f *FaultyStore) Update(ctx context.Context, c sessiond.Change) error {
	if f.UpdatesDown.Load() {
		f.Failed.Add(1)
		return ErrFault
	}
	return f.Store.Update(ctx, c)
}

func (f *FaultyStore) PutLease(ctx context.Context, l sessiond.NodeLease) error {
	if f.LeasesDown.Load() && (f.LeaseNode == "" || f.LeaseNode == l.Node) {
		f.Failed.Add(1)
		return ErrFault
	}
	return f.Store.PutLease(ctx, l)
}
