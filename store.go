package sessiond

import (
	"context"
	"time"
)

// Store keeps sessions and their event log. It is the only port the engine
// needs to persist anything; adapters live in their own packages (inmem,
// pebble, ...) and each passes the conformance suite in sessiondtest.
//
// Contract shared by all methods:
//
//   - Sessions passed in belong to the caller until the method returns; the
//     store keeps its own copy (or treats them as immutable from then on).
//     Sessions returned may be shared with other readers: callers must not
//     modify them (Session.Clone gives a private copy).
//   - A store never checks deadlines. An active session whose ExpiresAt has
//     passed is returned as stored; deciding what is expired is the engine's
//     job, so that all stores agree.
//   - Errors are the sentinels below (matched with errors.Is) for outcomes a
//     caller must handle; any other error is a system fault (I/O, a closed
//     store) and means the operation may or may not have happened.
//   - Every write that takes events appends them to the event log in the
//     same atomic, durable step as the change itself. The store assigns each
//     event its Seq (writing it into the passed slice): strictly increasing
//     and without gaps, in commit order.
//   - A write is acknowledged (returns nil) only once it is durable to the
//     degree the store promises: fsynced for the embedded store.
type Store interface {
	// Create stores a new session. s.Version must be 1 and s.State live.
	//
	// If a session with s.ID exists in any state (including ended sessions
	// not yet purged), Create stores nothing and returns ErrExists.
	//
	// If lim.Max > 0, the subject's live sessions are counted atomically with
	// the insert. If there are lim.Max or more: with lim.EvictOldest false,
	// Create stores nothing and returns ErrLimitReached; with it true, the
	// oldest live sessions (by CreatedAt, then ID) are moved to StateEnding
	// with reason EndEvicted exactly as Ending(old, EndEvicted, lim.Now) does,
	// their events recorded before s's, until lim.Max-1 remain. The evicted
	// sessions, as stored after the change, are returned.
	//
	// If lim.UniqueDevice is set and the subject has a live session whose
	// Device.ID equals s.Device.ID, Create stores nothing and returns
	// ErrExists: one session per subject and device.
	Create(ctx context.Context, s *Session, lim Limit, events []Event) (evicted []*Session, err error)

	// Get returns the session with the id, in any state, or ErrNotFound.
	Get(ctx context.Context, id string) (*Session, error)

	// FindToken returns the session whose TokenHash or PrevTokenHash is h, in
	// any state, or ErrNotFound. Which of the two matched is for the caller to
	// tell.
	FindToken(ctx context.Context, h TokenHash) (*Session, error)

	// Update replaces a stored session with s if the stored version is
	// s.Version-1 (the caller increments Version). It returns ErrNotFound if
	// there is no session with s.ID and ErrConflict if the version differs,
	// storing nothing in either case. Token hashes that s no longer carries
	// stop finding it; a session that leaves the live states leaves its
	// subject's live index in the same step.
	Update(ctx context.Context, s *Session, events []Event) error

	// Delete removes the session with the id if its stored version is
	// version: ErrNotFound if there is none, ErrConflict if the version
	// differs. It purges ended sessions after their retention and records no
	// event.
	Delete(ctx context.Context, id string, version uint64) error

	// Live returns the subject's live sessions (State.Live), oldest first by
	// CreatedAt then ID. It returns an empty slice, not an error, for a
	// subject with none.
	Live(ctx context.Context, subject string) ([]*Session, error)

	// List returns up to q.Limit sessions in ID order, after q.Cursor,
	// matching q's filters. A page may hold fewer than q.Limit sessions and
	// still have a Next cursor (stores bound the work of one page); iteration
	// ends when Next is "". A cursor that the store did not issue gives an
	// error matching ErrInvalidArgument.
	List(ctx context.Context, q Query) (Page, error)

	// Stats counts sessions by state and subjects with live sessions, without
	// visiting every session.
	Stats(ctx context.Context) (StoreStats, error)

	// Events returns up to limit events with Seq > after, in Seq order. The
	// store keeps a bounded tail of the log; events older than it are gone,
	// which the caller sees as a jump in Seq.
	Events(ctx context.Context, after uint64, limit int) ([]Event, error)

	// LastSeq returns the Seq of the newest recorded event, or 0.
	LastSeq(ctx context.Context) (uint64, error)

	// Close releases the store. Calls after Close fail.
	Close() error
}

// Limit is the per-subject limit a Create enforces.
type Limit struct {
	Max          int       // 0: no limit
	EvictOldest  bool      // evict instead of rejecting
	Now          time.Time // time stamped on evictions
	UniqueDevice bool      // at most one live session per subject and device id
}

// Query selects sessions for Store.List. Zero fields do not filter.
type Query struct {
	Subject string
	State   State
	Cursor  string
	Limit   int // at most this many; stores treat <= 0 as 100
}

// Page is one page of a List.
type Page struct {
	Sessions []*Session
	Next     string // cursor of the next page, "" at the end
}

// StoreStats are a store's counts.
type StoreStats struct {
	ByState     map[State]int
	Subjects    int            // subjects holding at least one live session
	Total       int            // sessions in any state
	Connections map[string]int // connections of live sessions, by kind
}
