package httpapi_test

// Tests of domain errors and routing errors: each answers its documented
// status and error code (404, 410, 403, 409, 405).

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/wire"
)

func TestUnknownSessionIs404SessionNotFound(t *testing.T) {
	e := htStart(t, nil)
	for _, tc := range []struct{ name, method, path, body string }{
		{"get", "GET", "/v1/sessions/no-such-session", ""},
		{"revoke", "DELETE", "/v1/sessions/no-such-session", ""},
		{"rotate", "POST", "/v1/sessions/no-such-session/rotate", ""},
		{"validate well-formed unknown token", "POST", "/v1/sessions/validate", `{"token":"` + htUnknownToken() + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			htWantError(t, e.send(tc.method, tc.path, tc.body), http.StatusNotFound, sessiond.CodeNotFound, "")
		})
	}
}

// htUnknownToken is a well-formed token (right prefix, length, checksum)
// that no server issued, of a session that does not exist.
func htUnknownToken() string {
	tok, _ := sessiond.NewToken("no-such-session")
	return tok
}

func TestValidateAfterTTLIs410SessionExpired(t *testing.T) {
	e := htStart(t, nil)
	c := e.create(`{"subject":"alice","policy":"plain"}`)
	e.clock.Advance(time.Hour) // exactly the ttl

	htWantError(t, e.validate(c.Token), http.StatusGone, sessiond.CodeExpired, "")
	if s := e.get(c.ID); s.State != "ended" || s.EndReason != "expired" {
		t.Errorf("got state %q, end_reason %q; want ended, expired", s.State, s.EndReason)
	}
}

func TestReadsDoNotShowExpiredSessionAsLiveBeforeItsTimerFires(t *testing.T) {
	e := htStart(t, nil)
	c := e.create(`{"subject":"alice","policy":"plain"}`)
	e.clock.Jump(time.Hour + time.Second) // past the ttl, timers have not run

	if s := e.get(c.ID); s.State != "ended" || s.EndReason != "expired" {
		t.Errorf("GET: got state %q, end_reason %q; want ended, expired", s.State, s.EndReason)
	}
	r := e.send("GET", "/v1/subjects/alice/sessions", "")
	htWantStatus(t, r, http.StatusOK)
	if got := htDecode[htList](t, r).Sessions; len(got) != 0 {
		t.Errorf("subject list shows %d sessions past their ttl, want none", len(got))
	}
	htWantError(t, e.validate(c.Token), http.StatusGone, sessiond.CodeExpired, "")
}

func TestValidateAfterIdleTimeoutIs410SessionExpired(t *testing.T) {
	e := htStart(t, nil)
	c := e.createFor("alice")
	e.clock.Advance(10 * time.Minute) // the web policy's idle timeout

	htWantError(t, e.validate(c.Token), http.StatusGone, sessiond.CodeExpired, "")
	if s := e.get(c.ID); s.EndReason != "idle" {
		t.Errorf("got end_reason %q, want idle", s.EndReason)
	}
}

func TestValidateAfterRevokeIs410SessionEnded(t *testing.T) {
	e := htStart(t, nil)
	c := e.createFor("alice")
	e.revoke(c.ID)
	htWantError(t, e.validate(c.Token), http.StatusGone, sessiond.CodeEnded, "")
	// Rotating an ended session fails the same way.
	htWantError(t, e.send("POST", "/v1/sessions/"+c.ID+"/rotate", ""), http.StatusGone, sessiond.CodeEnded, "")
}

func TestValidateFromOtherDeviceIs403DeviceMismatch(t *testing.T) {
	e := htStart(t, nil)
	c := e.create(`{"subject":"alice","policy":"bound","device":{"id":"phone-1"}}`)

	for _, tc := range []struct{ name, body string }{
		{"other device", `{"token":"` + c.Token + `","device":{"id":"laptop-9"}}`},
		{"no device", `{"token":"` + c.Token + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			htWantError(t, e.send("POST", "/v1/sessions/validate", tc.body), http.StatusForbidden, sessiond.CodeDeviceMismatch, "")
		})
	}
	// The mismatch does not touch the session, and the right device works.
	if s := e.get(c.ID); s.State != "active" || s.Version != 1 {
		t.Errorf("after mismatches: got state %q, version %d; want active, 1", s.State, s.Version)
	}
	r := e.send("POST", "/v1/sessions/validate", `{"token":"`+c.Token+`","device":{"id":"phone-1","type":"ios"}}`)
	htWantStatus(t, r, http.StatusOK)
}

func TestOldTokenAfterRotationGraceIs403TokenReusedAndEndsSession(t *testing.T) {
	e := htStart(t, nil)
	c := e.createFor("alice")
	r := e.send("POST", "/v1/sessions/"+c.ID+"/rotate", "")
	htWantStatus(t, r, http.StatusOK)
	fresh := htDecode[htValidated](t, r).Token

	e.clock.Advance(30 * time.Second) // the rotation grace
	htWantError(t, e.validate(c.Token), http.StatusForbidden, sessiond.CodeTokenReused, "")

	if s := e.get(c.ID); s.State != "ended" || s.EndReason != "rotated_reuse" {
		t.Errorf("got state %q, end_reason %q; want ended, rotated_reuse", s.State, s.EndReason)
	}
	// Theft ends the session for the new token's holder too.
	htWantError(t, e.validate(fresh), http.StatusGone, sessiond.CodeEnded, "")
}

func TestCreateOverRejectingLimitIs409LimitReached(t *testing.T) {
	e := htStart(t, nil)
	first := e.create(`{"subject":"alice","policy":"capped"}`)
	htWantError(t, e.send("POST", "/v1/sessions", `{"subject":"alice","policy":"capped"}`), http.StatusConflict, sessiond.CodeLimitReached, "")
	// Other subjects are not affected, and ending the first frees the place.
	e.create(`{"subject":"bob","policy":"capped"}`)
	e.revoke(first.ID)
	e.create(`{"subject":"alice","policy":"capped"}`)
}

func TestCreateOverEvictingLimitEndsOldest(t *testing.T) {
	e := htStart(t, nil)
	oldest := e.create(`{"subject":"alice","policy":"evict"}`)
	e.clock.Advance(time.Second)
	second := e.create(`{"subject":"alice","policy":"evict"}`)
	e.clock.Advance(time.Second)
	third := e.create(`{"subject":"alice","policy":"evict"}`)

	if !slices.Equal(third.Evicted, []string{oldest.ID}) {
		t.Errorf("got evicted %v, want [%s]", third.Evicted, oldest.ID)
	}
	if second.Evicted != nil {
		t.Errorf("create under the limit reported evicted %v", second.Evicted)
	}
	if s := e.get(oldest.ID); s.State != "ended" || s.EndReason != "evicted" {
		t.Errorf("oldest: got state %q, end_reason %q; want ended, evicted", s.State, s.EndReason)
	}
	htWantError(t, e.validate(oldest.Token), http.StatusGone, sessiond.CodeEnded, "")
}

func TestCreateWithTakenIDIs409SessionExists(t *testing.T) {
	e := htStart(t, nil)
	first := e.create(`{"id":"chosen-1","subject":"alice"}`)
	htWantError(t, e.send("POST", "/v1/sessions", `{"id":"chosen-1","subject":"bob"}`), http.StatusConflict, sessiond.CodeExists, "")
	// Also once the first has ended: ids are not reused while readable.
	e.revoke(first.ID)
	htWantError(t, e.send("POST", "/v1/sessions", `{"id":"chosen-1","subject":"alice"}`), http.StatusConflict, sessiond.CodeExists, "")
	if s := e.get("chosen-1"); s.Subject != "alice" {
		t.Errorf("the failed create changed the session: subject %q, want alice", s.Subject)
	}
}

func TestUnknownRouteIs404NotFound(t *testing.T) {
	e := htStart(t, nil)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/"},
		{"GET", "/v2/sessions"},
		{"GET", "/v1/nothing"},
		{"GET", "/v1/sessions/abc/def"},
		{"POST", "/v1/sessions/abc/revive"},
		{"GET", "/v1/subjects/alice"},
		{"DELETE", "/v1"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			e := e.in(t)
			r := e.send(tc.method, tc.path, "")
			htWantError(t, r, http.StatusNotFound, wire.CodeRouteNotFound, "")
			if a := r.header.Get("Allow"); a != "" {
				t.Errorf("404 has an Allow header %q", a)
			}
		})
	}
}

func TestWrongMethodIs405WithAllow(t *testing.T) {
	e := htStart(t, nil)
	for _, tc := range []struct{ method, path, allow string }{
		{"PUT", "/v1/sessions", "GET, POST"},
		{"DELETE", "/v1/sessions", "GET, POST"},
		{"PATCH", "/v1/sessions/abc", "GET, DELETE"},
		{"GET", "/v1/sessions/abc/rotate", "POST"},
		{"PUT", "/v1/subjects/alice/sessions", "GET, DELETE"},
		{"POST", "/v1/stats", "GET"},
		{"POST", "/v1/events", "GET"},
		{"DELETE", "/healthz", "GET"},
		{"POST", "/readyz", "GET"},
		// {id} also matches "validate": GET and DELETE name a session.
		{"OPTIONS", "/v1/sessions/validate", "GET, POST, DELETE"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			e := e.in(t)
			r := e.send(tc.method, tc.path, "")
			htWantError(t, r, http.StatusMethodNotAllowed, wire.CodeMethodNotAllowed, "")
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Errorf("got Allow %q, want %q", got, tc.allow)
			}
		})
	}
}
