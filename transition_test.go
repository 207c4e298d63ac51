package sessiond_test

import (
	"testing"

	"github.com/sessiond/sessiond"
)

// TestTransitionTable pins the state machine's table.
func TestTransitionTable(t *testing.T) {
	for _, tc := range []struct {
		from, to sessiond.State
		ok       bool
	}{
		{sessiond.StateActive, sessiond.StateActive, true},
		{sessiond.StateActive, sessiond.StateDisconnected, true},
		{sessiond.StateActive, sessiond.StateEnded, true},
		{sessiond.StateDisconnected, sessiond.StateActive, true},
		{sessiond.StateHibernated, sessiond.StateWaking, true},
		{sessiond.StateWaking, sessiond.StateActive, true},
		{sessiond.StateEnding, sessiond.StateEnded, true},
		{sessiond.StateEnding, sessiond.StateActive, false},
		{sessiond.StateEnded, sessiond.StateActive, false},
		{sessiond.StateEnded, sessiond.StateEnded, false},
		{sessiond.StateActive, sessiond.StateHibernated, false},
		{sessiond.StateHibernated, sessiond.StateActive, false},
		{sessiond.StateActive, sessiond.State(0), false},
	} {
		if got := sessiond.CanTransition(tc.from, tc.to); got != tc.ok {
			t.Errorf("CanTransition(%v, %v) = %v, want %v", tc.from, tc.to, got, tc.ok)
		}
	}
}
