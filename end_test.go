package sessiond_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessiond/sessiond"
)

// TestHungDisposersDoNotStallDeadlines: sessions whose resources hang until
// their dispose deadline are disposed of on the disposal workers; the
// deadlines of every other session fire on time meanwhile. (When disposal
// ran on the deadline workers, eight hung disposers stalled every deadline
// of the process for the dispose timeout.)
func TestHungDisposersDoNotStallDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, sessiond.Config{Workers: 8, DisposeTimeout: 30 * time.Second})
		stuck := make(chan struct{})
		defer close(stuck)
		for range 32 {
			c := e.create("hung")
			if _, err := e.m.Attach(t.Context(), c.Session.ID, "hangs", sessiond.ResourceFunc(func(context.Context) error {
				<-stuck // ignores its deadline
				return nil
			})); err != nil {
				t.Fatal(err)
			}
		}
		// All 32 idle out at 10m; a plain session created a second later
		// idles out at 10m1s.
		time.Sleep(time.Second)
		plain := e.create("plain")
		time.Sleep(10*time.Minute + time.Millisecond)
		synctest.Wait()
		if s := e.session(plain.Session.ID); s.State != sessiond.StateEnded || !s.EndedAt.Equal(plain.Session.CreatedAt.Add(10*time.Minute)) {
			t.Fatalf("plain session: %v ended at %v; want ended at its idle deadline %v while 32 disposals hang",
				s.State, s.EndedAt, plain.Session.CreatedAt.Add(10*time.Minute))
		}
		// The hung ones are ending until their disposers' deadline, then ended.
		time.Sleep(30 * time.Second * 2) // two rounds of 16 workers
		synctest.Wait()
		st, err := e.m.Stats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if st.Sessions[sessiond.StateEnded] != 33 {
			t.Fatalf("after the dispose deadlines: %v; want all 33 ended", st.Sessions)
		}
	})
}

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
