package memindex

import (
	"context"
	"time"

	"github.com/sessiond/sessiond"
)

// Reads are the read methods of sessiond.Store, served from an Index and
// Leases: the stores built on them embed it.
type Reads struct {
	Index *Index
	Lease *Leases
	// Check returns the error every call fails with, if any: the store
	// is closed, or ctx is done.
	Check func(ctx context.Context) error
}

// Get implements sessiond.Store.
func (r Reads) Get(ctx context.Context, id string) (*sessiond.Session, error) {
	if err := r.Check(ctx); err != nil {
		return nil, err
	}
	if v := r.Index.Get(id); v != nil {
		return v, nil
	}
	return nil, sessiond.ErrNotFound
}

// FindToken implements sessiond.Store.
func (r Reads) FindToken(ctx context.Context, h sessiond.TokenHash) (*sessiond.Session, error) {
	if err := r.Check(ctx); err != nil {
		return nil, err
	}
	if v := r.Index.FindToken(h); v != nil {
		return v, nil
	}
	return nil, sessiond.ErrNotFound
}

// Live implements sessiond.Store.
func (r Reads) Live(ctx context.Context, subject string) ([]*sessiond.Session, error) {
	if err := r.Check(ctx); err != nil {
		return nil, err
	}
	return r.Index.Live(subject), nil
}

// List implements sessiond.Store.
func (r Reads) List(ctx context.Context, q sessiond.Query) (sessiond.Page, error) {
	if err := r.Check(ctx); err != nil {
		return sessiond.Page{}, err
	}
	return r.Index.List(q)
}

// Stats implements sessiond.Store.
func (r Reads) Stats(ctx context.Context) (sessiond.StoreStats, error) {
	if err := r.Check(ctx); err != nil {
		return sessiond.StoreStats{}, err
	}
	return r.Index.Stats(), nil
}

// FindDevice implements sessiond.Store.
func (r Reads) FindDevice(ctx context.Context, subject, deviceID string) ([]*sessiond.Session, error) {
	if err := r.Check(ctx); err != nil {
		return nil, err
	}
	return r.Index.FindDevice(subject, deviceID), nil
}

// Conns implements sessiond.Store.
func (r Reads) Conns(ctx context.Context, sessionID string) ([]sessiond.Connection, error) {
	if err := r.Check(ctx); err != nil {
		return nil, err
	}
	return r.Index.Conns(sessionID), nil
}

// Conn implements sessiond.Store.
func (r Reads) Conn(ctx context.Context, connID string) (*sessiond.Connection, error) {
	if err := r.Check(ctx); err != nil {
		return nil, err
	}
	sid, err := sessiond.ConnectionSession(connID)
	if err != nil {
		return nil, sessiond.ErrNotFound
	}
	c, ok := r.Index.Conn(sid, connID)
	if !ok {
		return nil, sessiond.ErrNotFound
	}
	return &c, nil
}

// NodeConns implements sessiond.Store.
func (r Reads) NodeConns(ctx context.Context, node string, limit int) ([]sessiond.Connection, error) {
	if err := r.Check(ctx); err != nil {
		return nil, err
	}
	return r.Index.NodeConns(node, limit), nil
}

// Leases implements sessiond.Store.
func (r Reads) Leases(ctx context.Context) ([]sessiond.NodeLease, error) {
	if err := r.Check(ctx); err != nil {
		return nil, err
	}
	return r.Lease.All(), nil
}

// ConnNodes implements sessiond.Store.
func (r Reads) ConnNodes(ctx context.Context) ([]string, error) {
	if err := r.Check(ctx); err != nil {
		return nil, err
	}
	return r.Index.ConnNodes(), nil
}

// ClaimDue implements sessiond.Store. The deadline index and its claims
// live in memory: a durable store built on the index makes every session
// it loads due at once (Index.Load), and the engine puts each back at its
// deadline.
func (r Reads) ClaimDue(ctx context.Context, now time.Time, hold time.Duration, limit int) ([]sessiond.Due, time.Time, error) {
	if err := r.Check(ctx); err != nil {
		return nil, time.Time{}, err
	}
	due, next := r.Index.ClaimDue(now, hold, limit)
	return due, next, nil
}

// Reschedule implements sessiond.Store.
func (r Reads) Reschedule(ctx context.Context, d sessiond.Due, version uint64) error {
	if err := r.Check(ctx); err != nil {
		return err
	}
	r.Index.Reschedule(d, version)
	return nil
}
