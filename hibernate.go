package sessiond

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Hibernation (docs/hibernation.md). A session whose policy sets
// hibernate_after, with no connection, hibernates that long after the
// later of its last activity and the moment its last connection left
// (nextDeadline: deadlineHibernate). Hibernating and waking are each two
// compare-and-set writes around a call of the application's Runtime:
//
//	active|disconnected ─► hibernating ─(runtime ok)─► hibernated
//	                           └──(runtime failed)──► active (hibernate_failed)
//	hibernated ─(connect, wake)─► waking ─(runtime ok)─► active (woke)
//	                                 └──(runtime failed)──► hibernated (wake_failed)
//
// The first write makes one node the caller of the runtime: of racing
// nodes and timers exactly one wins it. Its StateSince marks the call:
// the second write lands only if the session is still in the state that
// call began, so a result that comes too late (after another node took
// the call over, or the session ended) changes nothing. A node that dies
// in the middle leaves a deadline (deadlineRuntime, runtimeTakeover after
// the call's wake_timeout), at which any node calls the runtime again,
// with the same idempotency key (RuntimeCall.Key).

// runtimeTakeover is how long after a runtime call's wake_timeout another
// node takes the call over: its caller, if alive, has recorded the
// outcome by then.
const runtimeTakeover = 5 * time.Second

// maxRuntimeCalls bounds the runtime calls a node runs at once. A
// transition begun beyond it waits for its takeover deadline.
const maxRuntimeCalls = 4096

// Hibernate puts the session to sleep now, whatever its hibernate_after:
// its runtime is told to hibernate it, and Hibernate returns the session
// once it is hibernated. A session with live connections is refused with
// ErrInvalidState (close them, or revoke the session); one hibernated
// already is returned as it is, and one hibernating is waited for. If the
// runtime fails, the session is active again and the error matches
// ErrRuntimeFailed. The outcome is the hibernation's, even if a connection
// woke the session right after it: the session is then returned waking or
// active.
func (m *Manager) Hibernate(ctx context.Context, id string) (*Session, error) {
	if err := checkID("id", id); err != nil {
		return nil, err
	}
	s, err := m.get(ctx, id)
	if err != nil {
		return nil, err
	}
	// Waiting from before the first write, the outcome of the hibernation
	// is seen however soon it comes, even if a wake follows it at once.
	w := m.waiters.add(id)
	defer m.waiters.remove(id, w)
	if s, err = m.beginHibernate(ctx, s, true); err != nil {
		return nil, err
	}
	if s.State != StateHibernating {
		return s, nil
	}
	cur, out, err := m.awaitLeave(ctx, w, s, StateHibernating, func(s *Session) bool {
		return s.State == StateActive || s.State == StateDisconnected // failed, or hibernated and woken
	})
	if err != nil {
		return nil, err
	}
	switch {
	case !cur.State.Live():
		return nil, endedError(cur)
	case out == EventHibernated:
		return cur, nil
	case out == EventHibernateFailed:
		// the runtime failed: below
	case cur.State == StateHibernated || cur.State == StateWaking:
		return cur, nil
	case cur.State == StateHibernating:
		return nil, Errorf(CodeRuntimeFailed, "", "the session is still hibernating after its wake_timeout")
	}
	return nil, Errorf(CodeRuntimeFailed, "", "the runtime did not hibernate the session; it is %v again", cur.State)
}

// Wake wakes a hibernated session now: its runtime is told to wake it, and
// Wake returns the session once it is active. A session that is
// hibernating is woken once it is hibernated; one waking is waited for;
// an active or disconnected one is returned as it is. If the runtime
// fails, the session is hibernated again and the error matches
// ErrRuntimeFailed.
func (m *Manager) Wake(ctx context.Context, id string) (*Session, error) {
	if err := checkID("id", id); err != nil {
		return nil, err
	}
	s, err := m.get(ctx, id)
	if err != nil {
		return nil, err
	}
	w := m.waiters.add(id)
	defer m.waiters.remove(id, w)
	if s, err = m.beginWake(ctx, s); err != nil {
		return nil, err
	}
	return m.awaitAwake(ctx, w, s)
}

// AwaitAwake waits while s (as last read) is waking, and returns the
// session once it is awake: active, or disconnected. A wake that failed
// is ErrRuntimeFailed (the session is hibernated again, and the
// connections that waited for it are detached); a session that ended
// meanwhile is its end's error. An edge calls it after a Connect whose
// session was waking, to tell its client when the session is ready.
func (m *Manager) AwaitAwake(ctx context.Context, s *Session) (*Session, error) {
	if s.State != StateWaking {
		return m.awaitAwake(ctx, nil, s)
	}
	w := m.waiters.add(s.ID)
	defer m.waiters.remove(s.ID, w)
	return m.awaitAwake(ctx, w, s)
}

func (m *Manager) awaitAwake(ctx context.Context, w *waiter, s *Session) (*Session, error) {
	var out EventType
	if s.State == StateWaking {
		var err error
		if s, out, err = m.awaitLeave(ctx, w, s, StateWaking, func(s *Session) bool {
			return s.State == StateHibernated || s.State == StateHibernating // failed, or woken and asleep again
		}); err != nil {
			return nil, err
		}
	}
	switch {
	case !s.State.Live():
		return nil, endedError(s)
	case out == EventWoke:
		return s, nil
	case out == EventWakeFailed:
		// the runtime failed: below
	case s.State == StateActive || s.State == StateDisconnected:
		return s, nil
	case s.State == StateWaking:
		return nil, Errorf(CodeRuntimeFailed, "", "the session is still waking after its wake_timeout")
	}
	return nil, Errorf(CodeRuntimeFailed, "", "the runtime did not wake the session; it is %v again", s.State)
}

// beginWake moves a hibernated session to waking and calls its runtime,
// waiting first for a hibernating one to be hibernated. It returns the
// session as it is then: waking, or awake already.
func (m *Manager) beginWake(ctx context.Context, s *Session) (*Session, error) {
	for range maxAttempts {
		if s.State == StateHibernating {
			var err error
			if s, _, err = m.awaitLeave(ctx, nil, s, StateHibernating, nil); err != nil {
				return nil, err
			}
		}
		var began bool
		n, err := m.change(ctx, s.ID, s, func(cur *Session, now time.Time) (*Change, error) {
			began = false
			if _, err := m.checkLive(ctx, cur); err != nil {
				return nil, err
			}
			switch cur.State {
			case StateHibernating:
				return nil, errHibernating
			case StateHibernated:
			default:
				return nil, nil // waking or awake
			}
			n := cur.Clone()
			n.State, n.LastActive = StateWaking, now
			began = true
			return &Change{Session: n, Events: []Event{newEvent(EventWaking, n, now)}}, nil
		})
		if errors.Is(err, errHibernating) {
			s = &Session{ID: s.ID, State: StateHibernating, Policy: s.Policy}
			continue
		}
		if err != nil {
			return nil, err
		}
		if began {
			m.runTransition(n)
		}
		return n, nil
	}
	return nil, ErrConflict
}

// errHibernating is what a decision returns when it must wait for a
// hibernating session to be hibernated before it can go on.
var errHibernating = errors.New("sessiond: the session is hibernating")

// beginHibernate moves s to hibernating and calls its runtime. By hand
// (Hibernate), a session with connections is refused; otherwise (its
// deadline was claimed) only a session whose hibernate_after passed,
// with no connection, hibernates, and any other is rescheduled. It
// returns the session as it is then.
func (m *Manager) beginHibernate(ctx context.Context, s *Session, byHand bool) (*Session, error) {
	var began bool
	n, err := m.change(ctx, s.ID, s, func(cur *Session, now time.Time) (*Change, error) {
		began = false
		if !cur.State.Live() {
			if byHand {
				return nil, endedError(cur)
			}
			return nil, nil
		}
		if cur.State != StateActive && cur.State != StateDisconnected {
			if byHand && cur.State == StateWaking {
				return nil, Errorf(CodeInvalidState, "", "the session is waking")
			}
			return nil, nil // hibernating or hibernated already
		}
		if byHand {
			if _, err := m.checkLive(ctx, cur); err != nil {
				return nil, err
			}
			if cur.ConnCount > 0 {
				return nil, Errorf(CodeInvalidState, "", "the session has %d live connection(s); a session hibernates only with none", cur.ConnCount)
			}
		} else if at, kind := m.nextDeadline(cur); kind != deadlineHibernate || now.Before(at) {
			return nil, nil
		}
		n := cur.Clone()
		n.State, n.DisconnectedAt = StateHibernating, time.Time{}
		n.Cycle++
		began = true
		return &Change{Session: n, Events: []Event{newEvent(EventHibernating, n, now)}}, nil
	})
	switch {
	case err != nil:
		return nil, err
	case began:
		m.runTransition(n)
	case !byHand && n.State.Live():
		// The deadline no longer holds (activity, a connection): its claim
		// turned out early.
		return n, m.reschedule(ctx, n)
	}
	return n, nil
}

// takeOver calls the runtime again for a session whose hibernate or wake
// outlived its wake_timeout by runtimeTakeover: the node that began it
// died, or lost the store, before it could record the outcome. Of racing
// takers exactly one wins the write that makes it the caller.
func (m *Manager) takeOver(ctx context.Context, s *Session) error {
	var took bool
	n, err := m.change(ctx, s.ID, s, func(cur *Session, now time.Time) (*Change, error) {
		took = false
		if at, kind := m.nextDeadline(cur); kind != deadlineRuntime || now.Before(at) {
			return nil, nil
		}
		n := cur.Clone()
		n.StateSince = now // the mark of this call
		took = true
		return &Change{Session: n}, nil
	})
	switch {
	case err != nil:
		return err
	case took:
		m.log.Warn("calling the runtime again: the node that began the transition did not finish it", "sid", LogID(n.ID), "state", n.State)
		m.runTransition(n)
	case n.State.Live():
		return m.reschedule(ctx, n)
	}
	return nil
}

// runtimeCalls are the runtime calls running on this node, one per
// session at most.
type runtimeCalls struct {
	mu      sync.Mutex
	running map[string]bool
	closed  bool
	wg      sync.WaitGroup
}

// stop refuses new calls and waits for the running ones, whose contexts
// the Manager's close canceled: their transitions are taken over at
// their deadlines, by another node or this one's next Start.
func (rc *runtimeCalls) stop() {
	rc.mu.Lock()
	rc.closed = true
	rc.mu.Unlock()
	rc.wg.Wait()
}

// runTransition calls the runtime for s, which this node just moved to
// hibernating or waking (or took over), in the background, and records
// the outcome.
func (m *Manager) runTransition(s *Session) {
	rc := &m.calls
	rc.mu.Lock()
	if rc.closed || rc.running[s.ID] || len(rc.running) >= maxRuntimeCalls {
		rc.mu.Unlock()
		m.log.Warn("not calling the runtime now; the transition's deadline will", "sid", LogID(s.ID), "state", s.State)
		return
	}
	if rc.running == nil {
		rc.running = make(map[string]bool)
	}
	rc.running[s.ID] = true
	rc.wg.Add(1)
	rc.mu.Unlock()
	go func() {
		defer rc.wg.Done()
		action := RuntimeHibernate
		if s.State == StateWaking {
			action = RuntimeWake
		}
		err := m.callRuntime(s, action)
		// The call is over: the session's next transition, which its
		// outcome lets begin at once, gets its own call.
		rc.mu.Lock()
		delete(rc.running, s.ID)
		rc.mu.Unlock()
		if m.ctx.Err() != nil {
			return // closing: the call is taken over at its deadline
		}
		if err := m.completeTransition(s, err); err != nil && m.ctx.Err() == nil {
			m.log.Warn("recording a runtime call's outcome; its deadline will call it again", "sid", LogID(s.ID), "action", action, "err", err)
		}
	}()
}

// callRuntime calls the runtime with the call's deadline: the policy's
// wake_timeout after the transition began, by the engine's clock.
func (m *Manager) callRuntime(s *Session, action RuntimeAction) (err error) {
	if m.runtime == nil {
		return nil
	}
	ctx, cancel := context.WithCancelCause(m.ctx)
	defer cancel(nil)
	p := m.policyOf(s)
	timer := m.clock.AfterFunc(s.StateSince.Add(p.WakeTimeout).Sub(m.now()), func() { cancel(errRuntimeTimeout) })
	defer timer.Stop()
	start := time.Now()
	defer func() {
		result := "ok"
		if v := recover(); v != nil {
			err, result = fmt.Errorf("the runtime panicked: %v", v), "panic"
		} else if err != nil {
			result = "error"
			if errors.Is(context.Cause(ctx), errRuntimeTimeout) {
				err, result = fmt.Errorf("%w: %w", errRuntimeTimeout, err), "timeout"
			}
		}
		m.obs.RuntimeCalled(string(action), result, time.Since(start))
	}()
	err = m.runtime(ctx, RuntimeCall{Action: action, Session: s, Key: runtimeKey(s, action)})
	if err == nil && ctx.Err() != nil {
		err = context.Cause(ctx) // an answer after the deadline is too late
	}
	return err
}

// completeTransition records a runtime call's outcome for s, as the
// transition began: if the session is still in it (the same state since
// the same time), it moves on; otherwise someone else decided (a revoke,
// a takeover) and nothing changes.
func (m *Manager) completeTransition(s *Session, callErr error) error {
	ctx := m.ctx
	_, err := m.change(ctx, s.ID, nil, func(cur *Session, now time.Time) (*Change, error) {
		if cur.State != s.State || !cur.StateSince.Equal(s.StateSince) {
			return nil, nil
		}
		n := cur.Clone()
		c := &Change{Session: n}
		var typ EventType
		switch {
		case cur.State == StateHibernating && callErr == nil:
			n.State, typ = StateHibernated, EventHibernated
		case cur.State == StateHibernating:
			// It hibernates again hibernate_after from now.
			n.State, n.LastActive, typ = StateActive, now, EventHibernateFailed
		case callErr == nil:
			n.State, n.LastActive, typ = StateActive, now, EventWoke
		default:
			// The connections that waited are detached: a hibernated
			// session has none. Their edges close them (AwaitAwake).
			// Each is recorded closed (wake_failed).
			conns, err := m.store.Conns(ctx, cur.ID)
			if err != nil {
				return nil, err
			}
			for _, c2 := range conns {
				c.DropConns = append(c.DropConns, c2.ID)
			}
			n.State, n.ConnCount, typ = StateHibernated, 0, EventWakeFailed
			c.Events = closedEvents(n, conns, CloseCause{Reason: ClosedWakeFailed}, now)
		}
		c.Events = append([]Event{newEvent(typ, n, now)}, c.Events...)
		return c, nil
	})
	if callErr != nil {
		m.log.Warn("the runtime failed a transition", "sid", LogID(s.ID), "state", s.State, "err", callErr)
	}
	return err
}

// disposeRuntime is the ending hook that tells the runtime a session that
// hibernates (by policy, or once by hand) ended.
func (m *Manager) disposeRuntime(ctx context.Context, s *Session) error {
	if m.policyOf(s).HibernateAfter == 0 && s.Cycle == 0 {
		return nil
	}
	return m.runtime(ctx, RuntimeCall{Action: RuntimeDispose, Session: s, Key: runtimeKey(s, RuntimeDispose)})
}

// stateWaiters wake the callers waiting for a session to leave a state
// (awaitLeave) when an event of the session is seen: one of this node's
// writes, or another node's from the event log.
type stateWaiters struct {
	n  atomic.Int32
	mu sync.Mutex
	by map[string]map[*waiter]struct{}
}

// A waiter is one caller waiting for a session's transition to end. It
// keeps the transitions' outcomes it is told of (outcomeEvent), so that
// it knows how its transition ended even if the next one has begun by
// the time it reads the session.
type waiter struct {
	ch   chan struct{}
	mu   sync.Mutex
	seen []Event // outcome events, oldest first, the last maxSeen
}

const maxSeen = 8

// outcomeEvent reports whether events of typ end a transition that
// awaitLeave waits for.
func outcomeEvent(typ EventType) bool {
	switch typ {
	case EventHibernated, EventHibernateFailed, EventWoke, EventWakeFailed, EventEnding:
		return true
	}
	return false
}

// outcome returns the type of the earliest outcome event seen that came
// after the session's version v, or "" if none was. Events arrive from
// two sources (this node's writes, the log), not always in order.
func (w *waiter) outcome(v uint64) EventType {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first *Event
	for i, ev := range w.seen {
		if ev.Version > v && (first == nil || ev.Version < first.Version) {
			first = &w.seen[i]
		}
	}
	if first == nil {
		return ""
	}
	return first.Type
}

func (w *stateWaiters) any() bool { return w.n.Load() > 0 }

func (w *stateWaiters) add(id string) *waiter {
	wt := &waiter{ch: make(chan struct{}, 1)}
	w.mu.Lock()
	if w.by == nil {
		w.by = make(map[string]map[*waiter]struct{})
	}
	if w.by[id] == nil {
		w.by[id] = make(map[*waiter]struct{})
	}
	w.by[id][wt] = struct{}{}
	w.n.Add(1)
	w.mu.Unlock()
	return wt
}

func (w *stateWaiters) remove(id string, wt *waiter) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.by[id][wt]; ok {
		delete(w.by[id], wt)
		if len(w.by[id]) == 0 {
			delete(w.by, id)
		}
		w.n.Add(-1)
	}
}

// notify tells the session's waiters that it changed, with the events of
// the change (a change of this node) or one event (from the log): the
// same event may come both ways.
func (w *stateWaiters) notify(id string, evs ...Event) {
	if !w.any() {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for wt := range w.by[id] {
		wt.mu.Lock()
		for _, ev := range evs {
			if ev.SessionID == id && outcomeEvent(ev.Type) {
				if len(wt.seen) == maxSeen {
					wt.seen = append(wt.seen[:0], wt.seen[1:]...)
				}
				wt.seen = append(wt.seen, ev)
			}
		}
		wt.mu.Unlock()
		select {
		case wt.ch <- struct{}{}:
		default:
		}
	}
}

// awaitPoll is how often a waiter reads the session even without an
// event: the event pump may have moved past an event before the waiter
// registered.
const awaitPoll = 250 * time.Millisecond

// awaitLeave waits until the session leaves the state from, for at most
// its policy's wake_timeout plus runtimeTakeover (by the engine's clock),
// and returns it as read then (possibly still in from, at the limit),
// with the type of the event that ended the transition s.Version began,
// if w (registered by the caller before that write; nil registers one
// now) was told of it. A session read in a state for which ambiguous
// reports true (a state two outcomes can lead to) is waited on until its
// outcome event comes, for one more poll at most: another node's event
// can reach this one after its write does.
func (m *Manager) awaitLeave(ctx context.Context, w *waiter, s *Session, from State, ambiguous func(*Session) bool) (*Session, EventType, error) {
	if w == nil {
		w = m.waiters.add(s.ID)
		defer m.waiters.remove(s.ID, w)
	}
	limit := make(chan struct{})
	t := m.clock.AfterFunc(m.policyOf(s).WakeTimeout+runtimeTakeover, func() { close(limit) })
	defer t.Stop()
	m.bus.notify() // the pump delivers to watchers from now on
	poll := time.NewTicker(awaitPoll)
	defer poll.Stop()
	left := false // the session was read out of from, without its outcome
	for {
		out := w.outcome(s.Version)
		cur, err := m.get(ctx, s.ID)
		if err != nil {
			return nil, "", err
		}
		if cur.State != from && (out != "" || left || ambiguous == nil || !ambiguous(cur)) {
			return cur, out, nil
		}
		left = cur.State != from
		select {
		case <-w.ch:
		case <-poll.C:
		case <-limit:
			return cur, out, nil
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
	}
}
