package sessiond

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"time"
)

// ConnectRequest attaches a connection to a session.
type ConnectRequest struct {
	// Subject is who the edge authenticated (a JWT's subject). Required.
	Subject string
	// Token, if set, attaches to the session it names, which must belong to
	// Subject. Without it, Subject's session for Device.ID is found or
	// created under Policy: one session per subject and device.
	Token string
	// Device describes the client. Without a Token, an empty Device.ID
	// stands for DefaultDeviceID: the subject's one session for clients
	// that name no device.
	Device Device
	// Policy is the policy of a session created here; "" means the
	// Manager's connect policy.
	Policy string
	// Metadata of a session created here.
	Metadata json.RawMessage
	// Kind of connection; "" means websocket.
	Kind      string
	ClientIP  string
	UserAgent string
}

// Connected is the result of Connect.
type Connected struct {
	Session *Session
	Conn    Connection
	Policy  Policy // the session's policy, for its heartbeat settings
	// Created: this call created the session. Token is its token then, or a
	// rotated token when validating the request's token rotated it.
	Created bool
	Token   string
	// Resumed: the session was disconnected and this connection resumed it.
	Resumed bool
	// Replaced are connections closed because the policy replaces them.
	Replaced []Connection
}

// DefaultDeviceID is the device id of a connection that names none and
// carries no session token: such clients share one session per subject,
// found or created exactly as for any device id.
const DefaultDeviceID = "default"

// Connect attaches a new connection to a session, creating the session if
// the request carries no token and the subject has none for its device.
//
// Attaching to a disconnected session resumes it (event resumed); otherwise
// the event is connected. Of a reconnect racing the end of the session's
// disconnect grace, exactly one wins: the session resumes, or it ends and
// (without a token) a new one is created.
func (m *Manager) Connect(ctx context.Context, req ConnectRequest) (*Connected, error) {
	if err := checkSubject(req.Subject); err != nil {
		return nil, err
	}
	if err := req.Device.Validate(); err != nil {
		return nil, err
	}
	if req.Kind == "" {
		req.Kind = KindWebSocket
	}
	if err := m.checkConnect(req); err != nil {
		return nil, err
	}
	if req.Token != "" {
		// The token is validated (and may rotate) in the attach's write:
		// a refused attach rotates nothing the client would not learn of.
		tc, s, err := m.lookupToken(ctx, req.Token, req.Device)
		if err != nil {
			m.obs.Validated(string(ErrorCode(err)))
			return nil, err
		}
		c, err := m.attach(ctx, s, req, tc)
		switch {
		case tc.result != "":
			m.obs.Validated(tc.result)
		case err != nil:
			m.obs.Validated(string(ErrorCode(err)))
		}
		if c != nil {
			c.Token = tc.newToken
		}
		return c, err
	}
	if req.Device.ID == "" {
		req.Device.ID = DefaultDeviceID
	}
	p := m.connectPolicy
	if req.Policy != "" {
		if p = m.policies[req.Policy]; p == nil {
			return nil, Errorf(CodeInvalidArgument, "policy", "no policy named %q", req.Policy)
		}
	}
	for range maxAttempts {
		s, err := m.deviceSession(ctx, req.Subject, req.Device.ID)
		if err != nil {
			return nil, err
		}
		if s != nil {
			c, err := m.attach(ctx, s, req, nil)
			if isEnded(err) {
				continue // it ended as we attached: look again
			}
			return c, err
		}
		// Create the session with the connection attached, in one write.
		c, err := m.createConnected(ctx, CreateRequest{Subject: req.Subject, Device: req.Device, Policy: p.Name, Metadata: req.Metadata}, req)
		if errors.Is(err, ErrExists) {
			continue // a racing connect created it: attach to that one
		}
		return c, err
	}
	return nil, ErrConflict
}

// ConnectTo attaches a connection to the session with the id on an
// administrator's authority: no credential, no subject check. REST
// registers connections of kinds other than WebSocket this way; they stay
// attached while their heartbeats come (Heartbeat).
func (m *Manager) ConnectTo(ctx context.Context, sessionID string, req ConnectRequest) (*Connected, error) {
	if err := checkID("id", sessionID); err != nil {
		return nil, err
	}
	if err := m.checkConnect(req); err != nil {
		return nil, err
	}
	s, err := m.get(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	return m.attach(ctx, s, req, nil)
}

// checkConnect checks what a connect records of its connection. A
// WebSocket is recorded as held by this node, which must hold its lease
// for that: a node taken for dead (fenced) until it has a new one, or one
// whose connections another node is still working off, would record
// connections that are then counted as lost.
func (m *Manager) checkConnect(req ConnectRequest) error {
	if err := checkText("kind", req.Kind, maxKindLen, true); err != nil {
		return err
	}
	if err := checkText("user_agent", req.UserAgent, maxUserAgentLen, false); err != nil {
		return err
	}
	if req.ClientIP != "" {
		if _, err := netip.ParseAddr(req.ClientIP); err != nil {
			return Errorf(CodeInvalidArgument, "client_ip", "is not an IP address")
		}
	}
	if req.Kind == KindWebSocket && m.Lease().Version == 0 {
		return Errorf(CodeUnavailable, "", "this node holds no lease (it was taken for dead): connect again, here or to another node")
	}
	return nil
}

func isEnded(err error) bool { return errors.Is(err, ErrEnded) || errors.Is(err, ErrExpired) }

// deviceSession returns the subject's live session for the device, the most
// recently active if there are several, or nil. The store finds them by an
// index of the subject's sessions by device.
func (m *Manager) deviceSession(ctx context.Context, subject, deviceID string) (*Session, error) {
	start := time.Now()
	found, err := m.store.FindDevice(ctx, subject, deviceID)
	m.obs.StoreOp("find_device", time.Since(start), err)
	if err != nil {
		return nil, err
	}
	var best *Session
	for _, s := range found {
		if s, err = m.fresh(ctx, s); err != nil {
			return nil, err
		}
		if s.State.Live() && (best == nil || s.LastActive.After(best.LastActive)) {
			best = s
		}
	}
	return best, nil
}

// newConn is the record of a connection attached now.
func (m *Manager) newConn(sessionID string, req ConnectRequest, now time.Time) Connection {
	c := Connection{
		ID: newConnID(sessionID), Kind: req.Kind, ClientIP: req.ClientIP, UserAgent: req.UserAgent,
		ConnectedAt: now, LastHeartbeat: now,
	}
	if req.Kind == KindWebSocket {
		c.Node = m.node
	}
	return c
}

// attach adds a connection to s with a compare-and-set, following the
// policy's max_connections and on_connect. With tc, the write also
// validates the token (touching or rotating the session as Validate would)
// and checks that the session is req.Subject's. It costs the same whatever
// the number of connections the session has, but for on_connect replace,
// which reads the connections it replaces.
//
// A connection to a hibernated session wakes it: the session is waking
// when attach returns (Connected.Session.State), and its runtime is being
// called (AwaitAwake waits for it). One to a session that is hibernating
// waits for it to be hibernated, then wakes it.
func (m *Manager) attach(ctx context.Context, s *Session, req ConnectRequest, tc *tokenCheck) (*Connected, error) {
	for range maxAttempts {
		c, err := m.attachOnce(ctx, s, req, tc)
		if !errors.Is(err, errHibernating) {
			return c, err
		}
		if s, _, err = m.awaitLeave(ctx, nil, &Session{ID: s.ID, Policy: s.Policy}, StateHibernating, nil); err != nil {
			return nil, err
		}
		if s.State == StateHibernating {
			return nil, Errorf(CodeRuntimeFailed, "", "the session is still hibernating after its wake_timeout; connect again")
		}
	}
	return nil, ErrConflict
}

func (m *Manager) attachOnce(ctx context.Context, s *Session, req ConnectRequest, tc *tokenCheck) (*Connected, error) {
	var (
		conn     Connection
		replaced []Connection
		resumed  bool
		waking   bool
		p        *Policy
	)
	n, err := m.change(ctx, s.ID, s, func(s *Session, now time.Time) (*Change, error) {
		var n *Session
		var events []Event
		waking = false
		if s.State == StateHibernating {
			return nil, errHibernating
		}
		if tc == nil {
			if _, err := m.checkLive(ctx, s); err != nil {
				return nil, err
			}
		} else {
			var err error
			if n, events, err = tc.check(ctx, s, now); err != nil {
				return nil, err
			}
			if s.Subject != req.Subject {
				return nil, Errorf(CodeSubjectMismatch, "token", "the session belongs to another subject")
			}
		}
		if n == nil {
			n = s.Clone()
		}
		p = m.policyOf(s)
		n.LastActive = now
		conn = m.newConn(s.ID, req, now)
		replaced = nil
		if p.OnConnect == ConnectReplace && s.ConnCount > 0 {
			var err error
			if replaced, err = m.store.Conns(ctx, s.ID); err != nil {
				return nil, err
			}
			n.ConnCount = 0
		}
		if p.MaxConnections > 0 && n.ConnCount >= p.MaxConnections {
			return nil, &Error{Code: CodeTooManyConnections, Message: "the session has the most connections its policy allows"}
		}
		n.ConnCount++
		typ := EventConnected
		resumed = s.State == StateDisconnected
		if resumed {
			n.State, n.DisconnectedAt, typ = StateActive, time.Time{}, EventResumed
		}
		if waking = s.State == StateHibernated; waking {
			n.State = StateWaking
			events = append(events, newEvent(EventWaking, n, now))
		}
		ev := attachedEvent(typ, n, &conn, now)
		c := &Change{Session: n, PutConns: []Connection{conn}}
		for _, r := range replaced {
			ev.Replaced = append(ev.Replaced, r.ID)
			c.DropConns = append(c.DropConns, r.ID)
		}
		c.Events = append(append(events, ev), closedEvents(n, replaced, CloseCause{Reason: ClosedReplaced}, now)...)
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	if waking {
		m.runTransition(n)
	}
	return &Connected{Session: n.Clone(), Conn: conn, Policy: *p, Resumed: resumed, Replaced: replaced}, nil
}

// Disconnect detaches a connection closed by its client: DisconnectWith
// with the cause ClosedByClient and no close code.
func (m *Manager) Disconnect(ctx context.Context, connID string) error {
	return m.DisconnectWith(ctx, connID, CloseCause{Reason: ClosedByClient})
}

// DisconnectWith detaches a connection for the cause whoever detaches it
// knows (its edge saw its client close it, with a WebSocket close code;
// its heartbeats stopped; its node is gone), recorded on the
// connection_closed event written with the detach. When it was the
// session's last connection and the policy has a disconnect grace, the
// session becomes disconnected until a connection resumes it or the grace
// ends it.
//
// A connection that is no longer attached (replaced, or its session ended
// or gone) changes nothing: a late close from an old connection never
// disconnects the session a newer one holds, and records nothing (what
// dropped it recorded its close). A cause with an unknown reason or a
// close code outside 1000-4999 is an invalid_argument error.
func (m *Manager) DisconnectWith(ctx context.Context, connID string, why CloseCause) error {
	sid, err := ConnectionSession(connID)
	if err != nil {
		return err
	}
	if why, err = why.check(); err != nil {
		return err
	}
	_, err = m.change(ctx, sid, nil, func(s *Session, now time.Time) (*Change, error) {
		if !s.State.Live() {
			return nil, nil
		}
		conn, err := m.store.Conn(ctx, connID)
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
		n := s.Clone()
		n.LastActive = now // the connection was alive until now: activity
		n.ConnCount--
		c := &Change{Session: n, DropConns: []string{connID}}
		last := n.ConnCount == 0 && n.State == StateActive && m.policyOf(s).DisconnectGrace > 0
		if last {
			n.State, n.DisconnectedAt = StateDisconnected, now
		}
		c.Events = append(c.Events, closedEvent(n, conn, why, now))
		if last {
			ev := newEvent(EventDisconnected, n, now)
			ev.Connection = connID
			c.Events = append(c.Events, ev)
		}
		return c, nil
	})
	if errors.Is(err, ErrNotFound) {
		err = nil
	}
	if err == nil {
		m.beats.forget(connID)
	}
	return err
}

// RemoveConnection detaches a connection registered over REST, like
// Disconnect, recording it closed as removed: RemoveConnectionWith with
// the zero CloseCause.
func (m *Manager) RemoveConnection(ctx context.Context, connID string) error {
	return m.RemoveConnectionWith(ctx, connID, CloseCause{})
}

// RemoveConnectionWith detaches a connection registered over REST,
// recording it closed for the cause its caller gives (a proxy that saw its
// client close, or lost it): a Reason of "" means ClosedRemoved. The
// reasons only the engine records (node_lost, node_restarted, replaced,
// wake_failed, session_ended) are refused. WebSocket connections are
// refused: their socket stays open until it closes (or its session ends),
// and removing the record alone would leave a socket the session no
// longer knows.
func (m *Manager) RemoveConnectionWith(ctx context.Context, connID string, cause CloseCause) error {
	if cause.Reason == "" {
		cause.Reason = ClosedRemoved
	}
	if slices.Contains(engineCloseReasons, cause.Reason) {
		return Errorf(CodeInvalidArgument, "close_reason", "%s is recorded by the engine itself, not given by a caller", cause.Reason)
	}
	if _, err := cause.check(); err != nil {
		return err
	}
	c, err := m.findConn(ctx, connID)
	if err != nil {
		return err
	}
	if c != nil && c.Kind == KindWebSocket {
		return Errorf(CodeInvalidArgument, "connection", "a websocket connection ends when its socket closes; revoke the session to close it")
	}
	return m.DisconnectWith(ctx, connID, cause)
}

// engineCloseReasons are the close reasons only the engine records.
var engineCloseReasons = []CloseReason{ClosedNodeLost, ClosedNodeRestarted, ClosedReplaced, ClosedWakeFailed, ClosedSessionEnded}

// Connections returns a session's live connections, oldest first, with the
// latest heartbeat this node heard from each (it may be newer than the
// stored one).
func (m *Manager) Connections(ctx context.Context, sessionID string) ([]Connection, error) {
	s, err := m.Get(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	if !s.State.Live() {
		return []Connection{}, nil
	}
	start := time.Now()
	out, err := m.store.Conns(ctx, sessionID)
	m.obs.StoreOp("conns", time.Since(start), err)
	if err != nil {
		return nil, err
	}
	out = slices.Clone(out)
	for i := range out {
		out[i].LastHeartbeat = m.beats.latest(out[i].ID, out[i].LastHeartbeat)
	}
	return out, nil
}

// Connection returns the connection with the id if it is attached to its
// session, or ErrConnectionNotFound: it was detached, replaced, or its
// session ended. An edge checks with it that a connection it just
// registered was not replaced before it could be found.
func (m *Manager) Connection(ctx context.Context, connID string) (*Connection, error) {
	c, err := m.findConn(ctx, connID)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, ErrConnectionNotFound
	}
	return c, nil
}

// NodeConnections returns up to limit connections recorded as held by this
// node, for an edge to reconcile what it holds with what the store says.
func (m *Manager) NodeConnections(ctx context.Context, limit int) ([]Connection, error) {
	start := time.Now()
	conns, err := m.store.NodeConns(ctx, m.node, limit)
	m.obs.StoreOp("node_conns", time.Since(start), err)
	return conns, err
}

// findConn returns the connection with the id, or nil when it is gone (not
// an error: a connection that is gone needs nothing done).
func (m *Manager) findConn(ctx context.Context, connID string) (*Connection, error) {
	if _, err := ConnectionSession(connID); err != nil {
		return nil, err
	}
	start := time.Now()
	c, err := m.store.Conn(ctx, connID)
	m.obs.StoreOp("conn", time.Since(start), err)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return c, err
}

// dropNodeConns detaches every connection recorded as held by the node:
// its process died (this node's previous process, on Start: why is
// ClosedNodeRestarted) or its lease expired (ClosedNodeLost). Each detach
// is a compare-and-set, so racing droppers detach each connection once,
// and every session follows its grace logic.
func (m *Manager) dropNodeConns(ctx context.Context, node string, why CloseReason) (int, error) {
	done := make(map[string]bool)
	for {
		start := time.Now()
		conns, err := m.store.NodeConns(ctx, node, 256)
		m.obs.StoreOp("node_conns", time.Since(start), err)
		if err != nil {
			return len(done), err
		}
		progress := false
		for _, c := range conns {
			if done[c.ID] {
				continue
			}
			if err := m.DisconnectWith(ctx, c.ID, CloseCause{Reason: why}); err != nil {
				return len(done), err
			}
			done[c.ID], progress = true, true
		}
		if !progress {
			return len(done), nil
		}
	}
}
