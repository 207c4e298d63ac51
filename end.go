package sessiond

import (
	"context"
	"sync"
	"time"
)

// Revoke ends the session with the reason (EndRevoked if empty). Revoking a
// session that is already ending or ended does nothing and returns nil. It
// returns once the session is ended and its resources disposed of, or once
// ctx is done (the session is then ending, and its disposal goes on).
func (m *Manager) Revoke(ctx context.Context, id string, reason EndReason) error {
	if err := checkID("id", id); err != nil {
		return err
	}
	if reason == "" {
		reason = EndRevoked
	}
	if !reason.Valid() {
		return Errorf(CodeInvalidArgument, "reason", "unknown end reason %q", reason)
	}
	s, err := m.get(ctx, id)
	if err != nil {
		return err
	}
	_, _, err = m.end(ctx, s, m.reasonAt(s, reason), true)
	return err
}

// reasonAt is why a session being ended for reason really ends: a session
// already past its deadline ends for that deadline, so that its end reason
// and events say what happened first.
func (m *Manager) reasonAt(s *Session, reason EndReason) EndReason {
	if r, due := m.expiry(s, m.now()); due {
		return r
	}
	return reason
}

// RevokeSubject ends all of the subject's live sessions and returns how many
// this call ended.
func (m *Manager) RevokeSubject(ctx context.Context, subject string) (int, error) {
	if err := checkSubject(subject); err != nil {
		return 0, err
	}
	start := time.Now()
	live, err := m.store.Live(ctx, subject)
	m.obs.StoreOp("live", time.Since(start), err)
	if err != nil {
		return 0, err
	}
	var (
		mu    sync.Mutex
		n     int
		first error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, 16)
	)
	for _, s := range live {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			reason := m.reasonAt(s, EndRevoked)
			_, won, err := m.end(ctx, s, reason, true)
			won = won && reason == EndRevoked // an expired one was not revoked by this call
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = err
			}
			if won {
				n++
			}
		}()
	}
	wg.Wait()
	return n, first
}

// checkLive returns s if it is live and not past a deadline; otherwise it
// ends it if due and returns the error a caller of a live-only operation gets.
func (m *Manager) checkLive(ctx context.Context, s *Session) (*Session, error) {
	if !s.State.Live() {
		return nil, endedError(s)
	}
	if reason, due := m.expiry(s, m.now()); due {
		return nil, m.endFor(ctx, s, reason)
	}
	return s, nil
}

// endFor ends s for a deadline or theft found while serving a caller, and
// returns the error that caller gets.
func (m *Manager) endFor(ctx context.Context, s *Session, reason EndReason) error {
	e, _, err := m.end(ctx, s, reason, true)
	if err != nil {
		return err
	}
	return endedError(e)
}

// end moves s to ending and then ended, with the reason. Of racing ends
// exactly one wins and gets won true; the others find the session already
// ending or ended and get it as they found it. Ending a session never
// touches another: the write is a compare-and-set on s alone.
//
// When there is something to dispose of (resources held here, ending
// hooks), the session is recorded as ending and handed to the disposal
// workers, which record it as ended; with wait, end waits for that, or for
// ctx. Otherwise ending and ended are recorded in one write.
func (m *Manager) end(ctx context.Context, s *Session, reason EndReason, wait bool) (_ *Session, won bool, err error) {
	// While this call may end the session, it owns the disposal of what
	// this process holds for it: the event sweeper keeps off.
	defer m.res.owning(s.ID)()
	attempt, wrote, twoPhase := 0, false, false
	n, err := m.change(ctx, s.ID, s, func(cur *Session, now time.Time) (*Change, error) {
		attempt++
		wrote = false
		if !cur.State.Live() {
			return nil, nil // someone else ended it
		}
		if attempt > 1 && reason.deadline() {
			// A deadline seen before a lost compare-and-set may no longer
			// hold (a reconnect resumed the session, activity moved it).
			r, due := m.expiry(cur, now)
			if !due {
				return nil, nil
			}
			reason = r
		}
		// The connections it loses are recorded closed (session_ended):
		// read only when it has some, so ending costs no read otherwise.
		var conns []Connection
		if cur.ConnCount > 0 {
			var err error
			if conns, err = m.store.Conns(ctx, cur.ID); err != nil {
				return nil, err
			}
		}
		n, events := Ending(cur, conns, reason, now)
		twoPhase = len(m.hooks) > 0 || m.res.holds(cur.ID)
		if !twoPhase {
			// Nothing to dispose of: record ending and ended in one write.
			n.State = StateEnded
			events = append(events, newEvent(EventEnded, n, now))
		}
		wrote = true
		return &Change{Session: n, Events: events}, nil
	})
	switch {
	case err != nil:
		return nil, false, err
	case !wrote && n.State.Live():
		// The deadline no longer holds (a reconnect, activity): its claim
		// turned out early.
		return n, false, m.reschedule(ctx, n)
	case !wrote:
		// Someone else ended it: release what this process holds.
		m.disposal.release(n)
		return n, false, nil
	}
	m.log.Info("session ended", "sid", LogID(n.ID), "reason", reason)
	if !twoPhase {
		// A resource attached while the write was on its way was not seen
		// by it, and Attach's check saw the session still live: release it.
		m.disposal.release(n)
		return n, true, nil
	}
	// If the queue is full, the session stays ending until its ending
	// deadline hands it to the workers again.
	j := m.disposal.finish(n)
	if j == nil || !wait {
		return n, true, nil
	}
	select {
	case <-j.done:
		if j.err != nil {
			return n, true, j.err
		}
		return j.result, true, nil
	case <-ctx.Done():
		return n, true, nil
	}
}

// finish disposes of what this process holds for an ending session, runs
// the ending hooks, and records it ended. Racing finishers are harmless:
// one records ended, the others see it and return it.
func (m *Manager) finish(ctx context.Context, s *Session) (*Session, error) {
	m.dispose(ctx, s, true)
	return m.change(ctx, s.ID, s, func(cur *Session, now time.Time) (*Change, error) {
		if cur.State != StateEnding {
			return nil, nil
		}
		n := cur.Clone()
		n.State = StateEnded
		return &Change{Session: n, Events: []Event{newEvent(EventEnded, n, now)}}, nil
	})
}
