package sessiond

import (
	"context"
	"sync"
	"time"
)

// Resource is something a session holds that must be released when the
// session ends: a socket, a process, a sandbox, a lock.
type Resource interface {
	// Dispose releases the resource. It is called once, while the session is
	// ending, with a context that carries a deadline (Config.DisposeTimeout)
	// and the ending session (EndingSession).
	Dispose(ctx context.Context) error
}

// ResourceFunc adapts a function to Resource.
type ResourceFunc func(ctx context.Context) error

// Dispose calls f.
func (f ResourceFunc) Dispose(ctx context.Context) error { return f(ctx) }

// DefaultDisposeTimeout bounds each disposal when Config leaves it zero.
const DefaultDisposeTimeout = 5 * time.Second

type endingKey struct{}

// EndingSession returns the session being ended, as passed to Dispose and
// to ending hooks: its EndReason says why.
func EndingSession(ctx context.Context) *Session {
	s, _ := ctx.Value(endingKey{}).(*Session)
	return s
}

// resources holds what this process attached to sessions.
type resources struct {
	mu     sync.Mutex
	held   map[string][]*heldResource // by session id, oldest first
	ending map[string]int             // sessions this process is ending, with how many calls
}

// owning marks the session as being ended here: its disposal belongs to
// the ending call, and the event sweeper keeps off. Call the result when done.
func (rs *resources) owning(sessionID string) func() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.ending == nil {
		rs.ending = make(map[string]int)
	}
	rs.ending[sessionID]++
	return func() {
		rs.mu.Lock()
		defer rs.mu.Unlock()
		if rs.ending[sessionID]--; rs.ending[sessionID] == 0 {
			delete(rs.ending, sessionID)
		}
	}
}

// sweepable reports whether the sweeper may dispose of the session's
// resources: some are held and no ending call here owns them.
func (rs *resources) sweepable(sessionID string) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.held[sessionID]) > 0 && rs.ending[sessionID] == 0
}

type heldResource struct {
	name string
	r    Resource
}

func (rs *resources) add(sessionID, name string, r Resource) *heldResource {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.held == nil {
		rs.held = make(map[string][]*heldResource)
	}
	h := &heldResource{name: name, r: r}
	rs.held[sessionID] = append(rs.held[sessionID], h)
	return h
}

// remove drops h, if still held, without disposing it.
func (rs *resources) remove(sessionID string, h *heldResource) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	list := rs.held[sessionID]
	for i, x := range list {
		if x == h {
			list = append(list[:i:i], list[i+1:]...)
			if len(list) == 0 {
				delete(rs.held, sessionID)
			} else {
				rs.held[sessionID] = list
			}
			return
		}
	}
}

// take removes and returns everything held for the session. Whoever takes a
// resource disposes of it: that is what makes disposal run once.
func (rs *resources) take(sessionID string) []*heldResource {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	list := rs.held[sessionID]
	delete(rs.held, sessionID)
	return list
}

func (rs *resources) holds(sessionID string) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.held[sessionID]) > 0
}

func (rs *resources) any() bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.held) > 0
}

// Attach makes r part of the session: when the session ends, for whatever
// reason and on whichever node, r is disposed of. Resources are disposed
// newest first, each with its own deadline; one that fails, panics or hangs
// does not stop the others. release drops r without disposing it (when the
// caller frees it itself). Attaching to a session that is not live returns
// its error and keeps nothing.
func (m *Manager) Attach(ctx context.Context, sessionID, name string, r Resource) (release func(), err error) {
	if err := checkID("id", sessionID); err != nil {
		return nil, err
	}
	// Hold first, check after: an end whose write lands after the check
	// disposes of r (a two-phase end takes what is held once ending is
	// recorded; a single-write end releases what is held after its write),
	// and one that landed before is seen by the check.
	h := m.res.add(sessionID, name, r)
	s, err := m.get(ctx, sessionID)
	if err == nil {
		s, err = m.fresh(ctx, s)
	}
	if err == nil && !s.State.Live() {
		err = endedError(s)
	}
	if err != nil {
		m.res.remove(sessionID, h)
		return nil, err
	}
	return func() { m.res.remove(sessionID, h) }, nil
}
