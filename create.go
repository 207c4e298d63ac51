package sessiond

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// CreateRequest describes a session to create.
type CreateRequest struct {
	// ID is optional: a caller-chosen id, for sessions named elsewhere (a
	// transport SDK's session id). It must be unique. The token is still
	// sessiond's.
	ID       string
	Subject  string
	Device   Device
	Metadata json.RawMessage
	Policy   string    // "" for the default policy
	Override Overrides // may only narrow the policy
}

// Created is the result of a Create. Token is returned once and never again.
type Created struct {
	Session *Session
	Token   string
	Evicted []*Session // sessions ended to make room, as they ended
}

// Create makes a new session for req.Subject under a policy, enforcing the
// policy's per-subject limit atomically.
func (m *Manager) Create(ctx context.Context, req CreateRequest) (*Created, error) {
	c, _, err := m.create(ctx, req, nil)
	return c, err
}

// createConnected creates the session of a connect (one per subject and
// device: ErrExists if the subject has one for the device already) with
// the connection attached, in one write.
func (m *Manager) createConnected(ctx context.Context, req CreateRequest, creq ConnectRequest) (*Connected, error) {
	c, conn, err := m.create(ctx, req, &creq)
	if err != nil {
		return nil, err
	}
	return &Connected{Session: c.Session.Clone(), Conn: *conn, Policy: *m.policyOf(c.Session), Created: true, Token: c.Token}, nil
}

// create is Create. With conn, the session is unique per subject and
// device and is created with that connection attached.
func (m *Manager) create(ctx context.Context, req CreateRequest, conn *ConnectRequest) (*Created, *Connection, error) {
	if err := checkSubject(req.Subject); err != nil {
		return nil, nil, err
	}
	if req.ID != "" {
		if err := checkID("id", req.ID); err != nil {
			return nil, nil, err
		}
	}
	if err := req.Device.Validate(); err != nil {
		return nil, nil, err
	}
	meta, err := normalizeMetadata(req.Metadata, m.maxMeta)
	if err != nil {
		return nil, nil, err
	}
	p := m.def
	if req.Policy != "" {
		if p = m.policies[req.Policy]; p == nil {
			return nil, nil, Errorf(CodeInvalidArgument, "policy", "no policy named %q", req.Policy)
		}
	}
	if p.BindDevice && req.Device.ID == "" {
		return nil, nil, Errorf(CodeInvalidArgument, "device.id", "is required by policy %q (bind_device)", p.Name)
	}
	ttl, idle, err := p.apply(req.Override)
	if err != nil {
		return nil, nil, err
	}

	now := m.now()
	s := &Session{
		ID: req.ID, Subject: req.Subject, Device: req.Device, Metadata: meta, Policy: p.Name,
		State: StateActive, CreatedAt: now, LastActive: now, StateSince: now, IdleTimeout: idle,
		Version: 1,
	}
	if s.ID == "" {
		s.ID = NewID(now, s.Subject)
	}
	token, hash := NewToken(s.ID)
	s.TokenHash = hash
	if ttl > 0 {
		s.ExpiresAt = now.Add(ttl)
	}
	c := Change{Session: s, Events: []Event{newEvent(EventCreated, s, now)}}
	var attached *Connection
	if conn != nil {
		a := m.newConn(s.ID, *conn, now)
		attached = &a
		s.ConnCount = 1
		c.PutConns, c.Events = []Connection{a}, append(c.Events, attachedEvent(EventConnected, s, &a, now))
	}
	lim := Limit{
		Max: p.MaxPerSubject, EvictOldest: p.OnLimit == LimitEvictOldest, Now: now, UniqueDevice: conn != nil,
		EvictedDue: now.Add(endingTimeout),
	}
	m.setDeadlines(&c)

	start := time.Now()
	evicted, err := m.store.Create(ctx, c, lim)
	m.obs.StoreOp("create", time.Since(start), err)
	if err != nil {
		if errors.Is(err, ErrLimitReached) {
			return nil, nil, &Error{Code: CodeLimitReached, Message: fmt.Sprintf("subject has %d live sessions, the limit of policy %q", p.MaxPerSubject, p.Name)}
		}
		return nil, nil, err
	}
	for _, e := range evicted {
		m.cache.seen(e.ID, e.Version, now)
		m.recorded(newEvent(EventEnding, e, now))
		m.log.Info("session evicted", "sid", LogID(e.ID), "by", LogID(s.ID))
	}
	m.landed(c)
	out := &Created{Session: s, Token: token} // the store keeps its own copy
	// Evicted sessions are ending: the disposal workers finish them; the
	// caller sees them ended unless that takes longer than its ctx.
	jobs := make([]*disposeJob, len(evicted))
	for i, e := range evicted {
		jobs[i] = m.disposal.finish(e)
	}
	for i, e := range evicted {
		done := e
		if j := jobs[i]; j != nil {
			select {
			case <-j.done:
				if j.err == nil {
					done = j.result
				}
			case <-ctx.Done():
			}
		}
		out.Evicted = append(out.Evicted, done.Clone())
	}
	return out, attached, nil
}
