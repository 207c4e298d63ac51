package sessiond

import (
	"encoding/json"
	"slices"
	"time"
)

// Every connection's life is in the event log, for the history: the event
// that attached it (connected, or resumed) carries what it is (ConnDetail),
// and exactly one connection_closed event records when and why it left,
// written in the same store write as the change that dropped it, whatever
// dropped it: its client or edge (DisconnectWith), a heartbeat timeout, the
// loss or restart of its node, a newer connection replacing it, a wake
// that failed, or the end of its session (Ending, which the stores also
// apply to the sessions they evict).

// CloseReason says why a connection left its session: a stable word,
// recorded on its connection_closed event (ConnDetail.CloseReason) and in
// the history.
type CloseReason string

// Close reasons.
const (
	ClosedByClient          CloseReason = "closed"             // its client closed it (a WebSocket close frame)
	ClosedLost              CloseReason = "lost"               // it broke without a close (the network, the client's process)
	ClosedRemoved           CloseReason = "removed"            // removed over REST (RemoveConnection)
	ClosedHeartbeatTimeout  CloseReason = "heartbeat_timeout"  // nothing heard from it for the policy's heartbeat timeout
	ClosedCredentialExpired CloseReason = "credential_expired" //nolint:gosec // G101, no secret: its credential expired without a refresh
	ClosedProtocolError     CloseReason = "protocol_error"     // its client broke the protocol (a binary frame, a message too big or too many)
	ClosedShutdown          CloseReason = "shutdown"           // the node holding it shut down
	ClosedByServer          CloseReason = "server_closed"      // the node holding it closed it for another reason (an internal error)
	ClosedNodeLost          CloseReason = "node_lost"          // the node holding it died: its lease expired
	ClosedNodeRestarted     CloseReason = "node_restarted"     // the node holding it restarted
	ClosedReplaced          CloseReason = "replaced"           // a newer connection replaced it (on_connect: replace)
	ClosedWakeFailed        CloseReason = "wake_failed"        // it waited for its session to wake, and the wake failed
	ClosedSessionEnded      CloseReason = "session_ended"      // its session ended (the event's Reason says why)
)

// CloseReasons lists every close reason.
var CloseReasons = []CloseReason{
	ClosedByClient, ClosedLost, ClosedRemoved, ClosedHeartbeatTimeout, ClosedCredentialExpired,
	ClosedProtocolError, ClosedShutdown, ClosedByServer, ClosedNodeLost, ClosedNodeRestarted,
	ClosedReplaced, ClosedWakeFailed, ClosedSessionEnded,
}

// Valid reports whether r is one of CloseReasons.
func (r CloseReason) Valid() bool { return slices.Contains(CloseReasons, r) }

// CloseCause is why a connection is detached, as whoever detaches it
// knows it: DisconnectWith records it on the connection_closed event.
type CloseCause struct {
	Reason CloseReason // "" means ClosedByClient
	// Code is the WebSocket close code (1000-4999) the connection closed
	// with, as the edge saw it: sent by its client, or by the server; 0
	// for none (a connection of another kind, or one lost without a close).
	Code int
}

// check returns the cause with its defaults, or an error naming what is
// wrong.
func (c CloseCause) check() (CloseCause, error) {
	if c.Reason == "" {
		c.Reason = ClosedByClient
	}
	if !c.Reason.Valid() {
		return c, Errorf(CodeInvalidArgument, "close_reason", "unknown close reason %q", c.Reason)
	}
	if c.Code != 0 && (c.Code < 1000 || c.Code > 4999) {
		return c, Errorf(CodeInvalidArgument, "close_code", "a WebSocket close code is 1000 to 4999 (0: none), not %d", c.Code)
	}
	return c, nil
}

// ConnDetail is what an event records of its connection (Event.Conn): on
// connected and resumed, the connection as it attached; on
// connection_closed, also when and why it closed. In JSON, a closed
// connection also carries duration_ms (ClosedAt - OpenedAt, in
// milliseconds) and close_code (0 for none).
type ConnDetail struct {
	Kind      string
	Node      string // the node holding it (WebSocket connections)
	ClientIP  string
	UserAgent string
	OpenedAt  time.Time
	// Set on connection_closed only.
	ClosedAt    time.Time
	CloseCode   int // the WebSocket close code; 0 for none
	CloseReason CloseReason
}

// Duration is how long the connection was attached: zero until it closed.
func (d *ConnDetail) Duration() time.Duration {
	if d.ClosedAt.IsZero() {
		return 0
	}
	return d.ClosedAt.Sub(d.OpenedAt)
}

// connDetailJSON is ConnDetail on the wire.
type connDetailJSON struct {
	Kind        string      `json:"kind"`
	Node        string      `json:"node,omitempty"`
	ClientIP    string      `json:"client_ip,omitempty"`
	UserAgent   string      `json:"user_agent,omitempty"`
	OpenedAt    time.Time   `json:"opened_at"`
	ClosedAt    *time.Time  `json:"closed_at,omitempty"`
	DurationMS  *int64      `json:"duration_ms,omitempty"`
	CloseCode   *int        `json:"close_code,omitempty"`
	CloseReason CloseReason `json:"close_reason,omitempty"`
}

// MarshalJSON writes the detail with its duration, and close_code (0 for
// none) and closed_at on a closed connection only.
func (d ConnDetail) MarshalJSON() ([]byte, error) {
	j := connDetailJSON{Kind: d.Kind, Node: d.Node, ClientIP: d.ClientIP, UserAgent: d.UserAgent, OpenedAt: d.OpenedAt, CloseReason: d.CloseReason}
	if !d.ClosedAt.IsZero() {
		closed, ms, code := d.ClosedAt, d.Duration().Milliseconds(), d.CloseCode
		j.ClosedAt, j.DurationMS, j.CloseCode = &closed, &ms, &code
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes (duration_ms follows from
// the times).
func (d *ConnDetail) UnmarshalJSON(b []byte) error {
	var j connDetailJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*d = ConnDetail{Kind: j.Kind, Node: j.Node, ClientIP: j.ClientIP, UserAgent: j.UserAgent, OpenedAt: j.OpenedAt, CloseReason: j.CloseReason}
	if j.ClosedAt != nil {
		d.ClosedAt = *j.ClosedAt
	}
	if j.CloseCode != nil {
		d.CloseCode = *j.CloseCode
	}
	return nil
}

// detail is what an event records of c as it attached.
func (c *Connection) detail() *ConnDetail {
	return &ConnDetail{Kind: c.Kind, Node: c.Node, ClientIP: c.ClientIP, UserAgent: c.UserAgent, OpenedAt: c.ConnectedAt.UTC()}
}

// attachedEvent is the connected or resumed event of c attaching to s.
func attachedEvent(t EventType, s *Session, c *Connection, now time.Time) Event {
	ev := newEvent(t, s, now)
	ev.Connection, ev.Conn = c.ID, c.detail()
	return ev
}

// closedEvent is the connection_closed event of c leaving s (as it is
// after the change that drops c).
func closedEvent(s *Session, c *Connection, why CloseCause, now time.Time) Event {
	ev := newEvent(EventConnectionClosed, s, now)
	ev.Connection, ev.Conn = c.ID, c.detail()
	ev.Conn.ClosedAt, ev.Conn.CloseCode, ev.Conn.CloseReason = now.UTC(), why.Code, why.Reason
	return ev
}

// closedEvents are the connection_closed events of conns, all leaving s
// for one cause.
func closedEvents(s *Session, conns []Connection, why CloseCause, now time.Time) []Event {
	evs := make([]Event, 0, len(conns))
	for i := range conns {
		evs = append(evs, closedEvent(s, &conns[i], why, now))
	}
	return evs
}
