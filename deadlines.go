package sessiond

import (
	"context"
	"errors"
	"time"
)

// endingTimeout is how long a session may stay in StateEnding before any
// node's scheduler finishes it: the owner of its disposal must have died.
const endingTimeout = time.Minute

// deadlineKind says what a session's next deadline is for.
type deadlineKind uint8

const (
	noDeadline     deadlineKind = iota
	deadlineExpiry              // the absolute lifetime (ttl) ends
	deadlineIdle                // no activity for the idle timeout
	deadlineGrace               // the disconnect grace ends without a reconnect
	deadlineEnding              // ending for too long: whoever disposed of it died
	deadlinePurge               // ended, and its retention is over
)

// endReason is the reason a live session ends for when the deadline passes.
func (k deadlineKind) endReason() EndReason {
	switch k {
	case deadlineExpiry:
		return EndExpired
	case deadlineIdle:
		return EndIdle
	case deadlineGrace:
		return EndGraceElapsed
	}
	return ""
}

// nextDeadline is the one place that says when a session next needs the
// engine and why: the earliest of its absolute expiry, its idle expiry and
// the end of its disconnect grace while live, the end of its disposal while
// ending, and its purge once ended. A zero time means never.
//
// A session with connections attached is not idle: their heartbeats are its
// activity. So the idle timeout counts only while none is attached, from
// the moment the last one left (which records activity), and keeping a
// connected session from idling costs no store write of its own: WebSocket
// pings are never written, other connections' heartbeats only as often as
// heartbeatWriteEvery says.
func (m *Manager) nextDeadline(s *Session) (at time.Time, kind deadlineKind) {
	switch s.State {
	case StateEnded:
		if m.retention < 0 {
			return s.EndedAt, deadlinePurge
		}
		return s.EndedAt.Add(m.retention), deadlinePurge
	case StateEnding:
		return s.EndedAt.Add(endingTimeout), deadlineEnding
	}
	consider := func(t time.Time, k deadlineKind) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at, kind = t, k
		}
	}
	consider(s.ExpiresAt, deadlineExpiry)
	if s.IdleTimeout > 0 && s.ConnCount == 0 && (s.State == StateActive || s.State == StateDisconnected) {
		consider(s.LastActive.Add(s.IdleTimeout), deadlineIdle)
	}
	if s.State == StateDisconnected {
		consider(s.DisconnectedAt.Add(m.policyOf(s).DisconnectGrace), deadlineGrace)
	}
	return at, kind
}

// expiry reports whether a live session is past a deadline that ends it at
// now, and the reason of the one that came first.
func (m *Manager) expiry(s *Session, now time.Time) (EndReason, bool) {
	if !s.State.Live() {
		return "", false
	}
	at, kind := m.nextDeadline(s)
	if at.IsZero() || now.Before(at) {
		return "", false
	}
	return kind.endReason(), true
}

// keyKind says what a scheduler key stands for.
type keyKind uint8

const (
	keySession keyKind = iota // a session's next deadline (nextDeadline)
	keyConn                   // a connection's heartbeat deadline
	keyLease                  // another node's lease expiry (lease.go)
)

// schedKey is a key of the engine's scheduler.
type schedKey struct {
	kind keyKind
	id   string // session id, connection id or node name
}

func sessionKey(id string) schedKey { return schedKey{keySession, id} }
func connKey(id string) schedKey    { return schedKey{keyConn, id} }

// schedule sets the session's next deadline.
func (m *Manager) schedule(s *Session) {
	at, _ := m.nextDeadline(s)
	m.scheduleAt(sessionKey(s.ID), at)
}

func (m *Manager) scheduleAt(k schedKey, at time.Time) {
	if m.sched != nil {
		m.sched.Set(k, at)
	}
}

// retryLater reschedules a key whose handling failed with a fault.
func (m *Manager) retryLater(k schedKey, what string, err error) {
	if m.ctx.Err() != nil {
		return
	}
	if k.kind == keyLease {
		m.log.Warn(what+"; retrying in 1s", "node", k.id, "err", err)
	} else {
		m.log.Warn(what+"; retrying in 1s", "sid", LogID(k.id), "err", err)
	}
	m.scheduleAt(k, m.now().Add(time.Second))
}

// due is the scheduler's callback.
func (m *Manager) due(k schedKey, at time.Time) {
	m.obs.SchedulerLag(m.now().Sub(at))
	switch k.kind {
	case keyConn:
		if err := m.connDue(m.ctx, k.id); err != nil {
			m.retryLater(k, "handling a heartbeat deadline", err)
		}
	case keyLease:
		if err := m.leaseDue(m.ctx, k.id); err != nil {
			m.retryLater(k, "handling another node's lease", err)
		}
	case keySession:
		s, err := m.get(m.ctx, k.id)
		if errors.Is(err, ErrNotFound) {
			return
		}
		if err == nil {
			err = m.settle(m.ctx, s)
		}
		if err != nil {
			m.retryLater(k, "handling a deadline", err)
		}
	}
}

// settle does what is due for s now: ends it, has its ending finished,
// purges it, or reschedules it for its next deadline. It never waits for
// disposals.
func (m *Manager) settle(ctx context.Context, s *Session) error {
	now := m.now()
	switch s.State {
	case StateEnded:
		at, _ := m.nextDeadline(s)
		if now.Before(at) {
			m.scheduleAt(sessionKey(s.ID), at)
			return nil
		}
		start := time.Now()
		err := m.store.Delete(ctx, s.ID, s.Version)
		m.obs.StoreOp("delete", time.Since(start), err)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
			return nil // purged or changed by someone else, who scheduled it
		}
		return err
	case StateEnding:
		if m.disposal.finish(s) == nil {
			m.scheduleAt(sessionKey(s.ID), now.Add(time.Second)) // the queue is full: later
		}
		return nil
	}
	if reason, due := m.expiry(s, now); due {
		_, _, err := m.end(ctx, s, reason, false)
		return err
	}
	m.schedule(s)
	return nil
}
