package httpapi_test

// Happy-path tests of GET /v1/sessions: filters by subject and state, the
// empty list, and pagination that returns every session exactly once.

import (
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"testing"
)

func TestListFiltersBySubjectAndState(t *testing.T) {
	e := htStart(t, nil)
	a1, a2, a3 := e.createFor("alice"), e.createFor("alice"), e.createFor("alice")
	b1 := e.createFor("bob")
	e.revoke(a2.ID)

	for _, tc := range []struct {
		name  string
		query url.Values
		want  []string
	}{
		{"all", url.Values{}, []string{a1.ID, a2.ID, a3.ID, b1.ID}},
		{"subject", url.Values{"subject": {"alice"}}, []string{a1.ID, a2.ID, a3.ID}},
		{"state active", url.Values{"state": {"active"}}, []string{a1.ID, a3.ID, b1.ID}},
		{"state ended", url.Values{"state": {"ended"}}, []string{a2.ID}},
		{"subject and state", url.Values{"subject": {"alice"}, "state": {"active"}}, []string{a1.ID, a3.ID}},
		{"subject with no sessions", url.Values{"subject": {"nobody"}}, nil},
		{"state with no sessions", url.Values{"state": {"hibernated"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			got, _ := e.listAll(tc.query)
			htSameSet(t, "list "+tc.query.Encode(), htIDs(got), tc.want)
			for _, s := range got {
				if sub := tc.query.Get("subject"); sub != "" && s.Subject != sub {
					t.Errorf("session %s has subject %q, want %q", s.ID, s.Subject, sub)
				}
				if st := tc.query.Get("state"); st != "" && s.State != st {
					t.Errorf("session %s has state %q, want %q", s.ID, s.State, st)
				}
			}
		})
	}
}

func TestListEmptyIsArrayNotNull(t *testing.T) {
	e := htStart(t, nil)
	r := e.send("GET", "/v1/sessions", "")
	htWantStatus(t, r, http.StatusOK)
	if got, want := string(bytes.TrimSpace(r.body)), `{"sessions":[]}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestListPaginatesEverySessionExactlyOnce(t *testing.T) {
	e := htStart(t, nil)
	var alice, bob, all, active []string
	for i := range 23 {
		c := e.createFor("alice")
		alice = append(alice, c.ID)
		all = append(all, c.ID)
		if i%4 == 0 {
			e.revoke(c.ID)
		} else {
			active = append(active, c.ID)
		}
	}
	for range 9 {
		c := e.createFor("bob")
		bob = append(bob, c.ID)
		all = append(all, c.ID)
		active = append(active, c.ID)
	}

	for _, tc := range []struct {
		name      string
		query     url.Values
		want      []string
		wantPages int // at least
	}{
		{"all sessions, 5 a page", url.Values{"limit": {"5"}}, all, 7},
		{"one subject, 4 a page", url.Values{"subject": {"alice"}, "limit": {"4"}}, alice, 6},
		{"other subject, 2 a page", url.Values{"subject": {"bob"}, "limit": {"2"}}, bob, 5},
		{"active, 3 a page", url.Values{"state": {"active"}, "limit": {"3"}}, active, 9},
		{"one a page", url.Values{"limit": {"1"}}, all, len(all)},
		{"all on one page", url.Values{"limit": {"1000"}}, all, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			got, pages := e.listAll(tc.query)
			htSameSet(t, tc.name, htIDs(got), tc.want)
			if pages < tc.wantPages {
				t.Errorf("got %d pages, want at least %d", pages, tc.wantPages)
			}
			if !slices.IsSorted(htIDs(got)) {
				t.Errorf("pages are not in id order: %v", htIDs(got))
			}
		})
	}
}
