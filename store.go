package sessiond

import (
	"context"
	"time"
)

// Store keeps sessions, their connections, the nodes' leases and the event
// log. It is the only port the engine needs to persist anything; adapters
// live in their own packages (inmem, pebble, ...) and each passes the
// conformance suites in sessiondtest.
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
//   - A session's connections are records of their own, changed in the same
//     atomic step as the session (Change): attaching or detaching one costs
//     the same whatever the number of connections the session has. A
//     session's ConnCount is set by the store from those records on every
//     read; the value passed in is ignored.
//   - Errors are the sentinels below (matched with errors.Is) for outcomes a
//     caller must handle; any other error is a system fault (I/O, a closed
//     store) and means the operation may or may not have happened. A store
//     that refuses writes for lack of disk space returns ErrStoreFull and
//     stores nothing.
//   - Every write that takes events appends them to the event log of its
//     session's partition in the same atomic, durable step as the change
//     itself. The store assigns each event its Partition and Seq (writing
//     them into the passed slice): in each partition strictly increasing
//     and without gaps, in commit order. A store of one partition numbers
//     every event in partition 0.
//   - A write is acknowledged (returns nil) only once it is durable to the
//     degree the store promises: fsynced for the embedded store.
type Store interface {
	// Create stores a new session, c.Session (Version 1, a live state),
	// with c.PutConns as its first connections. c.DropConns must be empty
	// and every connection in c.PutConns the new session's (its id names
	// the session: ConnectionSession); otherwise Create stores nothing and
	// returns an error matching ErrInvalidArgument.
	//
	// If a session with its id exists in any state (including ended
	// sessions not yet purged), Create stores nothing and returns ErrExists.
	//
	// If lim.Max > 0, the subject's live sessions are counted atomically with
	// the insert. If there are lim.Max or more: with lim.EvictOldest false,
	// Create stores nothing and returns ErrLimitReached; with it true, the
	// oldest live sessions (by CreatedAt, then ID) are moved to StateEnding
	// with reason EndEvicted exactly as Ending(old, conns, EndEvicted,
	// lim.Now) does, conns their connections (which they lose, each
	// recorded closed), their events recorded before c's, until
	// lim.Max-1 remain. The evicted sessions, as stored after the change,
	// are returned.
	//
	// If lim.UniqueDevice is set and the subject has a live session whose
	// Device.ID equals the new session's, Create stores nothing and returns
	// ErrExists: one session per subject and device.
	Create(ctx context.Context, c Change, lim Limit) (evicted []*Session, err error)

	// Get returns the session with the id, in any state, or ErrNotFound.
	Get(ctx context.Context, id string) (*Session, error)

	// FindDevice returns the subject's live sessions whose Device.ID is
	// deviceID, oldest first, from an index: it does not visit the
	// subject's other sessions. It returns an empty slice for none.
	FindDevice(ctx context.Context, subject, deviceID string) ([]*Session, error)

	// Update applies c if the stored version of c.Session is
	// c.Session.Version-1 (the caller increments Version): the session is
	// replaced, c.PutConns are added (or replace the connection records of
	// the same ids) and c.DropConns removed, all in one step. It returns
	// ErrNotFound if there is no session with the id and ErrConflict if the
	// version differs, and an error matching ErrInvalidArgument if a
	// connection in c.PutConns or c.DropConns is not the session's (its id
	// names another session, or is no connection id: ConnectionSession),
	// storing nothing in any of these cases. Token hashes that the
	// session no longer carries stop finding it; a session that leaves the
	// live states leaves its subject's live index and loses all its
	// connections in the same step.
	Update(ctx context.Context, c Change) error

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

	// Stats counts sessions by state, subjects with live sessions and
	// connections by kind, without visiting every session.
	Stats(ctx context.Context) (StoreStats, error)

	// Conns returns the connections of the session with the id, oldest
	// first by ConnectedAt then ID; an empty slice for a session with none
	// or no such session.
	Conns(ctx context.Context, sessionID string) ([]Connection, error)

	// Conn returns the connection with the id, or ErrNotFound.
	Conn(ctx context.Context, connID string) (*Connection, error)

	// NodeConns returns up to limit connections recorded as held by the
	// node (Connection.Node), of any sessions, from an index.
	NodeConns(ctx context.Context, node string, limit int) ([]Connection, error)

	// ConnNodes returns the names of the nodes that hold connections, from
	// an index.
	ConnNodes(ctx context.Context) ([]string, error)

	// PutLease stores a node's lease if its version follows the stored
	// one: l.Version 1 creates it (ErrExists if the node has one), any other
	// replaces the stored lease of version l.Version-1 (ErrNotFound if there
	// is none, ErrConflict if the version differs).
	PutLease(ctx context.Context, l NodeLease) error

	// Leases returns every node's lease.
	Leases(ctx context.Context) ([]NodeLease, error)

	// DeleteLease removes the node's lease if its stored version is
	// version: ErrNotFound if there is none, ErrConflict if it differs.
	DeleteLease(ctx context.Context, node string, version uint64) error

	// Events returns up to limit events that the cursor is not past, each
	// partition's in Seq order; the partitions' logs are interleaved (by
	// time, roughly), but any prefix of the answer holds a prefix of each.
	// The store keeps a bounded tail of each log; events older than it are
	// gone, which the caller sees as a jump in Seq. A cursor past events of
	// a partition the store does not have gives an error matching
	// ErrInvalidArgument.
	Events(ctx context.Context, after Cursor, limit int) ([]Event, error)

	// Head returns the cursor past the newest recorded event of each
	// partition: the zero Cursor for an empty log.
	Head(ctx context.Context) (Cursor, error)

	// ClaimDue claims up to limit entries of the deadline index that are
	// due at now (At not after now), each at most once per hold (a store
	// may claim fewer while more are due: the earliest entry it answers
	// is then not after now): a claimed
	// entry is moved to now+hold, so that no other caller gets it before
	// then, and comes back then if whoever claimed it did not write its
	// session (a write sets the entries it changes: Change.Due). The
	// entries are returned earliest first, each session's with the
	// session (Due.Session), with the time of the earliest entry the
	// index holds after the claim (zero: none), for the caller to come
	// back then.
	ClaimDue(ctx context.Context, now time.Time, hold time.Duration, limit int) ([]Due, time.Time, error)

	// Reschedule moves the entry of d.ID (a session's, or one of its
	// connections') to d.At if the session's stored version is version
	// and, for a connection, the session still has it: the entry of a
	// claim that turned out not to be due. Otherwise it does nothing (a
	// write since set the entry). A zero d.At removes the entry.
	Reschedule(ctx context.Context, d Due, version uint64) error

	// Close releases the store. Calls after Close fail.
	Close() error
}

// TokenFinder is the capability of a store that kept sessions whose tokens
// do not carry their session's id (issued before they did): it finds a
// session by a hash of its tokens. Tokens carry the id now, and are read
// with Get; a store that never held the older tokens (a shared store
// needs no global index from token to session) does not implement it.
type TokenFinder interface {
	// FindToken returns the session whose TokenHash, PrevTokenHash or one
	// of whose RetiredTokens is h, in any state, or ErrNotFound. Which one
	// matched is for the caller to tell.
	FindToken(ctx context.Context, h TokenHash) (*Session, error)
}

// EventWaiter is the capability of a store that says when its event log
// grows, whoever wrote to it: another engine of the process, or another
// node sharing the store. Engines follow the log with it, so that they see
// each other's changes: a session ended through one node has what another
// holds for it (its sockets) disposed of there at once. Without it, an
// engine sees only the events of its own writes.
type EventWaiter interface {
	// WaitEvents returns the log's Head once the log holds an event that
	// after is not past, or ctx's error when ctx is done first.
	WaitEvents(ctx context.Context, after Cursor) (Cursor, error)
}

// Consumers is the capability of a store that keeps named, durable
// cursors for readers that follow its event log apart from the engine (the
// webhook notifier), each claimed by one owner at a time for a while: of
// the nodes sharing a store, one follows the log for each consumer, and
// another takes over once it stops renewing its claim (it died) or
// releases it. Names are checked with CheckConsumer; a bad name, an empty
// owner, a ttl that is not positive (for a claim) or negative (for a
// commit), or a cursor of partitions the store does not have (or FromNow)
// gives an error matching ErrInvalidArgument. Like everything else in a
// store, the times are the caller's: a store never reads a clock.
type Consumers interface {
	// ClaimConsumer claims the named consumer for owner until now+ttl
	// and returns its stored cursor; a consumer that does not exist yet
	// is recorded at start, which is returned. It fails with an error
	// matching ErrConsumerClaimed while another owner's claim is live
	// (its until is after now). Claiming what owner holds renews it.
	ClaimConsumer(ctx context.Context, name, owner string, start Cursor, now time.Time, ttl time.Duration) (Cursor, error)
	// CommitConsumer stores c as the consumer's cursor and extends the
	// claim to now+ttl; ttl 0 releases it (the cursor is stored, and any
	// owner may claim the consumer at once). It fails with an error
	// matching ErrConsumerClaimed, storing nothing, if the consumer is
	// not owner's: another owner claimed it (after owner's claim lapsed or
	// was released), or there is no such consumer.
	CommitConsumer(ctx context.Context, name, owner string, c Cursor, now time.Time, ttl time.Duration) error
}

// Change is one atomic write of a session: its new version, the
// connections it gains (or whose records change), those it loses, the
// events that record it, and its deadlines.
//
// The store keeps an index of deadlines (ClaimDue), so that whichever node
// is alive finds what is due without reading every session: one entry per
// session (Due, as the engine computes it: nextDeadline) and one per
// connection timed by heartbeats (ConnDue). A write replaces the entries
// it names in the same atomic step; a connection dropped, a session that
// leaves the live states (for its connections) and a session deleted
// lose theirs.
type Change struct {
	Session   *Session
	PutConns  []Connection
	DropConns []string // connection ids
	Events    []Event
	Due       time.Time // the session's next deadline; zero: none
	ConnDue   []Due     // deadlines of connections in PutConns; zero At: none
}

// Due is an entry of a store's deadline index: when a session, or one of
// its connections (ID a connection id), next needs the engine.
type Due struct {
	ID string
	At time.Time
	// Session is, in ClaimDue's answer and for a session's entry, the
	// session as stored when it was claimed (nil if it is gone), so that
	// handling a deadline costs no read of its own. Writes ignore it.
	Session *Session
}

// Limit is the per-subject limit a Create enforces.
type Limit struct {
	Max          int       // 0: no limit
	EvictOldest  bool      // evict instead of rejecting
	Now          time.Time // time stamped on evictions
	EvictedDue   time.Time // deadline indexed for each evicted session
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
	Due         int            // entries of the deadline index (ClaimDue)
}

// NodeLease says a node is alive until Until. A node renews its lease
// while it runs. Once a lease has expired, any node may claim it (a
// compare-and-set that marks it Dead, until a claim deadline), treat the
// connections the dead node held as lost (once each: every detach is a
// compare-and-set), and delete it. A node that finds its own lease claimed
// has been fenced off: it closes what it holds and starts a new lease.
type NodeLease struct {
	Node    string
	Until   time.Time // alive until then; for a Dead lease, the claim's deadline
	Dead    bool      // claimed by another node, which is releasing its connections
	Version uint64
}
