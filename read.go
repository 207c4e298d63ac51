package sessiond

import (
	"context"
	"time"
)

// Get returns the session with the id, in any state. A session past its
// deadline is ended first, so it is never returned as live.
func (m *Manager) Get(ctx context.Context, id string) (*Session, error) {
	if err := checkID("id", id); err != nil {
		return nil, err
	}
	s, err := m.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if s, err = m.fresh(ctx, s); err != nil {
		return nil, err
	}
	return s.Clone(), nil
}

// fresh returns s, or s ended if it is live and past its deadline.
func (m *Manager) fresh(ctx context.Context, s *Session) (*Session, error) {
	if !s.State.Live() {
		return s, nil
	}
	reason, due := m.expiry(s, m.now())
	if !due {
		return s, nil
	}
	s, _, err := m.end(ctx, s, reason, true)
	return s, err
}

// ListBySubject returns the subject's live sessions, oldest first.
func (m *Manager) ListBySubject(ctx context.Context, subject string) ([]*Session, error) {
	if err := checkSubject(subject); err != nil {
		return nil, err
	}
	start := time.Now()
	live, err := m.store.Live(ctx, subject)
	m.obs.StoreOp("live", time.Since(start), err)
	if err != nil {
		return nil, err
	}
	out := make([]*Session, 0, len(live))
	for _, s := range live {
		if s, err = m.fresh(ctx, s); err != nil {
			return nil, err
		}
		if s.State.Live() {
			out = append(out, s.Clone())
		}
	}
	return out, nil
}

// List returns a page of sessions in id order, filtered by subject and
// state. Sessions past their deadline are ended before they are shown.
func (m *Manager) List(ctx context.Context, q Query) (Page, error) {
	if q.Subject != "" {
		if err := checkSubject(q.Subject); err != nil {
			return Page{}, err
		}
	}
	if q.State != 0 && !q.State.Valid() {
		return Page{}, Errorf(CodeInvalidArgument, "state", "unknown state")
	}
	start := time.Now()
	page, err := m.store.List(ctx, q)
	m.obs.StoreOp("list", time.Since(start), err)
	if err != nil {
		return Page{}, err
	}
	out := page.Sessions[:0:0]
	for _, s := range page.Sessions {
		if s, err = m.fresh(ctx, s); err != nil {
			return Page{}, err
		}
		if q.State == 0 || s.State == q.State {
			out = append(out, s.Clone())
		}
	}
	page.Sessions = out
	return page, nil
}

// Stats are the engine's counts.
type Stats struct {
	Sessions    map[State]int // by state
	Total       int
	Subjects    int            // with at least one live session
	Connections map[string]int // connections of live sessions, by kind
	Scheduled   int            // deadlines in the store's index (StoreStats.Due)
}

// Stats returns counts by state and of deadlines from the store.
func (m *Manager) Stats(ctx context.Context) (Stats, error) {
	start := time.Now()
	st, err := m.store.Stats(ctx)
	m.obs.StoreOp("stats", time.Since(start), err)
	if err != nil {
		return Stats{}, err
	}
	return Stats{Sessions: st.ByState, Total: st.Total, Subjects: st.Subjects, Connections: st.Connections, Scheduled: st.Due}, nil
}

// Subscribe streams the events the cursor is not past, replaying from the
// store's log what was recorded before the call; FromNow starts with what
// is recorded from now on, and the zero Cursor replays the whole retained
// log. A subscription that falls more than SubscriberBuffer events behind
// is dropped (Next returns ErrSubscriberTooSlow) and can resume by
// subscribing from its Cursor. Close it when done.
func (m *Manager) Subscribe(ctx context.Context, after Cursor) (*Subscription, error) {
	return m.bus.subscribe(ctx, after)
}
