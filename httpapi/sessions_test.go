package httpapi_test

// Happy-path tests of one session's routes: create, validate, get, rotate
// and revoke.

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

func TestCreateReturns201WithIDTokenSessionLocationAndNoStore(t *testing.T) {
	e := htStart(t, nil)
	r := e.send("POST", "/v1/sessions", `{"subject":"alice"}`)
	htWantStatus(t, r, http.StatusCreated)
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("got Cache-Control %q, want no-store", got)
	}
	if got := r.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("got Content-Type %q, want application/json", got)
	}
	c := htDecode[htCreated](t, r)
	if c.ID == "" || c.ID != c.Session.ID {
		t.Errorf("got id %q and session.id %q, want the same non-empty id", c.ID, c.Session.ID)
	}
	if got, want := r.header.Get("Location"), "/v1/sessions/"+c.ID; got != want {
		t.Errorf("got Location %q, want %q", got, want)
	}
	if !strings.HasPrefix(c.Token, "sd_") || !strings.HasSuffix(c.Token, "."+c.ID) || len(c.Token) != 3+48+1+len(c.ID) {
		t.Errorf("got token %q, want sd_, 48 characters, a dot and the session id", c.Token)
	}
	if id, _, err := sessiond.ParseToken(c.Token); err != nil || id != c.ID {
		t.Errorf("token parses to session %q, %v; want %q", id, err, c.ID)
	}
	s := c.Session
	if s.Subject != "alice" || s.Policy != "web" || s.State != "active" || s.Version != 1 || s.Generation != 0 {
		t.Errorf("got session %+v, want subject alice, policy web, state active, version 1, generation 0", s)
	}
	if !s.CreatedAt.Equal(htEpoch) || !s.LastActive.Equal(htEpoch) {
		t.Errorf("got created_at %v, last_active_at %v, want both %v", s.CreatedAt, s.LastActive, htEpoch)
	}
	if s.ExpiresAt == nil || !s.ExpiresAt.Equal(htEpoch.Add(time.Hour)) {
		t.Errorf("got expires_at %v, want %v (policy ttl)", s.ExpiresAt, htEpoch.Add(time.Hour))
	}
	if s.IdleTimeout != "10m0s" {
		t.Errorf("got idle_timeout %q, want 10m0s", s.IdleTimeout)
	}
	if s.EndReason != "" || s.EndedAt != nil || s.RotatedAt != nil {
		t.Errorf("new session has end_reason %q, ended_at %v, rotated_at %v; want none", s.EndReason, s.EndedAt, s.RotatedAt)
	}

	// The Location header names the session.
	if got := e.get(c.ID); got.ID != c.ID {
		t.Errorf("GET Location: got id %q, want %q", got.ID, c.ID)
	}
}

func TestCreateKeepsDeviceMetadataPolicyAndNarrowedTimeouts(t *testing.T) {
	e := htStart(t, nil)
	c := e.create(`{
		"id": "sdk-session:42",
		"subject": "bob@example.com",
		"device": {"id": "phone-1", "type": "ios", "name": "Bob's phone", "ip": "2001:db8::1", "user_agent": "App/1.0"},
		"metadata": { "plan" : "pro", "seats": [1, 2] },
		"policy": "web",
		"ttl": "30m",
		"idle_timeout": "5m"
	}`)
	if c.ID != "sdk-session:42" {
		t.Errorf("got id %q, want the caller's sdk-session:42", c.ID)
	}
	s := c.Session
	wantDev := sessiond.Device{ID: "phone-1", Type: "ios", Name: "Bob's phone", IP: "2001:db8::1", UserAgent: "App/1.0"}
	if s.Device == nil || *s.Device != wantDev {
		t.Errorf("got device %+v, want %+v", s.Device, wantDev)
	}
	if got, want := string(s.Metadata), `{"plan":"pro","seats":[1,2]}`; got != want {
		t.Errorf("got metadata %s, want %s (compacted)", got, want)
	}
	if s.ExpiresAt == nil || !s.ExpiresAt.Equal(htEpoch.Add(30*time.Minute)) {
		t.Errorf("got expires_at %v, want %v (ttl override)", s.ExpiresAt, htEpoch.Add(30*time.Minute))
	}
	if s.IdleTimeout != "5m0s" {
		t.Errorf("got idle_timeout %q, want 5m0s (override)", s.IdleTimeout)
	}
	// And a GET shows the same.
	got := e.get(c.ID)
	if got.Device == nil || *got.Device != wantDev || string(got.Metadata) != string(s.Metadata) || got.Subject != "bob@example.com" {
		t.Errorf("GET: got %+v, want the created session %+v", got, s)
	}
}

func TestCreateUnderNamedPolicy(t *testing.T) {
	e := htStart(t, nil)
	c := e.create(`{"subject":"carol","policy":"plain"}`)
	if c.Session.Policy != "plain" {
		t.Errorf("got policy %q, want plain", c.Session.Policy)
	}
	if c.Session.IdleTimeout != "" {
		t.Errorf("got idle_timeout %q, want none (plain has no idle timeout)", c.Session.IdleTimeout)
	}
}

func TestValidateReturnsSessionAndNoTokenBeforeRotateAfter(t *testing.T) {
	e := htStart(t, nil)
	c := e.createFor("alice")
	e.clock.Advance(2 * time.Minute) // past touch_interval, before rotate_after
	r := e.validate(c.Token)
	htWantStatus(t, r, http.StatusOK)
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("got Cache-Control %q, want no-store", got)
	}
	v := htDecode[htValidated](t, r)
	if v.Token != "" {
		t.Errorf("got a token %q before rotate_after, want none", v.Token)
	}
	if strings.Contains(string(r.body), `"token"`) {
		t.Errorf("validate response has a token field without a rotation: %s", r)
	}
	if v.Session.ID != c.ID || v.Session.State != "active" || v.Session.Generation != 0 {
		t.Errorf("got session %+v, want %s active generation 0", v.Session, c.ID)
	}
	if want := htEpoch.Add(2 * time.Minute); !v.Session.LastActive.Equal(want) {
		t.Errorf("got last_active_at %v, want %v (validation is activity)", v.Session.LastActive, want)
	}
}

func TestValidateAfterRotateAfterReturnsNewToken(t *testing.T) {
	e := htStart(t, nil)
	c := e.createFor("alice")
	e.clock.Advance(6 * time.Minute) // rotate_after is 5m

	r := e.validate(c.Token)
	htWantStatus(t, r, http.StatusOK)
	v := htDecode[htValidated](t, r)
	if v.Token == "" || v.Token == c.Token {
		t.Fatalf("got token %q, want a new token past rotate_after", v.Token)
	}
	if v.Session.Generation != 1 || v.Session.RotatedAt == nil || !v.Session.RotatedAt.Equal(htEpoch.Add(6*time.Minute)) {
		t.Errorf("got generation %d, rotated_at %v; want 1 and %v", v.Session.Generation, v.Session.RotatedAt, htEpoch.Add(6*time.Minute))
	}
	// The new token works and is not rotated again.
	r = e.validate(v.Token)
	htWantStatus(t, r, http.StatusOK)
	if again := htDecode[htValidated](t, r); again.Token != "" || again.Session.ID != c.ID {
		t.Errorf("validating the new token: got token %q, session %q; want no token, session %s", again.Token, again.Session.ID, c.ID)
	}
	// The old token still works within the rotation grace, without a new token.
	r = e.validate(c.Token)
	htWantStatus(t, r, http.StatusOK)
	if old := htDecode[htValidated](t, r); old.Token != "" {
		t.Errorf("old token within grace got a new token %q, want none", old.Token)
	}
}

func TestGetSessionByID(t *testing.T) {
	e := htStart(t, nil)
	c := e.create(`{"subject":"alice","metadata":{"a":1}}`)
	r := e.send("GET", "/v1/sessions/"+c.ID, "")
	htWantStatus(t, r, http.StatusOK)
	if got := r.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("got Content-Type %q, want application/json", got)
	}
	s := htDecode[htSession](t, r)
	if s.ID != c.ID || s.Subject != "alice" || s.State != "active" || string(s.Metadata) != `{"a":1}` || s.Version != 1 {
		t.Errorf("got %+v, want the created session %+v", s, c.Session)
	}
}

func TestRotateIssuesNewTokenAndIncrementsGeneration(t *testing.T) {
	e := htStart(t, nil)
	c := e.createFor("alice")
	e.clock.Advance(time.Second)

	r := e.send("POST", "/v1/sessions/"+c.ID+"/rotate", "")
	htWantStatus(t, r, http.StatusOK)
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("got Cache-Control %q, want no-store", got)
	}
	v := htDecode[htValidated](t, r)
	if v.Token == "" || v.Token == c.Token {
		t.Fatalf("got token %q, want a new one", v.Token)
	}
	if v.Session.Generation != c.Session.Generation+1 {
		t.Errorf("got generation %d, want %d", v.Session.Generation, c.Session.Generation+1)
	}
	if v.Session.Version <= c.Session.Version {
		t.Errorf("got version %d, want more than %d", v.Session.Version, c.Session.Version)
	}
	if v.Session.RotatedAt == nil || !v.Session.RotatedAt.Equal(htEpoch.Add(time.Second)) {
		t.Errorf("got rotated_at %v, want %v", v.Session.RotatedAt, htEpoch.Add(time.Second))
	}

	// Rotating again moves on one more generation.
	r = e.send("POST", "/v1/sessions/"+c.ID+"/rotate", "")
	htWantStatus(t, r, http.StatusOK)
	if v2 := htDecode[htValidated](t, r); v2.Session.Generation != 2 || v2.Token == v.Token {
		t.Errorf("second rotate: got generation %d, token reused %v; want 2 and a fresh token", v2.Session.Generation, v2.Token == v.Token)
	}
}

func TestRevokeEndsSessionAndIsIdempotent(t *testing.T) {
	e := htStart(t, nil)
	c := e.createFor("alice")
	e.clock.Advance(time.Second)

	r := e.send("DELETE", "/v1/sessions/"+c.ID, "")
	htWantStatus(t, r, http.StatusNoContent)
	if len(r.body) != 0 {
		t.Errorf("204 has a body: %q", r.body)
	}

	s := e.get(c.ID)
	if s.State != "ended" || s.EndReason != "revoked" {
		t.Errorf("after revoke: got state %q, end_reason %q; want ended, revoked", s.State, s.EndReason)
	}
	if s.EndedAt == nil || !s.EndedAt.Equal(htEpoch.Add(time.Second)) {
		t.Errorf("got ended_at %v, want %v", s.EndedAt, htEpoch.Add(time.Second))
	}

	// Revoking again changes nothing and still answers 204.
	r = e.send("DELETE", "/v1/sessions/"+c.ID, "")
	htWantStatus(t, r, http.StatusNoContent)
	if again := e.get(c.ID); again.Version != s.Version || again.EndReason != "revoked" {
		t.Errorf("second revoke changed the session: version %d -> %d, end_reason %q", s.Version, again.Version, again.EndReason)
	}
}
