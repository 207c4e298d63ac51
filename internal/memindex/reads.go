package memindex

import (
	"context"

	"github.com/sessiond/sessiond"
)

// Reads are the read methods of sessiond.Store, served from an Index: the
// stores built on one embed it.
type Reads struct {
	Index *Index
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
