package sessiond

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// endingTimeout is how long a session may stay in StateEnding before any
// node's scheduler finishes it: the owner of its disposal must have died.
const endingTimeout = time.Minute

// deadlineKind says what a session's next deadline is for.
type deadlineKind uint8

const (
	noDeadline        deadlineKind = iota
	deadlineExpiry                 // the absolute lifetime (ttl) ends
	deadlineIdle                   // no activity for the idle timeout
	deadlineGrace                  // the disconnect grace ends without a reconnect
	deadlineEnding                 // ending for too long: whoever disposed of it died
	deadlinePurge                  // ended, and its retention is over
	deadlineHibernate              // hibernate_after passed with no connection
	deadlineRuntime                // a hibernate or wake outlived its wake_timeout: its node died
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
// engine and why: the earliest of the deadlines that end it (endDeadline),
// its hibernation while awake with no connection, and the takeover of a
// hibernate or wake while one runs; the end of its disposal while ending;
// its purge once ended. A zero time means never.
//
// A session with connections attached is neither idle nor hibernates:
// their heartbeats are its activity. So the idle timeout and
// hibernate_after count only while none is attached, from the moment the
// last one left (which records activity), and keeping a connected session
// awake costs no store write of its own: WebSocket pings are never
// written, other connections' heartbeats only as often as
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
	at, kind = m.endDeadline(s)
	consider := func(t time.Time, k deadlineKind) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at, kind = t, k
		}
	}
	p := m.policyOf(s)
	switch s.State {
	case StateActive, StateDisconnected:
		if p.HibernateAfter > 0 && s.ConnCount == 0 {
			consider(s.LastActive.Add(p.HibernateAfter), deadlineHibernate)
		}
	case StateHibernating, StateWaking:
		consider(s.StateSince.Add(p.WakeTimeout+runtimeTakeover), deadlineRuntime)
	}
	return at, kind
}

// endDeadline is the earliest deadline that ends a live session: its
// absolute expiry (in every state), its idle expiry while it has no
// connection (awake or hibernated), and the end of its disconnect grace
// (unless it hibernates instead).
func (m *Manager) endDeadline(s *Session) (at time.Time, kind deadlineKind) {
	consider := func(t time.Time, k deadlineKind) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at, kind = t, k
		}
	}
	consider(s.ExpiresAt, deadlineExpiry)
	switch s.State {
	case StateActive, StateDisconnected, StateHibernated:
		if s.IdleTimeout > 0 && s.ConnCount == 0 {
			consider(s.LastActive.Add(s.IdleTimeout), deadlineIdle)
		}
	}
	if p := m.policyOf(s); s.State == StateDisconnected && p.HibernateAfter == 0 {
		consider(s.DisconnectedAt.Add(p.DisconnectGrace), deadlineGrace)
	}
	return at, kind
}

// expiry reports whether a live session is past a deadline that ends it at
// now, and the reason of the one that came first.
func (m *Manager) expiry(s *Session, now time.Time) (EndReason, bool) {
	if !s.State.Live() {
		return "", false
	}
	at, kind := m.endDeadline(s)
	if at.IsZero() || now.Before(at) {
		return "", false
	}
	return kind.endReason(), true
}

// The deadlines of sessions and of connections timed by heartbeats live
// in the store's deadline index (Store.ClaimDue): every write sets its
// session's next deadline (nextDeadline) and its connections' heartbeat
// deadlines, in the same step. Each engine claims what is due, so that
// whichever node is alive does it: a deadline is never lost with the
// node that set it, and no engine reads every session to find its
// deadlines. Claims are exclusive for claimHold; what a claim could not
// settle (a fault, a node that died in the middle) comes back then, to
// any engine. Every transition is a compare-and-set, so an entry claimed
// twice still ends its session once.
//
// An engine polls the index when the earliest entry it knows of is due:
// the earliest the index held after its last claim, or one of its own
// writes set, whichever is first, and at least every duePoll for the
// entries other engines set (a node that died before their time).
const (
	claimHold  = 5 * time.Second
	duePoll    = time.Second
	claimBatch = 512
)

// keyKind says what a scheduler key stands for.
type keyKind uint8

const (
	keyPoll  keyKind = iota // the next claim of due entries
	keyLease                // another node's lease expiry (lease.go)
)

// schedKey is a key of the engine's scheduler.
type schedKey struct {
	kind keyKind
	id   string // node name, for keyLease
}

var pollKey = schedKey{kind: keyPoll}

// scheduleAt sets a key of the engine's scheduler (another node's lease).
func (m *Manager) scheduleAt(k schedKey, at time.Time) {
	if m.sched != nil {
		m.sched.Set(k, at)
	}
}

// poller is the engine's side of the deadline index: when it next claims.
type poller struct {
	mu      sync.Mutex
	next    time.Time // the claim set up; zero while claiming or before Start
	running bool      // a claim is running
	again   bool      // ... and another is due once it ends
}

// pollAt makes sure the engine claims due entries by at.
func (m *Manager) pollAt(at time.Time) {
	if at.IsZero() || m.sched == nil {
		return
	}
	m.poll.mu.Lock()
	defer m.poll.mu.Unlock()
	if m.poll.running {
		if !at.After(m.now()) {
			m.poll.again = true
		} else if m.poll.next.IsZero() || at.Before(m.poll.next) {
			m.poll.next = at // set for when the claim ends
		}
		return
	}
	if m.poll.next.IsZero() || at.Before(m.poll.next) {
		m.poll.next = at
		m.sched.Set(pollKey, at)
	}
}

// claimDue claims due entries and handles them, batch after batch, until
// none is due; then it sets the next claim. It returns how many entries it
// handled and how many sessions it ended.
func (m *Manager) claimDue() (handled, ended int) {
	m.poll.mu.Lock()
	if m.poll.running {
		m.poll.again = true
		m.poll.mu.Unlock()
		return 0, 0
	}
	m.poll.running, m.poll.next = true, time.Time{}
	m.poll.mu.Unlock()

	next := m.now().Add(duePoll)
	for m.ctx.Err() == nil {
		now := m.now()
		start := time.Now()
		due, earliest, err := m.store.ClaimDue(m.ctx, now, claimHold, claimBatch)
		m.obs.StoreOp("claim_due", time.Since(start), err)
		if err != nil {
			m.log.Warn("claiming due deadlines; retrying in 1s", "err", err)
			break
		}
		ended += m.handleDue(due)
		handled += len(due)
		m.poll.mu.Lock()
		again := m.poll.again
		m.poll.again = false
		m.poll.mu.Unlock()
		// More is due if the index's earliest entry is (held ones are
		// in the future): a store may claim a batch short of the limit.
		if !again && (earliest.IsZero() || earliest.After(m.now())) {
			if !earliest.IsZero() && earliest.Before(next) {
				next = earliest
			}
			break
		}
	}
	m.poll.mu.Lock()
	m.poll.running = false
	if !m.poll.next.IsZero() && m.poll.next.Before(next) {
		next = m.poll.next
	}
	if m.poll.again {
		m.poll.again = false
		next = m.now()
	}
	m.poll.next = next
	m.sched.Set(pollKey, next)
	m.poll.mu.Unlock()
	return handled, ended
}

// handleDue handles claimed entries on the engine's workers, and returns
// once all are handled, with the number of sessions it ended. An entry
// whose handling failed stays claimed, and comes back after claimHold.
func (m *Manager) handleDue(due []Due) int {
	if len(due) == 0 {
		return 0
	}
	now := m.now()
	var ended atomic.Int64
	var wg sync.WaitGroup
	work := make(chan Due)
	for range min(m.workers, len(due)) {
		wg.Go(func() {
			for d := range work {
				m.obs.SchedulerLag(now.Sub(d.At))
				var err error
				if _, cerr := ConnectionSession(d.ID); cerr == nil {
					err = m.connDue(m.ctx, d.ID)
				} else {
					var e bool
					e, err = m.sessionDue(m.ctx, d)
					if e {
						ended.Add(1)
					}
				}
				if err != nil && m.ctx.Err() == nil && !errors.Is(err, ErrNotFound) {
					m.log.Warn("handling a deadline; retrying later", "id", LogID(d.ID), "in", claimHold, "err", err)
				}
			}
		})
	}
	for _, d := range due {
		work <- d
	}
	close(work)
	wg.Wait()
	return int(ended.Load())
}

// sessionDue handles a session's claimed entry (with the session as the
// claim read it, if the store gave it), and reports whether it ended the
// session.
func (m *Manager) sessionDue(ctx context.Context, d Due) (bool, error) {
	s := d.Session
	if s == nil {
		var err error
		if s, err = m.get(ctx, d.ID); err != nil {
			return false, err
		}
	}
	return m.settle(ctx, s)
}

// reschedule puts a session's entry at its next deadline, as read from s:
// its claim turned out not to be due (a clock ahead of the writer's).
func (m *Manager) reschedule(ctx context.Context, s *Session) error {
	at, _ := m.nextDeadline(s)
	if err := m.store.Reschedule(ctx, Due{ID: s.ID, At: at}, s.Version); err != nil {
		return err
	}
	m.pollAt(at)
	return nil
}

// due is the scheduler's callback.
func (m *Manager) due(k schedKey, at time.Time) {
	switch k.kind {
	case keyPoll:
		m.obs.SchedulerLag(m.now().Sub(at))
		m.claimDue()
	case keyLease:
		if err := m.leaseDue(m.ctx, k.id); err != nil && m.ctx.Err() == nil {
			m.log.Warn("handling another node's lease; retrying in 1s", "node", k.id, "err", err)
			m.scheduleAt(k, m.now().Add(time.Second))
		}
	}
}

// settle does what is due for s now: ends it (reporting true), has its
// ending finished, purges it, or reschedules it for its next deadline. It
// never waits for disposals.
func (m *Manager) settle(ctx context.Context, s *Session) (bool, error) {
	now := m.now()
	switch s.State {
	case StateEnded:
		if at, _ := m.nextDeadline(s); now.Before(at) {
			return false, m.reschedule(ctx, s)
		}
		start := time.Now()
		err := m.store.Delete(ctx, s.ID, s.Version)
		m.obs.StoreOp("delete", time.Since(start), err)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
			return false, nil // purged or changed by someone else, who scheduled it
		}
		return false, err
	case StateEnding:
		if now.Before(s.EndedAt.Add(endingTimeout)) {
			return false, m.reschedule(ctx, s)
		}
		m.disposal.finish(s) // a full queue leaves it claimed, for later
		return false, nil
	}
	if reason, due := m.expiry(s, now); due {
		_, wrote, err := m.end(ctx, s, reason, false)
		return wrote, err
	}
	if at, kind := m.nextDeadline(s); !at.IsZero() && !now.Before(at) {
		switch kind {
		case deadlineHibernate:
			_, err := m.beginHibernate(ctx, s, false)
			return false, err
		case deadlineRuntime:
			return false, m.takeOver(ctx, s)
		}
	}
	return false, m.reschedule(ctx, s)
}
