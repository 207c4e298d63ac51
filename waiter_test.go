package sessiond

import "testing"

// A waiter's outcome is the earliest outcome event after the version its
// transition began at, whatever order the events came in: this node's
// writes and the log deliver them separately, and each may repeat.
func TestWaiterOutcomeIsTheEarliestAfterTheTransition(t *testing.T) {
	var ws stateWaiters
	w := ws.add("s1")
	ev := func(typ EventType, v uint64) Event { return Event{Type: typ, SessionID: "s1", Version: v} }
	if got := w.outcome(10); got != "" {
		t.Fatalf("nothing seen: %q", got)
	}
	ws.notify("s1", ev(EventWoke, 9))                                                // an earlier cycle's
	ws.notify("s1", ev(EventWaking, 12), ev(EventWoke, 13))                          // this node's write of the next transition
	ws.notify("s1", ev(EventHibernated, 11))                                         // another node's, from the log, later
	ws.notify("s2", Event{Type: EventHibernateFailed, SessionID: "s2", Version: 11}) // another session
	if got := w.outcome(10); got != EventHibernated {
		t.Fatalf("outcome after version 10: %q, want hibernated", got)
	}
	if got := w.outcome(11); got != EventWoke {
		t.Fatalf("outcome after version 11: %q, want woke", got)
	}
	ws.remove("s1", w)
	if ws.any() {
		t.Fatal("a removed waiter still counted")
	}
}
