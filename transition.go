package sessiond

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sessiond/sessiond/internal/wait"
)

// transitions is the table of the state machine (see State): for each
// state, the set of states a stored change may move a session to, as a bit
// per state. A live state may also stay what it is (a change that is not a
// transition: activity, a rotation, a connection attached). Every write of
// a session goes through change, which refuses anything else: a bug that
// would, say, revive an ended session fails loudly instead of corrupting it.
var transitions = func() [StateEnded + 1]uint16 {
	var t [StateEnded + 1]uint16
	allow := func(from State, to ...State) {
		for _, s := range to {
			t[from] |= 1 << s
		}
	}
	allow(StateActive, StateActive, StateDisconnected, StateHibernating, StateEnding, StateEnded)
	allow(StateDisconnected, StateDisconnected, StateActive, StateHibernating, StateEnding, StateEnded)
	allow(StateHibernating, StateHibernating, StateHibernated, StateActive, StateEnding, StateEnded)
	allow(StateHibernated, StateHibernated, StateWaking, StateEnding, StateEnded)
	allow(StateWaking, StateWaking, StateActive, StateHibernated, StateEnding, StateEnded)
	allow(StateEnding, StateEnded)
	return t
}()

// CanTransition reports whether the state machine lets a session in state
// from be stored in state to.
func CanTransition(from, to State) bool {
	return from.Valid() && to.Valid() && transitions[from]&(1<<to) != 0
}

// maxAttempts bounds compare-and-set retries; reaching it returns
// ErrConflict. Each retry means another writer changed the same session in
// between: dozens of connects racing for one device's session do that to
// each other, one winner per durable write. From the second retry on a
// writer first waits a random time under a cap that doubles from
// minBackoff to maxBackoff ("full jitter"), so that the losers spread out
// instead of colliding again: 50 such connects all succeed (the engine
// suite's SimultaneousReconnectsMakeOneSession races them).
const (
	maxAttempts = 32
	minBackoff  = 100 * time.Microsecond
	maxBackoff  = 10 * time.Millisecond
)

// backoff waits before the attempt-th try (counting from 0) of a
// compare-and-set, or returns ctx's error. It uses real time, not the
// Manager's clock: it spaces out writers, it is no deadline.
func backoff(ctx context.Context, attempt int) error {
	if attempt < 2 {
		return nil // a lone conflict is retried at once
	}
	ceil := min(minBackoff<<min(attempt-2, 16), maxBackoff)
	return wait.Sleep(ctx, rand.N(ceil)+1) //nolint:gosec // G404: jitter, not a secret
}

// decision is what a step of change decides for the session as currently
// stored: its next version (c.Session, a modified Clone of cur whose
// Version change sets), the connections it gains or loses, and the events
// that record the change; a decision that changes connections sets
// c.Session.ConnCount to match. A nil Change changes nothing.
type decision func(cur *Session, now time.Time) (*Change, error)

// change is the one compare-and-set loop of the engine. It reads the
// session (unless cur, a version read already, is given), lets decide
// compute the next version from it, checks the transition against the
// table, and writes it if the stored version is still the one decided on.
// On a conflict it reads again and decides again. It returns the session as
// stored after the change, or as read when decide changed nothing, or
// decide's error.
func (m *Manager) change(ctx context.Context, id string, cur *Session, decide decision) (*Session, error) {
	for attempt := range maxAttempts {
		if cur == nil {
			if err := backoff(ctx, attempt); err != nil {
				return nil, err
			}
			var err error
			if cur, err = m.get(ctx, id); err != nil {
				return nil, err
			}
		}
		now := m.now()
		c, err := decide(cur, now)
		if err != nil {
			return nil, err
		}
		if c == nil {
			return cur, nil
		}
		next := c.Session
		if !CanTransition(cur.State, next.State) {
			return nil, fmt.Errorf("sessiond: session %s: %v to %v is not a transition of the state machine", LogID(id), cur.State, next.State)
		}
		next.Version = cur.Version + 1
		if next.State != cur.State {
			next.StateSince = now
		}
		if !next.State.Live() {
			next.ConnCount = 0 // the store drops them
		}
		for i := range c.Events {
			c.Events[i].Version = next.Version
		}
		switch err := m.update(ctx, *c); {
		case err == nil:
			return next, nil
		case errors.Is(err, ErrConflict):
			cur = nil
		default:
			return nil, err
		}
	}
	return nil, ErrConflict
}
