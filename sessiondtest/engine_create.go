package sessiondtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessiond/sessiond"
)

func testCreateAndValidate(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, h, sessiond.Config{})
		c, err := e.m.Create(t.Context(), sessiond.CreateRequest{
			Subject: "alice", Device: sessiond.Device{ID: "laptop", Type: "browser"},
			Metadata: []byte(`{ "plan": "pro" }`),
		})
		if err != nil {
			t.Fatal(err)
		}
		s := c.Session
		if id, _, err := sessiond.ParseToken(c.Token); err != nil || id != s.ID {
			t.Fatalf("token %q: parses to session %q, %v; want the session's id %q", c.Token, id, err, s.ID)
		}
		if s.ID == "" || s.Subject != "alice" || s.State != sessiond.StateActive ||
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
		other, _ := sessiond.NewToken("no-such-session")
		_, err = e.validate(other)
		wantCode(t, err, sessiond.CodeNotFound)
		// A token that names the session but is not one of its tokens is
		// unknown, also once the session ended: knowing a session's id (it
		// is not secret) tells nothing about it through validation.
		forged, _ := sessiond.NewToken(s.ID)
		_, err = e.validate(forged)
		wantCode(t, err, sessiond.CodeNotFound)
		if got := e.eventsOf(s.ID); fmt.Sprint(got) != "[created]" {
			t.Fatalf("events %v", got)
		}
		if err := e.m.Revoke(t.Context(), s.ID, sessiond.EndRevoked); err != nil {
			t.Fatal(err)
		}
		_, err = e.validate(forged)
		wantCode(t, err, sessiond.CodeNotFound)
		_, err = e.validate(c.Token)
		wantCode(t, err, sessiond.CodeEnded)
	})
}

func testCreateRejectsBadInput(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		bound := sessiond.Policy{Name: "bound", TTL: time.Hour, BindDevice: true}
		e := start(t, h, sessiond.Config{Policies: []sessiond.Policy{web(), bound}, MaxMetadata: 64})
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

func testCallerChosenID(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, h, sessiond.Config{})
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

func testLimitPerSubject(t *testing.T, h Harness) {
	run := func(t *testing.T, action sessiond.LimitAction) (ok, rejected int, e *env) {
		p := web()
		p.MaxPerSubject, p.OnLimit = 5, action
		e = start(t, h, sessiond.Config{Policies: []sessiond.Policy{p}})
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
