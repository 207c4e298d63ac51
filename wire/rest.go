package wire

import (
	"encoding/json"
	"time"

	"github.com/sessiond/sessiond"
)

// The bodies of the REST API (docs/openapi.yaml).

// CreateRequest is the body of POST /v1/sessions. TTL and IdleTimeout are
// Go durations ("90s", "1h30m") that override the policy's.
type CreateRequest struct {
	ID          string           `json:"id,omitempty"`
	Subject     string           `json:"subject"`
	Device      *sessiond.Device `json:"device,omitempty"`
	Metadata    json.RawMessage  `json:"metadata,omitempty"`
	Policy      string           `json:"policy,omitempty"`
	TTL         string           `json:"ttl,omitempty"`
	IdleTimeout string           `json:"idle_timeout,omitempty"`
}

// CreateResponse is the body of a 201 from POST /v1/sessions.
type CreateResponse struct {
	ID      string            `json:"id"`
	Token   string            `json:"token"`
	Session *sessiond.Session `json:"session"`
	Evicted []string          `json:"evicted,omitempty"`
}

// ValidateRequest is the body of POST /v1/sessions/validate.
type ValidateRequest struct {
	Token  string           `json:"token"`
	Device *sessiond.Device `json:"device,omitempty"`
	// Wake, for a hibernated session, begins waking it: the session
	// returned is then "waking". Without it a validation of a hibernated
	// session returns it as it is and changes nothing.
	Wake bool `json:"wake,omitempty"`
}

// ValidateResponse is the body of a 200 from validate and rotate. Token is
// set when the call issued a new token; the client must use it from now on.
type ValidateResponse struct {
	Session *sessiond.Session `json:"session"`
	Token   string            `json:"token,omitempty"`
}

// AppendJSON encodes the response as encoding/json would, directly: it is
// the answer to every validation.
func (r ValidateResponse) AppendJSON(b []byte) []byte {
	b = append(b, `{"session":`...)
	b = r.Session.AppendJSON(b)
	if r.Token != "" { // tokens are base64url: nothing to escape
		b = append(b, `,"token":"`...)
		b = append(b, r.Token...)
		b = append(b, '"')
	}
	return append(b, '}')
}

// ListResponse is the body of session lists.
type ListResponse struct {
	Sessions   []*sessiond.Session `json:"sessions"`
	NextCursor string              `json:"next_cursor,omitempty"`
}

// HistoryResponse is the body of GET /v1/sessions/{id}/history and GET
// /v1/subjects/{subject}/history: past events, oldest first.
type HistoryResponse struct {
	Events     []sessiond.Event `json:"events"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

// RevokeSubjectResponse is the body of DELETE /v1/subjects/{subject}/sessions.
type RevokeSubjectResponse struct {
	Revoked int `json:"revoked"`
}

// StatsResponse is the body of GET /v1/stats.
type StatsResponse struct {
	Sessions    map[string]int  `json:"sessions"` // by state
	Total       int             `json:"total"`
	Subjects    int             `json:"subjects"` // with a live session
	Connections ConnectionStats `json:"connections"`
	Scheduled   int             `json:"scheduled"` // deadlines held by this node
	Uptime      string          `json:"uptime"`
	Version     string          `json:"version"`
	// WebSocket holds this node's WebSocket counts when the edge is on.
	WebSocket *WebSocketStats `json:"websocket,omitempty"`
}

// NodesResponse is the body of GET /v1/nodes.
type NodesResponse struct {
	Nodes []Node `json:"nodes"`
}

// Node is one node sharing the store: its lease, and the WebSocket
// connections it holds, counted up to 1000 (ConnectionsMore: more).
type Node struct {
	Node            string     `json:"node"`
	Until           *time.Time `json:"until,omitempty"` // the lease's end; absent for a node holding connections without a lease
	Dead            bool       `json:"dead"`            // its lease was claimed: another node is releasing its connections
	Self            bool       `json:"self"`            // the node that answered
	Connections     int        `json:"connections"`
	ConnectionsMore bool       `json:"connections_more"`
}

// ConnectionStats count the live sessions' connections.
type ConnectionStats struct {
	Total  int            `json:"total"`
	ByKind map[string]int `json:"by_kind"`
}

// WebSocketStats are one node's WebSocket counts since it started.
type WebSocketStats struct {
	Open              int            `json:"open"`               // connections open now
	Connects          int64          `json:"connects"`           // attached since start
	Created           int64          `json:"created"`            // of which created their session
	Resumed           int64          `json:"resumed"`            // of which resumed a disconnected session
	Refused           int64          `json:"refused"`            // attempts refused (credential, session, connection limits)
	RefusedRate       int64          `json:"refused_rate"`       // attempts refused by a connect rate limit (429)
	RefusedFull       int64          `json:"refused_full"`       // attempts refused because this node held its most sockets (503)
	HeartbeatTimeouts int64          `json:"heartbeat_timeouts"` // connections lost for silence
	ClientClosed      int64          `json:"client_closed"`      // closed by the client or the network
	Messages          int64          `json:"messages"`           // messages received
	Pongs             int64          `json:"pongs"`              // answers to the server's pings
	UnknownMessages   int64          `json:"unknown_messages"`
	DetachesPending   int            `json:"detaches_pending"` // failed detaches waiting to be retried
	Reconciled        int64          `json:"reconciled"`       // records detached or sockets closed by a reconcile
	CloseCodes        map[string]int `json:"close_codes"`      // close codes sent, by code
}

// ConnectionRequest is the body of POST /v1/sessions/{id}/connections.
type ConnectionRequest struct {
	Kind      string `json:"kind"`
	ClientIP  string `json:"client_ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

// ConnectionResponse is the body of a 201 from POST
// /v1/sessions/{id}/connections and of a 200 from a heartbeat.
type ConnectionResponse struct {
	Connection sessiond.Connection `json:"connection"`
	// State is the session's: "waking" while the runtime wakes the
	// hibernated session this connection woke, "active" once it is awake.
	State sessiond.State `json:"state"`
	// HeartbeatInterval is how often to send heartbeats; the connection is
	// lost after HeartbeatTimeout without one.
	HeartbeatInterval string `json:"heartbeat_interval"`
	HeartbeatTimeout  string `json:"heartbeat_timeout"`
}

// ConnectionsResponse is the body of GET /v1/sessions/{id}/connections.
type ConnectionsResponse struct {
	Connections []sessiond.Connection `json:"connections"`
}

// Check is the state of one part of a running server, for /readyz.
type Check struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// ReadyResponse is the body of a 200 from /readyz.
type ReadyResponse struct {
	Status string           `json:"status"` // ready, or degraded while a check is not ok
	Checks map[string]Check `json:"checks,omitempty"`
}
