package httpapi_test

// Tests of small defects found in use: each failed before its fix.

import (
	"net/http"
	"testing"

	"github.com/sessiond/sessiond"
)

// A path with . or .. segments (or an empty one) gets a 400 JSON error,
// not the router's redirect to the cleaned path.
func TestUncleanPathsAreRefused(t *testing.T) {
	e := htStart(t, nil)
	for _, path := range []string{"/v1/sessions/../stats", "/v1/./stats", "/v1//stats", "/v1/sessions/..", "/healthz/."} {
		r := e.send("GET", path, "")
		htWantError(t, r, http.StatusBadRequest, sessiond.CodeInvalidArgument, "path")
		if loc := r.header.Get("Location"); loc != "" {
			t.Errorf("%s: redirected to %s", path, loc)
		}
	}
}

// GET /v1/subjects/{s}/sessions?state= filters by state (ended sessions
// too), where it used to ignore state and list the live ones.
func TestSubjectSessionsByState(t *testing.T) {
	e := htStart(t, nil)
	live := e.createFor("alice")
	gone := e.createFor("alice")
	e.revoke(gone.ID)
	e.createFor("bob")
	ids := func(path string) []string {
		t.Helper()
		r := e.send("GET", path, "")
		htWantStatus(t, r, http.StatusOK)
		var out []string
		for _, s := range htDecode[htList](t, r).Sessions {
			out = append(out, s.ID)
		}
		return out
	}
	if got := ids("/v1/subjects/alice/sessions?state=ended"); len(got) != 1 || got[0] != gone.ID {
		t.Fatalf("state=ended: %v, want [%s]", got, gone.ID)
	}
	if got := ids("/v1/subjects/alice/sessions?state=active"); len(got) != 1 || got[0] != live.ID {
		t.Fatalf("state=active: %v, want [%s]", got, live.ID)
	}
	if got := ids("/v1/subjects/alice/sessions"); len(got) != 1 || got[0] != live.ID {
		t.Fatalf("no state: %v, want the live one", got)
	}
	htWantError(t, e.send("GET", "/v1/subjects/alice/sessions?state=asleep", ""), http.StatusBadRequest, sessiond.CodeInvalidArgument, "state")
	htWantError(t, e.send("GET", "/v1/subjects/alice/sessions?limit=5", ""), http.StatusBadRequest, sessiond.CodeInvalidArgument, "limit")
}

// ?after=0 replays the retained log, as the OpenAPI says; no after starts
// from now.
func TestEventsAfterZeroReplays(t *testing.T) {
	e := htStart(t, nil)
	c := e.createFor("alice")
	st := e.openEvents("?after=0", nil)
	htWantEvents(t, st, 0, [2]string{"created", c.ID})
}
