package wire

import (
	"time"

	"github.com/sessiond/sessiond"
)

// The WebSocket messages (docs/protocol.md, "Messages"). Every message is a
// JSON object with a "type"; these are the types.
const (
	// From the server.
	TypeConnected = "connected" // Connected: the first message, the ack
	TypeReady     = "ready"     // Ready: a waking session is awake (after an ack with state "waking")
	TypeRefresh   = "refresh"   // Refresh: send a new credential (also the client's answer)
	TypeRefreshed = "refreshed" // Refreshed: a new credential was accepted
	TypePong      = "pong"      // Envelope: the answer to a ping
	TypeError     = "error"     // Error: a message was refused

	// From the client (ClientMessage), besides TypeRefresh.
	TypePing   = "ping"
	TypeAttach = "attach"
)

// Codes of the error message, besides sessiond.CodeUnauthorized (a refresh
// whose credential was refused).
const (
	CodeInvalidMessage sessiond.Code = "invalid_message" // not a JSON object with a string type
	CodeUnknownType    sessiond.Code = "unknown_type"    // a type the server does not know
)

// Envelope is what every message has: its type. Decode a message into it
// to learn which one it is. The pong is only this.
type Envelope struct {
	Type string `json:"type"`
}

// Connected is the server's first message on a connection: it is attached
// to its session.
type Connected struct {
	Type         string `json:"type"` // TypeConnected
	SessionID    string `json:"session_id"`
	ConnectionID string `json:"connection_id"`
	// Resumed is true when the session existed before this connection.
	Resumed bool `json:"resumed"`
	// State is the session's state: "active", or "waking" when this
	// connection woke a hibernated session: a Ready message follows once
	// its runtime woke it (or the socket closes with CloseWakeFailed).
	State               string `json:"state"`
	HeartbeatIntervalMS int64  `json:"heartbeat_interval_ms"`
	HeartbeatTimeoutMS  int64  `json:"heartbeat_timeout_ms"`
	// ExpiresAt is the credential's (the JWT's) expiry; zero, and left
	// out, if it has none.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// SessionToken is set only when the server issued a token with this
	// connection (the session was created now, or its token rotated); it
	// is shown once.
	SessionToken string `json:"session_token,omitempty"`
}

// Ready tells a connection whose ack said "waking" that its session is
// awake: its runtime answered the wake.
type Ready struct {
	Type  string `json:"type"`  // TypeReady
	State string `json:"state"` // the session's state now: "active"
}

// Refresh is the server asking for a new credential before ExpiresAt, when
// the connection is closed with CloseCredentialExpired.
type Refresh struct {
	Type      string    `json:"type"` // TypeRefresh
	ExpiresAt time.Time `json:"expires_at"`
}

// Refreshed is the server's answer to a refresh whose credential it
// accepted.
type Refreshed struct {
	Type string `json:"type"` // TypeRefreshed
	// ExpiresAt is the new credential's expiry; zero, and left out, if it
	// has none.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Error is a message the server refused; the connection stays open.
type Error struct {
	Type    string        `json:"type"` // TypeError
	Code    sessiond.Code `json:"code"` // CodeInvalidMessage, CodeUnknownType, sessiond.CodeUnauthorized
	Message string        `json:"message"`
	// Re is the type of the message this answers, if it had one.
	Re string `json:"re,omitempty"`
}

// ClientMessage is any message of the client: a ping ({"type":"ping"}), a
// refresh with a new credential in Token, or an attach with the session's
// token in SessionToken (only as the first message of a connection opened
// with ?attach=message).
type ClientMessage struct {
	Type         string `json:"type"` // TypePing, TypeRefresh, TypeAttach
	Token        string `json:"token,omitempty"`
	SessionToken string `json:"session_token,omitempty"`
}
