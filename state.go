package sessiond

import "fmt"

// State is where a session is in its life.
//
//	create ──► active ◄────────── resumed (connection within grace) ──┐
//	             │ last live connection lost                           │
//	             ▼                                                     │
//	        disconnected ──────────────────────────────────────────────┘
//	             │ hibernate_after elapsed          │ grace elapsed, no hibernation
//	             ▼                                  ▼
//	 hibernating ─► hibernated ─(connection)─► waking ─► active
//	             │                                  │
//	             └──────────────► ending ─► ended
//
// Every transition is a compare-and-set on the session's version: of two
// racing transitions exactly one wins and the loser re-reads. Ending is
// idempotent.
type State uint8

const (
	// StateActive is a session that can be used. The zero State is not valid.
	StateActive State = iota + 1
	// StateDisconnected is a session whose last live connection was lost; it
	// resumes if a connection attaches within the policy's disconnect grace.
	StateDisconnected
	// StateHibernating is a session being put to sleep.
	StateHibernating
	// StateHibernated is a sleeping session; a connection wakes it.
	StateHibernated
	// StateWaking is a hibernated session being woken.
	StateWaking
	// StateEnding is a session whose end has been decided and whose resources
	// are being disposed. It is no longer valid.
	StateEnding
	// StateEnded is a finished session, kept readable for the retention period.
	StateEnded
)

var stateNames = [...]string{
	StateActive:       "active",
	StateDisconnected: "disconnected",
	StateHibernating:  "hibernating",
	StateHibernated:   "hibernated",
	StateWaking:       "waking",
	StateEnding:       "ending",
	StateEnded:        "ended",
}

// States lists every valid state, in lifecycle order.
var States = []State{StateActive, StateDisconnected, StateHibernating, StateHibernated, StateWaking, StateEnding, StateEnded}

func (s State) String() string {
	if s >= StateActive && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Valid reports whether s is one of the defined states.
func (s State) Valid() bool { return s >= StateActive && s <= StateEnded }

// Live reports whether a session in state s still counts: it is not ending or
// ended. Live sessions count towards a subject's limit and appear in its index.
func (s State) Live() bool { return s.Valid() && s < StateEnding }

// ParseState returns the state named name.
func ParseState(name string) (State, error) {
	for _, s := range States {
		if stateNames[s] == name {
			return s, nil
		}
	}
	return 0, Errorf(CodeInvalidArgument, "state", "unknown state %q", name)
}

// MarshalText implements encoding.TextMarshaler.
func (s State) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("sessiond: invalid state %d", uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *State) UnmarshalText(b []byte) error {
	v, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// EndReason says why a session ended.
type EndReason string

// End reasons. The set is closed: stores and clients may rely on it.
const (
	EndExpired      EndReason = "expired"       // absolute lifetime (ttl) reached
	EndIdle         EndReason = "idle"          // no activity for idle_timeout
	EndGraceElapsed EndReason = "grace_elapsed" // no reconnect within disconnect_grace
	EndRevoked      EndReason = "revoked"       // revoked by a caller
	EndRotatedReuse EndReason = "rotated_reuse" // a rotated-out token was used after its grace: theft
	EndEvicted      EndReason = "evicted"       // pushed out by a newer session over max_per_subject
	EndShutdown     EndReason = "shutdown"      // ended because the server stopped for good
)

// EndReasons lists every end reason.
var EndReasons = []EndReason{EndExpired, EndIdle, EndGraceElapsed, EndRevoked, EndRotatedReuse, EndEvicted, EndShutdown}

// Valid reports whether r is a defined end reason.
func (r EndReason) Valid() bool {
	for _, v := range EndReasons {
		if r == v {
			return true
		}
	}
	return false
}

// expiry reports whether the reason is a timeout rather than a decision.
func (r EndReason) expiry() bool { return r == EndExpired || r == EndIdle }

// deadline reports whether the reason is a deadline passing.
func (r EndReason) deadline() bool { return r.expiry() || r == EndGraceElapsed }
