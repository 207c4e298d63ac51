package sessiond_test

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
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/pebble"
	"github.com/sessiond/sessiond/sessiondtest"
)

// web is the policy most tests run under.
func web() sessiond.Policy {
	return sessiond.Policy{
		Name: "web", TTL: time.Hour, IdleTimeout: 10 * time.Minute, TouchInterval: time.Minute,
		RotateAfter: 5 * time.Minute, RotationGrace: 30 * time.Second,
	}
}

type env struct {
	t     *testing.T
	store *countingStore
	m     *sessiond.Manager
}

// start runs a Manager on a fresh memory store. Call it inside a synctest
// bubble (the Manager's timers then use the bubble's fake time) or with a
// clock in cfg. The Manager is closed when the test ends.
func start(t *testing.T, cfg sessiond.Config) *env {
	t.Helper()
	st := &countingStore{Store: inmem.New(inmem.Options{})}
	if cfg.Store != nil {
		st.Store = cfg.Store
	}
	cfg.Store = st
	if cfg.Policies == nil {
		cfg.Policies = []sessiond.Policy{web()}
	}
	m, err := sessiond.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &env{t: t, store: st, m: m}
}

func (e *env) create(subject string) *sessiond.Created {
	e.t.Helper()
	c, err := e.m.Create(context.Background(), sessiond.CreateRequest{Subject: subject})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) validate(token string) (*sessiond.Validation, error) {
	return e.m.Validate(context.Background(), token, sessiond.Device{})
}

// events returns every event recorded so far, from the store's log.
func (e *env) events() []sessiond.Event {
	e.t.Helper()
	evs, err := e.store.Events(context.Background(), 0, 100000)
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

func (e *env) eventsOf(id string) []string {
	var out []string
	for _, ev := range e.events() {
		if ev.SessionID == id {
			s := string(ev.Type)
			if ev.Reason != "" {
				s += ":" + string(ev.Reason)
			}
			out = append(out, s)
		}
	}
	return out
}

// countingStore counts the writes that reach the store.
type countingStore struct {
	sessiond.Store
	updates atomic.Int64
}

func (c *countingStore) Update(ctx context.Context, ch sessiond.Change) error {
	c.updates.Add(1)
	return c.Store.Update(ctx, ch)
}

func wantCode(t *testing.T, err error, code sessiond.Code) {
	t.Helper()
	if got := sessiond.ErrorCode(err); got != code {
		t.Fatalf("got error %v (code %q), want code %q", err, got, code)
	}
}

func TestCreateAndValidate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, sessiond.Config{})
		c, err := e.m.Create(t.Context(), sessiond.CreateRequest{
			Subject: "alice", Device: sessiond.Device{ID: "laptop", Type: "browser"},
			Metadata: []byte(`{ "plan": "pro" }`),
		})
		if err != nil {
			t.Fatal(err)
		}
		s := c.Session
		if len(c.Token) != sessiond.TokenLen || s.ID == "" || s.Subject != "alice" || s.State != sessiond.StateActive ||
			s.Policy != "web" || s.Version != 1 || s.Generation != 0 || string(s.Metadata) != `{"plan":"pro"}` {
			t.Fatalf("created %+v token %q", s, c.Token)
		}
		if want := s.CreatedAt.Add(time.Hour); !s.ExpiresAt.Equal(want) {
			t.Fatalf("ExpiresAt = %v, want created+ttl %v", s.ExpiresAt, want)
		}
		v, err := e.validate(c.Token)
		if err != nil || v.Session.ID != s.ID || v.Token != "" {
			t.Fatalf("Validate = %+v, %v", v, err)
		}
		// A malformed token (a tampered cookie) is answered like an unknown one.
		_, err = e.validate("sd_not-a-token")
		wantCode(t, err, sessiond.CodeNotFound)
		flipped := []byte(c.Token)
		flipped[10] ^= 1
		_, err = e.validate(string(flipped))
		wantCode(t, err, sessiond.CodeNotFound)
		other, _ := sessiond.NewToken()
		_, err = e.validate(other)
		wantCode(t, err, sessiond.CodeNotFound)
		if got := e.eventsOf(s.ID); fmt.Sprint(got) != "[created]" {
			t.Fatalf("events %v", got)
		}
	})
}

func TestCreateRejectsBadInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bound := sessiond.Policy{Name: "bound", TTL: time.Hour, BindDevice: true}
		e := start(t, sessiond.Config{Policies: []sessiond.Policy{web(), bound}, MaxMetadata: 64})
		for _, tc := range []struct {
			req   sessiond.CreateRequest
			field string
		}{
			{sessiond.CreateRequest{}, "subject"},
			{sessiond.CreateRequest{Subject: "a\x00b"}, "subject"},
			{sessiond.CreateRequest{Subject: "a", ID: "has space"}, "id"},
			{sessiond.CreateRequest{Subject: "a", Policy: "nope"}, "policy"},
			{sessiond.CreateRequest{Subject: "a", Policy: "bound"}, "device.id"},
			{sessiond.CreateRequest{Subject: "a", Device: sessiond.Device{IP: "not-an-ip"}}, "device.ip"},
			{sessiond.CreateRequest{Subject: "a", Metadata: []byte(`[1,2]`)}, "metadata"},
			{sessiond.CreateRequest{Subject: "a", Metadata: []byte(`{"a":`)}, "metadata"},
			{sessiond.CreateRequest{Subject: "a", Metadata: []byte(`{"k":"` + string(make([]byte, 80)) + `"}`)}, "metadata"},
			{sessiond.CreateRequest{Subject: "a", Override: sessiond.Overrides{TTL: 2 * time.Hour}}, "ttl"},
			{sessiond.CreateRequest{Subject: "a", Override: sessiond.Overrides{IdleTimeout: time.Hour}}, "idle_timeout"},
			{sessiond.CreateRequest{Subject: "a", Override: sessiond.Overrides{TTL: 5 * time.Minute}}, "ttl"}, // below the idle timeout
			{sessiond.CreateRequest{Subject: "a", Override: sessiond.Overrides{TTL: 5 * time.Minute, IdleTimeout: 5 * time.Minute}}, "idle_timeout"},
		} {
			_, err := e.m.Create(t.Context(), tc.req)
			var se *sessiond.Error
			if !errors.As(err, &se) || se.Code != sessiond.CodeInvalidArgument || se.Field != tc.field {
				t.Errorf("Create(%+v) = %v; want invalid_argument on %q", tc.req, err, tc.field)
			}
		}
		if n := len(e.events()); n != 0 {
			t.Fatalf("rejected creates recorded %d events", n)
		}
		// Narrowing overrides are fine.
		c, err := e.m.Create(t.Context(), sessiond.CreateRequest{Subject: "a", Override: sessiond.Overrides{TTL: 30 * time.Minute, IdleTimeout: 2 * time.Minute}})
		if err != nil || c.Session.IdleTimeout != 2*time.Minute || !c.Session.ExpiresAt.Equal(c.Session.CreatedAt.Add(30*time.Minute)) {
			t.Fatalf("narrowing override: %+v, %v", c, err)
		}
	})
}

func TestCallerChosenID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, sessiond.Config{})
		c, err := e.m.Create(t.Context(), sessiond.CreateRequest{ID: "mcp-7f3a:9", Subject: "alice"})
		if err != nil || c.Session.ID != "mcp-7f3a:9" {
			t.Fatalf("Create with id: %+v, %v", c, err)
		}
		_, err = e.m.Create(t.Context(), sessiond.CreateRequest{ID: "mcp-7f3a:9", Subject: "bob"})
		wantCode(t, err, sessiond.CodeExists)
		if v, err := e.validate(c.Token); err != nil || v.Session.ID != "mcp-7f3a:9" {
			t.Fatalf("token of a caller-chosen id: %v", err)
		}
	})
}

func TestTTLNeverSlides(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, sessiond.Config{})
		c := e.create("alice")
		expires := c.Session.ExpiresAt
		token := c.Token
		rotations := 0
		// Stay active and rotate every 5 minutes for the whole hour.
		for range 11 {
			time.Sleep(5*time.Minute + time.Second)
			v, err := e.validate(token)
			if err != nil {
				t.Fatalf("validate at %v: %v", time.Since(c.Session.CreatedAt), err)
			}
			if v.Token != "" {
				token = v.Token
				rotations++
			}
			if !v.Session.ExpiresAt.Equal(expires) {
				t.Fatalf("ExpiresAt moved from %v to %v (generation %d)", expires, v.Session.ExpiresAt, v.Session.Generation)
			}
		}
		if rotations != 11 {
			t.Fatalf("%d rotations, want 11", rotations)
		}
		time.Sleep(time.Until(expires))
		_, err := e.validate(token)
		wantCode(t, err, sessiond.CodeExpired)
		s, _ := e.m.Get(t.Context(), c.Session.ID)
		if s.State != sessiond.StateEnded || s.EndReason != sessiond.EndExpired {
			t.Fatalf("after ttl: %v %v", s.State, s.EndReason)
		}
	})
}

func TestIdleCheckedBeforeRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, sessiond.Config{})
		c := e.create("alice")
		// Past both rotate_after (5m) and idle_timeout (10m), but read
		// before the idle timer would have fired: freeze the scheduler out
		// by reading at exactly the idle deadline.
		time.Sleep(10 * time.Minute)
		_, err := e.validate(c.Token)
		wantCode(t, err, sessiond.CodeExpired)
		got := e.eventsOf(c.Session.ID)
		if fmt.Sprint(got) != "[created ending:idle ended:idle]" {
			t.Fatalf("events %v: an idle session must end, not rotate", got)
		}
	})
}

func TestRotationOncePerGeneration(t *testing.T) {
	race := func(t *testing.T, managers []*sessiond.Manager, e *env, wait ...func(time.Duration)) {
		ctx := context.Background()
		c, err := managers[0].Create(ctx, sessiond.CreateRequest{Subject: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		sleep := time.Sleep // fake time inside a synctest bubble
		if len(wait) > 0 {
			sleep = wait[0]
		}
		sleep(6 * time.Minute)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var newTokens []string
		for i := range 64 {
			wg.Go(func() {
				v, err := managers[i%len(managers)].Validate(ctx, c.Token, sessiond.Device{})
				if err != nil {
					t.Errorf("racing validation: %v", err)
					return
				}
				if v.Token != "" {
					mu.Lock()
					newTokens = append(newTokens, v.Token)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(newTokens) != 1 {
			t.Fatalf("%d validations rotated, want exactly 1", len(newTokens))
		}
		s, _ := managers[0].Get(ctx, c.Session.ID)
		if s.Generation != 1 {
			t.Fatalf("generation %d, want 1", s.Generation)
		}
		if got := e.eventsOf(c.Session.ID); fmt.Sprint(got) != "[created rotated]" {
			t.Fatalf("events %v", got)
		}
		// Both tokens validate within the grace; the new one is current.
		for _, tok := range []string{c.Token, newTokens[0]} {
			if _, err := managers[0].Validate(ctx, tok, sessiond.Device{}); err != nil {
				t.Fatalf("validate after rotation: %v", err)
			}
		}
	}
	t.Run("OneEngine", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := start(t, sessiond.Config{})
			race(t, []*sessiond.Manager{e.m}, e)
		})
	})
	t.Run("TwoEnginesOneStore", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := start(t, sessiond.Config{})
			other := start(t, sessiond.Config{Store: e.store.Store})
			race(t, []*sessiond.Manager{e.m, other.m}, e)
		})
	})
	t.Run("TwoEnginesOneEmbeddedStore", func(t *testing.T) {
		st, err := pebble.Open(pebble.Options{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		clock := sessiondtest.NewManualClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
		e := start(t, sessiond.Config{Store: st, Clock: clock})
		other := start(t, sessiond.Config{Store: st, Clock: clock})
		// race sleeps to pass rotate_after; with the manual clock, jump instead.
		race(t, []*sessiond.Manager{e.m, other.m}, e, func(d time.Duration) { clock.Jump(d) })
	})
}

func TestRotationGraceAndReuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, sessiond.Config{})
		c := e.create("alice")
		time.Sleep(5 * time.Minute)
		v, err := e.validate(c.Token)
		if err != nil || v.Token == "" {
			t.Fatalf("expected a rotation: %+v, %v", v, err)
		}
		// Another tab still holds the old token: fine within the grace.
		time.Sleep(29 * time.Second)
		old, err := e.validate(c.Token)
		if err != nil || old.Token != "" || old.Session.Generation != 1 {
			t.Fatalf("old token within grace: %+v, %v", old, err)
		}
		// After the grace, the old token is theft: the session ends.
		time.Sleep(time.Second)
		_, err = e.validate(c.Token)
		wantCode(t, err, sessiond.CodeTokenReused)
		_, err = e.validate(v.Token)
		wantCode(t, err, sessiond.CodeEnded)
		s, _ := e.m.Get(t.Context(), c.Session.ID)
		if s.State != sessiond.StateEnded || s.EndReason != sessiond.EndRotatedReuse {
			t.Fatalf("after reuse: %v %v", s.State, s.EndReason)
		}
		if got := e.eventsOf(c.Session.ID); fmt.Sprint(got) != "[created rotated ending:rotated_reuse ended:rotated_reuse]" {
			t.Fatalf("events %v", got)
		}
	})
}

// Reuse detection covers the token family: after T1→T2→T3, replaying T1
// (two rotations old) is theft too, up to MaxRetiredTokens rotations back.
// Older tokens than that are forgotten: unknown.
func TestReuseOfAnyRotatedOutToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, sessiond.Config{})
		for _, back := range []int{2, 3, sessiond.MaxRetiredTokens + 1} {
			c := e.create("alice")
			tokens := []string{c.Token}
			for range back {
				v, err := e.m.Rotate(t.Context(), c.Session.ID)
				if err != nil {
					t.Fatal(err)
				}
				tokens = append(tokens, v.Token)
				time.Sleep(31 * time.Second) // each rotation's grace ends
			}
			_, err := e.validate(tokens[0])
			wantCode(t, err, sessiond.CodeTokenReused)
			_, err = e.validate(tokens[len(tokens)-1])
			wantCode(t, err, sessiond.CodeEnded)
			if s := e.session(c.Session.ID); s.State != sessiond.StateEnded || s.EndReason != sessiond.EndRotatedReuse {
				t.Fatalf("replaying the token of %d rotations back: %v %v; want ended, rotated_reuse", back, s.State, s.EndReason)
			}
		}
		// Past the bounded family, a token is just unknown.
		c := e.create("bob")
		first := c.Token
		for range sessiond.MaxRetiredTokens + 2 {
			if _, err := e.m.Rotate(t.Context(), c.Session.ID); err != nil {
				t.Fatal(err)
			}
			time.Sleep(31 * time.Second)
		}
		_, err := e.validate(first)
		wantCode(t, err, sessiond.CodeNotFound)
		if s := e.session(c.Session.ID); s.State != sessiond.StateActive || len(s.RetiredTokens) != sessiond.MaxRetiredTokens {
			t.Fatalf("after %d rotations: %v with %d retired tokens, want active with %d", sessiond.MaxRetiredTokens+2, s.State, len(s.RetiredTokens), sessiond.MaxRetiredTokens)
		}
	})
}

func TestBindDevice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := web()
		p.BindDevice = true
		p.RotateAfter, p.RotationGrace = 0, 0
		e := start(t, sessiond.Config{Policies: []sessiond.Policy{p}})
		c, err := e.m.Create(t.Context(), sessiond.CreateRequest{Subject: "alice", Device: sessiond.Device{ID: "phone-1"}})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Minute) // past touch_interval: a valid use would write
		before := e.store.updates.Load()
		_, err = e.m.Validate(t.Context(), c.Token, sessiond.Device{ID: "laptop-9"})
		wantCode(t, err, sessiond.CodeDeviceMismatch)
		_, err = e.m.Validate(t.Context(), c.Token, sessiond.Device{})
		wantCode(t, err, sessiond.CodeDeviceMismatch)
		s, _ := e.m.Get(t.Context(), c.Session.ID)
		if !s.LastActive.Equal(c.Session.LastActive) || e.store.updates.Load() != before {
			t.Fatalf("a mismatched validation moved last_active to %v", s.LastActive)
		}
		v, err := e.m.Validate(t.Context(), c.Token, sessiond.Device{ID: "phone-1"})
		if err != nil || !v.Session.LastActive.After(c.Session.LastActive) {
			t.Fatalf("matching device: %+v, %v", v, err)
		}
	})
}

func TestLimitPerSubject(t *testing.T) {
	run := func(t *testing.T, action sessiond.LimitAction) (ok, rejected int, e *env) {
		p := web()
		p.MaxPerSubject, p.OnLimit = 5, action
		e = start(t, sessiond.Config{Policies: []sessiond.Policy{p}})
		var wg sync.WaitGroup
		var mu sync.Mutex
		for range 100 {
			wg.Go(func() {
				_, err := e.m.Create(context.Background(), sessiond.CreateRequest{Subject: "alice"})
				mu.Lock()
				defer mu.Unlock()
				switch sessiond.ErrorCode(err) {
				case "":
					ok++
				case sessiond.CodeLimitReached:
					rejected++
				default:
					t.Errorf("create: %v", err)
				}
			})
		}
		wg.Wait()
		live, err := e.m.ListBySubject(context.Background(), "alice")
		if err != nil || len(live) != 5 {
			t.Fatalf("%d live sessions (%v), want exactly 5", len(live), err)
		}
		return ok, rejected, e
	}
	t.Run("Reject", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ok, rejected, _ := run(t, sessiond.LimitReject)
			if ok != 5 || rejected != 95 {
				t.Fatalf("%d created, %d rejected; want 5 and 95", ok, rejected)
			}
		})
	})
	t.Run("EvictOldest", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ok, _, e := run(t, sessiond.LimitEvictOldest)
			if ok != 100 {
				t.Fatalf("%d of 100 evicting creates succeeded", ok)
			}
			page, _ := e.m.List(t.Context(), sessiond.Query{Subject: "alice", State: sessiond.StateEnded, Limit: 1000})
			if len(page.Sessions) != 95 {
				t.Fatalf("%d ended sessions, want 95", len(page.Sessions))
			}
			for _, s := range page.Sessions {
				if s.EndReason != sessiond.EndEvicted {
					t.Fatalf("ended with %q, want evicted", s.EndReason)
				}
				if got := e.eventsOf(s.ID); fmt.Sprint(got) != "[created ending:evicted ended:evicted]" {
					t.Fatalf("evicted session's events: %v", got)
				}
			}
		})
	})
}

func TestActivityWrittenOncePerTouchInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := web()
		p.RotateAfter, p.RotationGrace = 0, 0
		e := start(t, sessiond.Config{Policies: []sessiond.Policy{p}})
		c := e.create("alice")
		for range 1000 {
			if _, err := e.validate(c.Token); err != nil {
				t.Fatal(err)
			}
		}
		if n := e.store.updates.Load(); n != 0 {
			t.Fatalf("1000 validations within touch_interval wrote %d times; reads must stay reads", n)
		}
		time.Sleep(time.Minute)
		for range 1000 {
			if _, err := e.validate(c.Token); err != nil {
				t.Fatal(err)
			}
		}
		if n := e.store.updates.Load(); n != 1 {
			t.Fatalf("after touch_interval, 1000 validations wrote %d times, want 1", n)
		}
		if err := e.m.Touch(t.Context(), c.Session.ID); err != nil || e.store.updates.Load() != 1 {
			t.Fatalf("Touch within the interval wrote (%v)", err)
		}
		// Activity keeps the session past its idle timeout.
		for range 3 {
			time.Sleep(9 * time.Minute)
			if _, err := e.validate(c.Token); err != nil {
				t.Fatalf("active session expired: %v", err)
			}
		}
	})
}

func TestRevokeIsIdempotent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, sessiond.Config{})
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

func TestEndingOneNeverRemovesAnother(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, sessiond.Config{})
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

func TestRevokeSubject(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, sessiond.Config{})
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

func TestSubjectIndexHoldsNoStaleEntries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := web()
		p.MaxPerSubject, p.OnLimit = 3, sessiond.LimitEvictOldest
		short := web()
		short.Name, short.TTL, short.IdleTimeout, short.RotateAfter, short.RotationGrace = "short", 2*time.Minute, 0, 0, 0
		e := start(t, sessiond.Config{Policies: []sessiond.Policy{p, short}})
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

func TestDeadlinesFireWithoutReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := web()
		p.RotateAfter, p.RotationGrace = 0, 0
		e := start(t, sessiond.Config{Policies: []sessiond.Policy{p}, Retention: time.Hour})
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

func TestPastDeadlineNeverValid(t *testing.T) {
	clock := sessiondtest.NewManualClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	e := start(t, sessiond.Config{Clock: clock})
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

func TestRestartRebuildsDeadlines(t *testing.T) {
	clock := sessiondtest.NewManualClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	store := inmem.New(inmem.Options{})
	fixed := sessiond.Policy{Name: "fixed", TTL: time.Hour}
	policies := []sessiond.Policy{web(), fixed}
	first := start(t, sessiond.Config{Clock: clock, Store: store, Policies: policies})
	expiring, err := first.m.Create(t.Context(), sessiond.CreateRequest{Subject: "alice", Policy: "fixed"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Jump(50 * time.Minute)
	idle := first.create("bob")
	clock.Jump(5 * time.Minute)
	later := first.create("carol")
	first.m.Close()

	// Nothing runs from 55m to 63m: alice's ttl passes at 60m, bob's idle
	// timeout at 60m; carol's idle timeout is due at 65m.
	clock.Jump(8 * time.Minute)
	second := start(t, sessiond.Config{Clock: clock, Store: store, Policies: policies})
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

func TestEventsInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, sessiond.Config{})
		sub, err := e.m.Subscribe(t.Context(), sessiond.FromNow)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		c := e.create("alice")
		if _, err := e.m.Rotate(t.Context(), c.Session.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.m.Revoke(t.Context(), c.Session.ID, ""); err != nil {
			t.Fatal(err)
		}
		var got []string
		var last uint64
		for len(got) < 4 {
			ev, err := sub.Next(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if ev.Seq <= last {
				t.Fatalf("seq %d after %d", ev.Seq, last)
			}
			last = ev.Seq
			got = append(got, string(ev.Type))
		}
		if fmt.Sprint(got) != "[created rotated ending ended]" {
			t.Fatalf("events %v", got)
		}

		// Resume from a Seq: the missed events are replayed from the log,
		// then live ones follow.
		resumed, err := e.m.Subscribe(t.Context(), 1)
		if err != nil {
			t.Fatal(err)
		}
		defer resumed.Close()
		e.create("bob")
		var again []string
		for len(again) < 4 {
			ev, err := resumed.Next(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			again = append(again, fmt.Sprintf("%d:%s", ev.Seq, ev.Type))
		}
		if fmt.Sprint(again) != "[2:rotated 3:ending 4:ended 5:created]" {
			t.Fatalf("resumed stream %v", again)
		}
		// After 0: the whole retained log.
		whole, err := e.m.Subscribe(t.Context(), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer whole.Close()
		if ev, err := whole.Next(t.Context()); err != nil || ev.Seq != 1 || ev.Type != sessiond.EventCreated {
			t.Fatalf("Subscribe(0) starts with %+v, %v; want the first event", ev, err)
		}
	})
}

func TestSlowSubscriberIsDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, sessiond.Config{SubscriberBuffer: 4})
		slow, err := e.m.Subscribe(t.Context(), sessiond.FromNow)
		if err != nil {
			t.Fatal(err)
		}
		defer slow.Close()
		for range 20 { // the engine is never held up by the reader
			e.create("alice")
		}
		synctest.Wait()
		n := 0
		for {
			_, err := slow.Next(t.Context())
			if errors.Is(err, sessiond.ErrSubscriberTooSlow) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 4 {
			t.Fatalf("a dropped subscriber got %d events, want its buffer's 4", n)
		}
	})
}

// Revoking a session already past its deadline records the deadline as the
// reason: the session had ended by then, whatever the timer knew.
func TestRevokePastDeadlineKeepsTheRealReason(t *testing.T) {
	clock := sessiondtest.NewManualClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	e := start(t, sessiond.Config{Clock: clock})
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
