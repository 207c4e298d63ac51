package sessiond

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"slices"
	"time"
	"unicode/utf8"
)

// Session is a server-side session owned by one subject.
//
// A Session value returned by a Store or a Manager is a snapshot: changing it
// changes nothing stored. Sessions read from a Store may be shared with other
// readers and must not be modified; use Clone to get a private copy.
type Session struct {
	ID       string          // public id: safe to list and to use in admin calls
	Subject  string          // the principal that owns the session
	Device   Device          // what the session is bound to
	Metadata json.RawMessage // application JSON object, size-limited; nil if none
	Policy   string          // name of the policy chosen at create

	State     State
	EndReason EndReason // set once the session is ending or ended

	CreatedAt   time.Time
	LastActive  time.Time     // moved by activity, written at most once per touch_interval
	ExpiresAt   time.Time     // absolute end of life; never slides; zero if the policy has no ttl
	IdleTimeout time.Duration // effective idle timeout (policy or a smaller override); 0 is off
	RotatedAt   time.Time     // when the current token was issued by a rotation; zero before any
	EndedAt     time.Time     // when the session began ending
	// DisconnectedAt is when the session lost its last live connection and
	// entered StateDisconnected; zero in other states.
	DisconnectedAt time.Time
	// StateSince is when the session entered its State.
	StateSince time.Time
	// Cycle counts the session's hibernations. The hibernate and the wake
	// of one cycle carry it in their runtime calls' idempotency key
	// (RuntimeCall.Key), so that a retried call, on any node, is
	// recognised as the same one.
	Cycle uint64

	// ConnCount is the number of the session's live connections, set by
	// the store from their records (Store.Conns lists them).
	ConnCount int

	Version    uint64 // incremented by every stored change; compare-and-set key
	Generation uint64 // number of token rotations

	// TokenHash is the SHA-256 of the current token. The token itself is never
	// stored.
	TokenHash TokenHash
	// PrevTokenHash is the hash of the token the last rotation replaced, or
	// zero. It validates until PrevTokenUntil; a use after that is theft.
	PrevTokenHash  TokenHash
	PrevTokenUntil time.Time
	// RetiredTokens are the hashes of the tokens rotated out before the
	// previous one, newest first, at most MaxRetiredTokens: the token
	// family kept to recognise theft. Using any of them ends the session.
	RetiredTokens []TokenHash
}

// MaxRetiredTokens bounds a session's token family: besides its current
// and previous token, the hashes of this many older rotated-out tokens are
// kept (32 bytes each), so that replaying any token of the last
// MaxRetiredTokens+1 rotations is recognised as theft. Older ones are
// forgotten and answer as unknown tokens.
const MaxRetiredTokens = 16

// Device describes what a session is bound to, as reported by the caller.
type Device struct {
	ID        string `json:"id,omitempty"`
	Type      string `json:"type,omitempty"`
	Name      string `json:"name,omitempty"`
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

// Clone returns a copy of s that shares nothing mutable with it.
func (s *Session) Clone() *Session {
	c := *s
	if s.Metadata != nil {
		c.Metadata = bytes.Clone(s.Metadata)
	}
	if s.RetiredTokens != nil {
		c.RetiredTokens = slices.Clone(s.RetiredTokens)
	}
	return &c
}

// Limits on caller-supplied fields.
const (
	MaxIDLen        = 128
	MaxSubjectLen   = 256
	maxDeviceField  = 256
	maxUserAgentLen = 1024
	// DefaultMaxMetadata is the metadata size limit when none is configured.
	DefaultMaxMetadata = 8 << 10
)

// ValidID reports whether id can name a session: 1 to 128 characters from
// A-Z a-z 0-9 and . _ - : ~
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == '-', c == ':', c == '~':
		default:
			return false
		}
	}
	return true
}

func checkID(field, id string) error {
	if !ValidID(id) {
		return Errorf(CodeInvalidArgument, field, "must be 1 to %d characters of A-Z a-z 0-9 . _ - : ~", MaxIDLen)
	}
	return nil
}

func checkText(field, v string, max int, required bool) error {
	switch {
	case v == "" && required:
		return Errorf(CodeInvalidArgument, field, "is required")
	case len(v) > max:
		return Errorf(CodeInvalidArgument, field, "is longer than %d bytes", max)
	case !utf8.ValidString(v):
		return Errorf(CodeInvalidArgument, field, "is not valid UTF-8")
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return Errorf(CodeInvalidArgument, field, "contains control characters")
		}
	}
	return nil
}

func checkSubject(subject string) error { return checkText("subject", subject, MaxSubjectLen, true) }

// Validate checks the device fields' sizes and the IP's syntax.
func (d Device) Validate() error {
	if err := checkText("device.id", d.ID, maxDeviceField, false); err != nil {
		return err
	}
	if err := checkText("device.type", d.Type, maxDeviceField, false); err != nil {
		return err
	}
	if err := checkText("device.name", d.Name, maxDeviceField, false); err != nil {
		return err
	}
	if err := checkText("device.user_agent", d.UserAgent, maxUserAgentLen, false); err != nil {
		return err
	}
	if d.IP != "" {
		if _, err := netip.ParseAddr(d.IP); err != nil {
			return Errorf(CodeInvalidArgument, "device.ip", "is not an IP address")
		}
	}
	return nil
}

// normalizeMetadata checks that m is a JSON object of at most max bytes and
// returns it compacted. Empty input gives nil.
func normalizeMetadata(m json.RawMessage, max int) (json.RawMessage, error) {
	if len(m) == 0 || string(m) == "null" {
		return nil, nil
	}
	if len(m) > max {
		return nil, Errorf(CodeInvalidArgument, "metadata", "is larger than %d bytes", max)
	}
	if !utf8.Valid(m) {
		return nil, Errorf(CodeInvalidArgument, "metadata", "is not valid UTF-8")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, m); err != nil {
		return nil, Errorf(CodeInvalidArgument, "metadata", "is not valid JSON")
	}
	if buf.Len() == 0 || buf.Bytes()[0] != '{' {
		return nil, Errorf(CodeInvalidArgument, "metadata", "must be a JSON object")
	}
	return buf.Bytes(), nil
}

// sessionJSON is the wire form of a Session. Token hashes never leave the
// process this way.
type sessionJSON struct {
	ID          string          `json:"id"`
	Subject     string          `json:"subject"`
	Device      *Device         `json:"device,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	Policy      string          `json:"policy"`
	State       State           `json:"state"`
	EndReason   EndReason       `json:"end_reason,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	LastActive  time.Time       `json:"last_active_at"`
	ExpiresAt   *time.Time      `json:"expires_at,omitempty"`
	IdleTimeout string          `json:"idle_timeout,omitempty"`
	RotatedAt   *time.Time      `json:"rotated_at,omitempty"`
	EndedAt     *time.Time      `json:"ended_at,omitempty"`
	Disconn     *time.Time      `json:"disconnected_at,omitempty"`
	StateSince  *time.Time      `json:"state_since,omitempty"`
	Connections int             `json:"connections,omitempty"`
	Cycle       uint64          `json:"hibernations,omitempty"`
	Version     uint64          `json:"version"`
	Generation  uint64          `json:"generation"`
}

// MarshalJSON encodes the session without its token hashes. Durations are Go
// duration strings ("30m0s"), times RFC 3339 in UTC. See AppendJSON.
func (s *Session) MarshalJSON() ([]byte, error) { return s.AppendJSON(nil), nil }

// UnmarshalJSON decodes the form MarshalJSON writes. Token hashes stay zero.
func (s *Session) UnmarshalJSON(b []byte) error {
	var j sessionJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = Session{
		ID: j.ID, Subject: j.Subject, Metadata: j.Metadata, Policy: j.Policy,
		State: j.State, EndReason: j.EndReason, CreatedAt: j.CreatedAt, LastActive: j.LastActive,
		Version: j.Version, Generation: j.Generation, ConnCount: j.Connections, Cycle: j.Cycle,
	}
	if j.Device != nil {
		s.Device = *j.Device
	}
	for _, p := range []struct {
		dst *time.Time
		src *time.Time
	}{{&s.ExpiresAt, j.ExpiresAt}, {&s.RotatedAt, j.RotatedAt}, {&s.EndedAt, j.EndedAt}, {&s.DisconnectedAt, j.Disconn}, {&s.StateSince, j.StateSince}} {
		if p.src != nil {
			*p.dst = *p.src
		}
	}
	if j.IdleTimeout != "" {
		d, err := time.ParseDuration(j.IdleTimeout)
		if err != nil {
			return err
		}
		s.IdleTimeout = d
	}
	return nil
}
