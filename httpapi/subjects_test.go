package httpapi_test

// Happy-path tests of /v1/subjects/{subject}/sessions: a subject's live
// sessions, listed oldest first, and revoked together.

import (
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/sessiond/sessiond/wire"
)

func TestSubjectSessionsListsOnlyLiveOldestFirst(t *testing.T) {
	e := htStart(t, nil)
	var ids []string
	for range 4 {
		ids = append(ids, e.createFor("alice").ID)
		e.clock.Advance(time.Second)
	}
	e.createFor("bob")
	e.revoke(ids[1])

	r := e.send("GET", "/v1/subjects/alice/sessions", "")
	htWantStatus(t, r, http.StatusOK)
	got := htDecode[htList](t, r)
	want := []string{ids[0], ids[2], ids[3]}
	if !slices.Equal(htIDs(got.Sessions), want) {
		t.Errorf("got %v, want %v (live only, oldest first)", htIDs(got.Sessions), want)
	}
	if got.NextCursor != "" {
		t.Errorf("got next_cursor %q, want none", got.NextCursor)
	}

	r = e.send("GET", "/v1/subjects/nobody/sessions", "")
	htWantStatus(t, r, http.StatusOK)
	if got, want := string(bytes.TrimSpace(r.body)), `{"sessions":[]}`; got != want {
		t.Errorf("subject with no sessions: got %s, want %s", got, want)
	}
}

func TestSubjectInPathIsUnescaped(t *testing.T) {
	e := htStart(t, nil)
	c := e.createFor("team/alice smith")
	r := e.send("GET", "/v1/subjects/"+url.PathEscape("team/alice smith")+"/sessions", "")
	htWantStatus(t, r, http.StatusOK)
	if got := htIDs(htDecode[htList](t, r).Sessions); !slices.Equal(got, []string{c.ID}) {
		t.Errorf("got %v, want [%s]", got, c.ID)
	}
}

func TestRevokeSubjectSessionsReturnsCount(t *testing.T) {
	e := htStart(t, nil)
	a := []string{e.createFor("alice").ID, e.createFor("alice").ID, e.createFor("alice").ID}
	b := e.createFor("bob")
	e.revoke(a[0]) // already ended: not counted

	r := e.send("DELETE", "/v1/subjects/alice/sessions", "")
	htWantStatus(t, r, http.StatusOK)
	if got := string(bytes.TrimSpace(r.body)); got != `{"revoked":2}` {
		t.Errorf("got %s, want {\"revoked\":2}", got)
	}
	for _, id := range a {
		if s := e.get(id); s.State != "ended" || s.EndReason != "revoked" {
			t.Errorf("session %s: got state %q, end_reason %q; want ended, revoked", id, s.State, s.EndReason)
		}
	}
	if s := e.get(b.ID); s.State != "active" {
		t.Errorf("another subject's session: got state %q, want active", s.State)
	}

	// Again: nothing left to revoke.
	r = e.send("DELETE", "/v1/subjects/alice/sessions", "")
	htWantStatus(t, r, http.StatusOK)
	if got := htDecode[wire.RevokeSubjectResponse](t, r); got.Revoked != 0 {
		t.Errorf("second revoke: got revoked %d, want 0", got.Revoked)
	}
}
