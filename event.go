package sessiond

import "time"

// EventType names a lifecycle transition.
type EventType string

// Event types. One event is recorded per state transition, in the same atomic
// store write as the transition itself, so each is recorded exactly once.
const (
	EventCreated      EventType = "created"
	EventRotated      EventType = "rotated"
	EventConnected    EventType = "connected"
	EventDisconnected EventType = "disconnected"
	EventResumed      EventType = "resumed"
	EventHibernating  EventType = "hibernating"
	EventHibernated   EventType = "hibernated"
	EventWaking       EventType = "waking"
	EventWoke         EventType = "woke"
	// EventHibernateFailed: the runtime failed to hibernate the session,
	// which is active again (and hibernates again hibernate_after later).
	EventHibernateFailed EventType = "hibernate_failed"
	// EventWakeFailed: the runtime failed to wake the session, which is
	// hibernated again; the connections that waited for it were closed.
	EventWakeFailed EventType = "wake_failed"
	EventEnding     EventType = "ending"
	EventEnded      EventType = "ended"

	// EventConnectionClosed: a connection left the session (Event.Conn
	// says when and why). Every connection gets exactly one, whatever
	// dropped it (connevent.go); disconnected, which may come with it,
	// is the session's state.
	EventConnectionClosed EventType = "connection_closed"
)

// EventTypes lists every event type, in the order of the constants above
// (a test holds it to them): what a configuration may name.
var EventTypes = []EventType{
	EventCreated, EventRotated, EventConnected, EventDisconnected, EventResumed,
	EventHibernating, EventHibernated, EventWaking, EventWoke, EventHibernateFailed,
	EventWakeFailed, EventEnding, EventEnded, EventConnectionClosed,
}

// Event records one transition of one session.
type Event struct {
	// Partition and Seq are assigned by the store when the event is
	// recorded: the partition of its session (always 0 in a store of one
	// partition), and the event's number in that partition's log, strictly
	// increasing, without gaps, in commit order. Events of one session are
	// in Seq order. A Cursor holds positions in the logs.
	Partition  int       `json:"partition,omitempty"`
	Seq        uint64    `json:"seq"`
	Type       EventType `json:"type"`
	SessionID  string    `json:"session_id"`
	Subject    string    `json:"subject"`
	Time       time.Time `json:"time"`
	State      State     `json:"state,omitzero"`   // state after the transition
	Reason     EndReason `json:"reason,omitempty"` // for ending and ended (and connection_closed as its session ends)
	Version    uint64    `json:"version"`          // session version after the transition
	Generation uint64    `json:"generation"`
	// Connection is the connection that caused a connected, resumed,
	// connection_closed or disconnected event.
	Connection string `json:"connection,omitempty"`
	// Replaced lists connections closed because this one replaced them.
	Replaced []string `json:"replaced,omitempty"`
	// Conn describes the connection of a connected, resumed or
	// connection_closed event; nil on other events (and on events
	// recorded before connections were described).
	Conn *ConnDetail `json:"conn,omitempty"`
}

func newEvent(t EventType, s *Session, now time.Time) Event {
	return Event{
		Type: t, SessionID: s.ID, Subject: s.Subject, Time: now.UTC(),
		State: s.State, Reason: s.EndReason, Version: s.Version, Generation: s.Generation,
	}
}

// Ending returns s moved to StateEnding with the reason, one version on, and
// the events that record it: ending, then connection_closed
// (session_ended) for each of conns, the connections s loses. It is the
// transition a Store applies to the sessions it evicts in Create (see
// Store.Create), exported so that every store applies it the same way.
func Ending(s *Session, conns []Connection, reason EndReason, now time.Time) (*Session, []Event) {
	n := s.Clone()
	n.State = StateEnding
	n.EndReason = reason
	n.EndedAt, n.StateSince = now, now
	n.ConnCount = 0 // a session leaving the live states loses its connections
	n.Version++
	return n, append([]Event{newEvent(EventEnding, n, now)}, closedEvents(n, conns, CloseCause{Reason: ClosedSessionEnded}, now)...)
}
