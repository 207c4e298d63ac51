package sessiond

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
	"time"
)

// Connection is one live attachment to a session: a WebSocket held by a
// node, or another kind (HTTP, VNC, ...) registered over REST and kept alive
// by heartbeats. Connections are records of their own, written in the
// same atomic step as their session (Change.PutConns, DropConns), so
// attaching and detaching them are compare-and-set transitions like any
// other, and cost the same whatever the session holds.
type Connection struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`           // "websocket", "http", "vnc", any name
	Node        string    `json:"node,omitempty"` // node holding it (WebSocket connections)
	ClientIP    string    `json:"client_ip,omitempty"`
	UserAgent   string    `json:"user_agent,omitempty"`
	ConnectedAt time.Time `json:"connected_at"`
	// LastHeartbeat is when the connection was last heard from, as stored:
	// it is written at most once per the policy's touch interval, so it may
	// lag the node's own view by that much.
	LastHeartbeat time.Time `json:"last_heartbeat_at"`
}

// KindWebSocket is the kind of connections held by the WebSocket edge.
const KindWebSocket = "websocket"

// ConnectAction says what a new connection does to a session's others.
type ConnectAction string

// Connect actions.
const (
	ConnectAllowMultiple ConnectAction = "allow_multiple" // keep the others (up to max_connections)
	ConnectReplace       ConnectAction = "replace"        // the others are closed as replaced
)

const maxKindLen = 64

// Connection ids are "<16 random base32 chars>.<session id>", so that a
// connection id alone finds its session.
var connEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func newConnID(sessionID string) string {
	var b [10]byte
	rand.Read(b[:])
	return connEncoding.EncodeToString(b[:]) + "." + sessionID
}

// ConnectionSession returns the session id a connection id belongs to.
func ConnectionSession(connID string) (string, error) {
	_, sid, ok := strings.Cut(connID, ".")
	if !ok || len(connID)-len(sid) != 17 || !ValidID(sid) {
		return "", Errorf(CodeInvalidArgument, "connection", "not a connection id")
	}
	return sid, nil
}
