package sessiond

import (
	"context"
	"errors"
	"sync"
	"time"
)

// heartbeats holds what this node heard from connections of kinds other
// than WebSocket and has not written: a heartbeat writes the store at most
// once per heartbeatWriteEvery (a connection's LastHeartbeat is stored that
// coarsely), and in between its deadline lives here.
type heartbeats struct {
	mu   sync.Mutex
	last map[string]time.Time // by connection id: the latest heartbeat heard
}

func (h *heartbeats) heard(connID string, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last == nil {
		h.last = make(map[string]time.Time)
	}
	h.last[connID] = at
}

// latest returns the later of stored and what this node heard.
func (h *heartbeats) latest(connID string, stored time.Time) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t, ok := h.last[connID]; ok && t.After(stored) {
		return t
	}
	return stored
}

func (h *heartbeats) forget(connID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.last, connID)
}

// heartbeatWriteEvery is how often a connection's heartbeats are written
// at most: the policy's touch interval (its heartbeat interval if it writes
// no activity), but never so seldom that the stored heartbeat falls behind
// by the heartbeat timeout. A node that did not hear the heartbeats, and
// one restarted since, times the connection from the stored one: it may lag
// the latest heard by the write interval plus one heartbeat interval, so
// the write interval is kept to three quarters of what the timeout leaves
// after one interval; the last quarter absorbs a late heartbeat. With the
// default 25s interval and 60s timeout, heartbeats are written every other
// one.
func heartbeatWriteEvery(p *Policy) time.Duration {
	every := p.HeartbeatInterval
	if p.TouchInterval > 0 {
		every = p.TouchInterval
	}
	return min(every, (p.HeartbeatTimeout-p.HeartbeatInterval)*3/4)
}

// Heartbeat records that a connection (of a kind other than WebSocket,
// whose heartbeats the edge handles itself) is alive, and returns it with
// its session (whose state says whether it is waking still) and the policy
// that times it. A connection not heard from for the policy's heartbeat
// timeout is lost.
//
// The store is written at most once per heartbeatWriteEvery; heartbeats
// in between move the connection's deadline in this node's memory only.
func (m *Manager) Heartbeat(ctx context.Context, connID string) (*Connected, error) {
	sid, err := ConnectionSession(connID)
	if err != nil {
		return nil, err
	}
	var (
		conn Connection
		p    *Policy
	)
	n, err := m.change(ctx, sid, nil, func(s *Session, now time.Time) (*Change, error) {
		if _, err := m.checkLive(ctx, s); err != nil {
			return nil, err
		}
		c, err := m.store.Conn(ctx, connID)
		if err != nil {
			return nil, err // ErrNotFound: no such connection
		}
		p = m.policyOf(s)
		conn = *c
		conn.LastHeartbeat = now
		if now.Sub(c.LastHeartbeat) < heartbeatWriteEvery(p) {
			m.beats.heard(connID, now) // connDue reads it
			return nil, nil
		}
		n := s.Clone()
		n.LastActive = now // a heartbeat is activity
		return &Change{Session: n, PutConns: []Connection{conn}}, nil
	})
	switch {
	case err == nil:
		return &Connected{Session: n.Clone(), Conn: conn, Policy: *p}, nil
	case errors.Is(err, ErrNotFound):
		return nil, ErrConnectionNotFound
	}
	return nil, err
}

// connDue handles a connection's claimed entry in the deadline index (its
// heartbeat deadline, from the heartbeat last written): the connection is
// lost unless a heartbeat moved its deadline since. A heartbeat that this
// node heard and did not write moves the entry to the deadline it gives,
// without a write of the session: if no heartbeat comes by then, on any
// node, the connection is lost then.
func (m *Manager) connDue(ctx context.Context, connID string) error {
	c, err := m.findConn(ctx, connID)
	if err != nil || c == nil {
		if err == nil {
			m.beats.forget(connID)
		}
		return err
	}
	sid, _ := ConnectionSession(connID)
	s, err := m.get(ctx, sid)
	if errors.Is(err, ErrNotFound) {
		m.beats.forget(connID)
		return nil
	}
	if err != nil {
		return err
	}
	if at := m.beats.latest(connID, c.LastHeartbeat).Add(m.policyOf(s).HeartbeatTimeout); m.now().Before(at) {
		if err := m.store.Reschedule(ctx, Due{ID: connID, At: at}, s.Version); err != nil {
			return err
		}
		m.pollAt(at)
		return nil
	}
	m.obs.HeartbeatTimeout(c.Kind)
	m.log.Info("connection lost: no heartbeat", "sid", LogID(s.ID), "kind", c.Kind)
	return m.DisconnectWith(ctx, connID, CloseCause{Reason: ClosedHeartbeatTimeout})
}
