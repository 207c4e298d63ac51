package sessiondtest

import (
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessiond/sessiond"
)

func testDeadlinesFireWithoutReads(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		p := web()
		p.RotateAfter, p.RotationGrace = 0, 0
		e := start(t, h, sessiond.Config{Policies: []sessiond.Policy{p}, Retention: time.Hour})
		idle := e.create("alice")
		busy := e.create("bob")
		for range 8 { // bob stays active for 56 minutes
			time.Sleep(7 * time.Minute)
			if _, err := e.validate(busy.Token); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		// Read the store directly: no engine read has checked alice since.
		s, _ := e.store.Get(t.Context(), idle.Session.ID)
		if s.State != sessiond.StateEnded || s.EndReason != sessiond.EndIdle {
			t.Fatalf("idle session is %v/%v after its idle timeout", s.State, s.EndReason)
		}
		if want := s.LastActive.Add(10 * time.Minute); !s.EndedAt.Equal(want) {
			t.Fatalf("idle timer fired at %v, want %v", s.EndedAt, want)
		}
		time.Sleep(5 * time.Minute) // past bob's ttl
		synctest.Wait()
		s, _ = e.store.Get(t.Context(), busy.Session.ID)
		if s.State != sessiond.StateEnded || s.EndReason != sessiond.EndExpired || !s.EndedAt.Equal(s.ExpiresAt) {
			t.Fatalf("expired session: %v/%v at %v (expires %v)", s.State, s.EndReason, s.EndedAt, s.ExpiresAt)
		}
		// Ended sessions are purged after the retention.
		time.Sleep(time.Hour)
		synctest.Wait()
		if _, err := e.store.Get(t.Context(), idle.Session.ID); !errors.Is(err, sessiond.ErrNotFound) {
			t.Fatalf("ended session not purged after retention: %v", err)
		}
		if st, _ := e.m.Stats(t.Context()); st.Total != 0 || st.Scheduled != 0 {
			t.Fatalf("after purge: %+v", st)
		}
	})
}

func testPastDeadlineNeverValid(t *testing.T, h Harness) {
	clock := NewManualClock(clockStart)
	e := start(t, h, sessiond.Config{Clock: clock})
	c := e.create("alice")
	other := e.create("alice")
	clock.Jump(10 * time.Minute) // idle timeout reached; timers have not fired
	if s, _ := e.store.Get(t.Context(), c.Session.ID); s.State != sessiond.StateActive {
		t.Fatal("test is broken: the timer already ended the session")
	}
	_, err := e.validate(c.Token)
	wantCode(t, err, sessiond.CodeExpired)
	s, err := e.m.Get(t.Context(), other.Session.ID)
	if err != nil || s.State != sessiond.StateEnded || s.EndReason != sessiond.EndIdle {
		t.Fatalf("Get past deadline = %v/%v, %v", s.State, s.EndReason, err)
	}
	if live, _ := e.m.ListBySubject(t.Context(), "alice"); len(live) != 0 {
		t.Fatalf("ListBySubject returned %d sessions past their deadline", len(live))
	}
	page, _ := e.m.List(t.Context(), sessiond.Query{State: sessiond.StateActive})
	if len(page.Sessions) != 0 {
		t.Fatalf("List(active) returned sessions past their deadline")
	}
}

func testRestartRebuildsDeadlines(t *testing.T, h Harness) {
	clock := NewManualClock(clockStart)
	store := openStore(t, h)
	fixed := sessiond.Policy{Name: "fixed", TTL: time.Hour}
	policies := []sessiond.Policy{web(), fixed}
	first := start(t, h, sessiond.Config{Clock: clock, Store: store, Policies: policies})
	expiring, err := first.m.Create(t.Context(), sessiond.CreateRequest{Subject: "alice", Policy: "fixed"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Jump(50 * time.Minute)
	idle := first.create("bob")
	clock.Jump(5 * time.Minute)
	later := first.create("carol")
	first.stop()

	// Nothing runs from 55m to 63m: alice's ttl passes at 60m, bob's idle
	// timeout at 60m; carol's idle timeout is due at 65m.
	clock.Jump(8 * time.Minute)
	second := start(t, h, sessiond.Config{Clock: clock, Store: store, Policies: policies})
	for _, tc := range []struct {
		c      *sessiond.Created
		reason sessiond.EndReason
	}{{expiring, sessiond.EndExpired}, {idle, sessiond.EndIdle}} {
		s, _ := store.Get(t.Context(), tc.c.Session.ID) // the store, not a checking read
		if s.State != sessiond.StateEnded || s.EndReason != tc.reason {
			t.Fatalf("after restart, %s is %v/%v; want ended/%v", tc.c.Session.Subject, s.State, s.EndReason, tc.reason)
		}
		if got := second.eventsOf(tc.c.Session.ID); fmt.Sprint(got) != fmt.Sprintf("[created ending:%s ended:%s]", tc.reason, tc.reason) {
			t.Fatalf("events of %s: %v", tc.c.Session.Subject, got)
		}
	}
	if s, _ := store.Get(t.Context(), later.Session.ID); s.State != sessiond.StateActive {
		t.Fatalf("carol ended early: %v", s.EndReason)
	}
	st, _ := second.m.Stats(t.Context())
	if st.Scheduled != 3 { // carol's idle deadline and two purges
		t.Fatalf("scheduler rebuilt with %d deadlines, want 3", st.Scheduled)
	}
	// The rebuilt scheduler fires carol's deadline.
	sub, err := second.m.Subscribe(t.Context(), sessiond.FromNow)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	clock.Advance(2 * time.Minute)
	for {
		ev, err := sub.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if ev.SessionID == later.Session.ID && ev.Type == sessiond.EventEnded {
			if ev.Reason != sessiond.EndIdle {
				t.Fatalf("carol ended with %v", ev.Reason)
			}
			break
		}
	}
}

// The deadlines a node sets live in the store: when it is gone, the nodes
// left end its sessions on time, each once, and a node that starts reads
// no session to learn of them.
func testDeadlinesOutliveTheirNode(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		p := web()
		p.RotateAfter, p.RotationGrace = 0, 0
		cfg := func(node string, st sessiond.Store) sessiond.Config {
			return sessiond.Config{Policies: []sessiond.Policy{p}, Retention: time.Hour, Node: node, Store: st}
		}
		a := start(t, h, cfg("host-a", nil))
		var ids []string
		for i := range 30 {
			ids = append(ids, a.create(fmt.Sprintf("user-%d", i%4)).Session.ID)
			time.Sleep(time.Second)
		}
		b := start(t, h, cfg("host-b", a.store.Store))
		c := start(t, h, cfg("host-c", a.store.Store))
		if n := b.store.reads.Load() + c.store.reads.Load(); n != 0 {
			t.Fatalf("two nodes starting beside 30 sessions read %d of them", n)
		}
		a.stop()
		time.Sleep(11 * time.Minute) // the idle timeout is 10 minutes
		synctest.Wait()
		for _, id := range ids {
			s := b.session(id)
			if s.State != sessiond.StateEnded || s.EndReason != sessiond.EndIdle {
				t.Fatalf("%s is %v/%v after its node left and its idle timeout passed", id, s.State, s.EndReason)
			}
			if late := s.EndedAt.Sub(s.LastActive.Add(p.IdleTimeout)); late < 0 || late > time.Second {
				t.Fatalf("%s ended %v after its idle deadline", id, late)
			}
			if got := b.eventsOf(id); fmt.Sprint(got) != "[created ending:idle ended:idle]" {
				t.Fatalf("events of %s: %v; want it ended once", id, got)
			}
		}
	})
}

// A node that claimed a deadline and could not write its transition (the
// store refused, then the node died) loses nothing: the claim lapses and
// another node ends the session, once.
func testAFailedDeadlineComesBackToAnotherNode(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		p := web()
		p.RotateAfter, p.RotationGrace = 0, 0
		shared := openStore(t, h)
		flaky := &FaultyStore{Store: shared}
		a := start(t, h, sessiond.Config{Policies: []sessiond.Policy{p}, Node: "host-a", Store: flaky})
		c := a.create("alice")
		flaky.UpdatesDown.Store(true)
		time.Sleep(p.IdleTimeout)
		synctest.Wait()
		if flaky.Failed.Load() == 0 {
			t.Fatal("test is broken: host-a did not try to end the session")
		}
		if s := a.session(c.Session.ID); s.State != sessiond.StateActive {
			t.Fatalf("the session is %v although host-a could not write", s.State)
		}
		b := start(t, h, sessiond.Config{Policies: []sessiond.Policy{p}, Node: "host-b", Store: shared})
		a.stop()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		s := b.session(c.Session.ID)
		if s.State != sessiond.StateEnded || s.EndReason != sessiond.EndIdle {
			t.Fatalf("after host-a died holding its claim: %v/%v, want ended/idle", s.State, s.EndReason)
		}
		deadline := s.LastActive.Add(p.IdleTimeout)
		if late := s.EndedAt.Sub(deadline); late > 6*time.Second {
			t.Fatalf("ended %v after its deadline; a claim holds 5s", late)
		}
		if got := b.eventsOf(c.Session.ID); fmt.Sprint(got) != "[created ending:idle ended:idle]" {
			t.Fatalf("events: %v; want it ended once", got)
		}
	})
}
