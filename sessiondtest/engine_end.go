package sessiondtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessiond/sessiond"
)

func testRevokeIsIdempotent(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, h, sessiond.Config{})
		c := e.create("alice")
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				if err := e.m.Revoke(context.Background(), c.Session.ID, ""); err != nil {
					t.Errorf("Revoke: %v", err)
				}
			})
		}
		wg.Wait()
		if err := e.m.Revoke(t.Context(), c.Session.ID, ""); err != nil {
			t.Fatalf("second Revoke: %v", err)
		}
		if got := e.eventsOf(c.Session.ID); fmt.Sprint(got) != "[created ending:revoked ended:revoked]" {
			t.Fatalf("events %v: ending must be recorded once", got)
		}
		_, err := e.validate(c.Token)
		wantCode(t, err, sessiond.CodeEnded)
		wantCode(t, e.m.Revoke(t.Context(), "no-such-session", ""), sessiond.CodeNotFound)
		wantCode(t, e.m.Revoke(t.Context(), c.Session.ID, "because"), sessiond.CodeInvalidArgument)
	})
}

func testEndingOneNeverRemovesAnother(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, h, sessiond.Config{})
		a, b := e.create("alice"), e.create("alice")
		bob := e.create("bob")
		if err := e.m.Revoke(t.Context(), a.Session.ID, ""); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*sessiond.Created{b, bob} {
			if _, err := e.validate(c.Token); err != nil {
				t.Fatalf("revoking one session broke another: %v", err)
			}
		}
		live, _ := e.m.ListBySubject(t.Context(), "alice")
		if len(live) != 1 || live[0].ID != b.Session.ID {
			t.Fatalf("alice's live sessions: %d", len(live))
		}
	})
}

func testRevokeSubject(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, h, sessiond.Config{})
		for range 7 {
			e.create("alice")
		}
		bob := e.create("bob")
		n, err := e.m.RevokeSubject(t.Context(), "alice")
		if err != nil || n != 7 {
			t.Fatalf("RevokeSubject = %d, %v; want 7", n, err)
		}
		if n, _ := e.m.RevokeSubject(t.Context(), "alice"); n != 0 {
			t.Fatalf("second RevokeSubject ended %d", n)
		}
		if _, err := e.validate(bob.Token); err != nil {
			t.Fatal(err)
		}
	})
}

func testSubjectIndexHoldsNoStaleEntries(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		p := web()
		p.MaxPerSubject, p.OnLimit = 3, sessiond.LimitEvictOldest
		short := web()
		short.Name, short.TTL, short.IdleTimeout, short.RotateAfter, short.RotationGrace = "short", 2*time.Minute, 0, 0, 0
		e := start(t, h, sessiond.Config{Policies: []sessiond.Policy{p, short}})
		ctx := t.Context()
		expiring, _ := e.m.Create(ctx, sessiond.CreateRequest{Subject: "alice", Policy: "short"})
		rotating := e.create("alice")
		revoked := e.create("alice")
		if err := e.m.Revoke(ctx, revoked.Session.ID, ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(6 * time.Minute) // expiring's ttl passes; rotating is due a rotation
		synctest.Wait()
		v, err := e.validate(rotating.Token)
		if err != nil || v.Token == "" {
			t.Fatalf("rotation: %v", err)
		}
		var kept []string
		for range 3 { // the third evicts rotating, the oldest live session
			kept = append(kept, e.create("alice").Session.ID)
		}
		if s, _ := e.m.Get(ctx, rotating.Session.ID); s.EndReason != sessiond.EndEvicted {
			t.Fatalf("rotating session: %v/%v, want evicted", s.State, s.EndReason)
		}

		live, err := e.store.Live(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range live {
			got = append(got, s.ID)
		}
		slices.Sort(got)
		slices.Sort(kept)
		if !slices.Equal(got, kept) {
			t.Fatalf("store's live index for alice = %v, want exactly %v (expired %s, revoked %s, evicted %s gone)",
				got, kept, expiring.Session.ID, revoked.Session.ID, rotating.Session.ID)
		}
		n, _ := e.m.RevokeSubject(ctx, "alice")
		st, _ := e.m.Stats(ctx)
		if n != 3 || st.Subjects != 0 {
			t.Fatalf("after revoking all: %d revoked, %d subjects with live sessions", n, st.Subjects)
		}
		if live, _ := e.store.Live(ctx, "alice"); len(live) != 0 {
			t.Fatalf("live index not empty: %d", len(live))
		}
	})
}

// Revoking a session already past its deadline records the deadline as the
// reason: the session had ended by then, whatever the timer knew.
func testRevokePastDeadlineKeepsTheRealReason(t *testing.T, h Harness) {
	clock := NewManualClock(clockStart)
	e := start(t, h, sessiond.Config{Clock: clock})
	idle, other := e.create("alice"), e.create("alice")
	clock.Jump(10 * time.Minute) // idle_timeout passed; no timer has fired
	if err := e.m.Revoke(t.Context(), idle.Session.ID, ""); err != nil {
		t.Fatal(err)
	}
	if got := e.eventsOf(idle.Session.ID); fmt.Sprint(got) != "[created ending:idle ended:idle]" {
		t.Fatalf("events %v", got)
	}
	n, err := e.m.RevokeSubject(t.Context(), "alice")
	if err != nil || n != 0 {
		t.Fatalf("RevokeSubject over an idle-expired session = %d, %v; want 0 revoked", n, err)
	}
	if s, _ := e.m.Get(t.Context(), other.Session.ID); s.EndReason != sessiond.EndIdle {
		t.Fatalf("other ended with %q, want idle", s.EndReason)
	}
}

// recorder keeps what disposers did, in order.
type recorder struct {
	mu  sync.Mutex
	log []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, s)
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

func testResourcesDisposedNewestFirstInIsolation(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		var hooked atomic.Int32
		e := connectEnv(t, h, sessiond.Config{
			DisposeTimeout: 2 * time.Second,
			EndingHooks: []func(context.Context, *sessiond.Session) error{func(ctx context.Context, s *sessiond.Session) error {
				hooked.Add(1)
				return nil
			}},
		})
		c := e.create("alice")
		rec := &recorder{}
		attach := func(name string, f func(ctx context.Context) error) {
			t.Helper()
			if _, err := e.m.Attach(t.Context(), c.Session.ID, name, sessiond.ResourceFunc(func(ctx context.Context) error {
				rec.add(name)
				return f(ctx)
			})); err != nil {
				t.Fatal(err)
			}
		}
		var sawReason sessiond.EndReason
		attach("sandbox", func(ctx context.Context) error {
			sawReason = sessiond.EndingSession(ctx).EndReason
			return nil
		})
		attach("failing", func(context.Context) error { return errors.New("boom") })
		attach("panicking", func(context.Context) error { panic("oops") })
		stuck := make(chan struct{}) // ignores its deadline until the test ends
		defer close(stuck)
		attach("hanging", func(ctx context.Context) error { <-stuck; return nil })
		attach("socket", func(context.Context) error { return nil })
		released := false
		rel, _ := e.m.Attach(t.Context(), c.Session.ID, "released", sessiond.ResourceFunc(func(context.Context) error {
			released = true
			return nil
		}))
		rel()

		start := time.Now()
		if err := e.m.Revoke(t.Context(), c.Session.ID, ""); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 2*time.Second {
			t.Fatalf("ending took %v; want the one hanging disposer's 2s deadline", took)
		}
		if got := rec.get(); fmt.Sprint(got) != "[socket hanging panicking failing sandbox]" {
			t.Fatalf("disposed in order %v, want newest first", got)
		}
		if sawReason != sessiond.EndRevoked || released || hooked.Load() != 1 {
			t.Fatalf("reason %q, released one disposed %v, hook ran %d times", sawReason, released, hooked.Load())
		}
		if s := e.session(c.Session.ID); s.State != sessiond.StateEnded {
			t.Fatalf("session %v after disposal", s.State)
		}
		if got := e.eventsOf(c.Session.ID); fmt.Sprint(got) != "[created ending:revoked ended:revoked]" {
			t.Fatalf("events %v", got)
		}
		// Ending again disposes nothing again.
		if err := e.m.Revoke(t.Context(), c.Session.ID, ""); err != nil {
			t.Fatal(err)
		}
		if got := rec.get(); len(got) != 5 || hooked.Load() != 1 {
			t.Fatalf("disposal ran twice: %v", got)
		}
		// Attaching to an ended session keeps nothing.
		_, err := e.m.Attach(t.Context(), c.Session.ID, "late", sessiond.ResourceFunc(func(context.Context) error { return nil }))
		wantCode(t, err, sessiond.CodeEnded)
	})
}

func testResourcesDisposedOnceUnderRacingEnds(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := connectEnv(t, h, sessiond.Config{})
		other := start(t, h, sessiond.Config{Store: e.store.Store, Node: "node-b", Policies: []sessiond.Policy{web(), glasses(), workspace()}})
		c := e.create("alice")
		var disposed atomic.Int32
		for _, m := range []*sessiond.Manager{e.m, other.m} {
			if _, err := m.Attach(t.Context(), c.Session.ID, "r", sessiond.ResourceFunc(func(context.Context) error {
				disposed.Add(1)
				return nil
			})); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				m := []*sessiond.Manager{e.m, other.m}[i%2]
				if err := m.Revoke(context.Background(), c.Session.ID, ""); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		synctest.Wait() // the engine that lost the race disposes of its own when it sees the event
		if n := disposed.Load(); n != 2 {
			t.Fatalf("%d disposals, want 2: one per engine holding a resource, each once", n)
		}
	})
}

// An engine that finds a session ending (another engine is disposing of it)
// releases what it holds and runs no ending hook: the hooks run once, on
// the engine that ended the session.
func testEndingHooksRunOnceAcrossEngines(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		var hooked atomic.Int32
		hook := []func(context.Context, *sessiond.Session) error{func(context.Context, *sessiond.Session) error {
			hooked.Add(1)
			return nil
		}}
		a := connectEnv(t, h, sessiond.Config{EndingHooks: hook})
		b := start(t, h, sessiond.Config{Store: a.store.Store, Node: "node-b", EndingHooks: hook, Policies: []sessiond.Policy{web(), glasses(), workspace()}})
		for i := range 20 {
			c := a.create(fmt.Sprint("user-", i))
			var released atomic.Int32
			if _, err := a.m.Attach(t.Context(), c.Session.ID, "slow", sessiond.ResourceFunc(func(ctx context.Context) error {
				time.Sleep(time.Second) // a disposal that takes a while: the session stays ending
				return nil
			})); err != nil {
				t.Fatal(err)
			}
			if _, err := b.m.Attach(t.Context(), c.Session.ID, "held", sessiond.ResourceFunc(func(context.Context) error {
				released.Add(1)
				return nil
			})); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			wg.Go(func() { _ = a.m.Revoke(context.Background(), c.Session.ID, "") })
			wg.Go(func() { _ = b.m.Revoke(context.Background(), c.Session.ID, "") })
			wg.Wait()
			synctest.Wait()
			if released.Load() != 1 {
				t.Fatalf("session %d: the other engine's resource released %d times", i, released.Load())
			}
		}
		if n := hooked.Load(); n != 20 {
			t.Fatalf("ending hooks ran %d times for 20 sessions, want once each", n)
		}
	})
}

// Sessions whose resources hang until their dispose deadline are disposed
// of on the disposal workers; the deadlines of every other session fire on
// time meanwhile. (When disposal ran on the deadline workers, eight hung
// disposers stalled every deadline of the process for the dispose timeout.)
func testHungDisposersDoNotStallDeadlines(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, h, sessiond.Config{Workers: 8, DisposeTimeout: 30 * time.Second})
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

// Closing the engine drops the disposals still queued instead of running
// them one after another: their sessions stay ending until their ending
// deadline.
func testCloseDropsQueuedDisposals(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, h, sessiond.Config{DisposeWorkers: 1, DisposeTimeout: 30 * time.Second})
		stuck := make(chan struct{})
		defer close(stuck)
		var calls atomic.Int32
		for range 10 {
			c := e.create("hung")
			if _, err := e.m.Attach(t.Context(), c.Session.ID, "hangs", sessiond.ResourceFunc(func(context.Context) error {
				calls.Add(1)
				<-stuck // ignores its deadline
				return nil
			})); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(10*time.Minute + time.Millisecond) // all idle out; one worker takes the first
		synctest.Wait()
		began := time.Now()
		e.stop()
		if n, took := calls.Load(), time.Since(began); n != 1 || took > 30*time.Second {
			t.Fatalf("Close ran %d disposers and took %v; want the one in flight only, within its 30s deadline", n, took)
		}
	})
}

// A resource attached while a revoke's write is on its way is disposed of,
// exactly once, whichever lands first: Attach either fails (it saw the
// session ended) or the resource is disposed. Raced many times.
func testAttachRacingEndIsDisposed(t *testing.T, h Harness) {
	e := start(t, h, sessiond.Config{})
	for round := range 200 {
		c := e.create("racer")
		var disposed atomic.Int32
		var attachErr error
		var wg sync.WaitGroup
		wg.Go(func() {
			_, attachErr = e.m.Attach(t.Context(), c.Session.ID, "raced", sessiond.ResourceFunc(func(context.Context) error {
				disposed.Add(1)
				return nil
			}))
		})
		wg.Go(func() {
			if err := e.m.Revoke(t.Context(), c.Session.ID, sessiond.EndRevoked); err != nil {
				t.Errorf("round %d: revoke: %v", round, err)
			}
		})
		wg.Wait()
		if attachErr != nil {
			wantCode(t, attachErr, sessiond.CodeEnded)
			continue
		}
		Eventually(t, fmt.Sprintf("round %d: the resource attached during the revoke disposed of", round), func() bool { return disposed.Load() > 0 })
		if n := disposed.Load(); n != 1 {
			t.Fatalf("round %d: disposed %d times", round, n)
		}
	}
}

// A session ended through one engine has what another engine holds for it
// disposed of there, promptly: engines sharing a store follow its event
// log (EventWaiter), not only their own writes.
func testAnotherEngineDisposesWhatItHolds(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		a := connectEnv(t, h, sessiond.Config{Node: "host-a"})
		b := connectEnv(t, h, sessiond.Config{Node: "host-b", Store: a.store.Store})
		if _, ok := a.store.Store.(sessiond.EventWaiter); !ok {
			t.Fatalf("%T does not follow its log (sessiond.EventWaiter): engines sharing it cannot see each other's ends", a.store.Store)
		}
		for _, end := range []string{"revoke", "revoke subject"} {
			c := a.create("alice")
			disposed := make(chan time.Time, 1)
			if _, err := a.m.Attach(t.Context(), c.Session.ID, "socket", sessiond.ResourceFunc(func(context.Context) error {
				disposed <- time.Now()
				return nil
			})); err != nil {
				t.Fatal(err)
			}
			synctest.Wait() // host-a's pump has seen host-a's own writes
			ended := time.Now()
			if end == "revoke" {
				if err := b.m.Revoke(t.Context(), c.Session.ID, sessiond.EndRevoked); err != nil {
					t.Fatal(err)
				}
			} else if _, err := b.m.RevokeSubject(t.Context(), "alice"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Second)
			synctest.Wait()
			select {
			case at := <-disposed:
				t.Logf("%s through host-b: disposed on host-a %v later", end, at.Sub(ended))
			default:
				t.Fatalf("%s through host-b: what host-a holds for the session was not disposed of within 2s", end)
			}
		}
	})
}
