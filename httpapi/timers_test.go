package httpapi_test

// Tests of time in a synctest bubble: the engine's own timers end idle
// sessions, with no manual clock.

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/httpapi"
	"github.com/sessiond/sessiond/inmem"
)

func TestIdleSessionIsEndedByItsTimerInSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, err := sessiond.New(sessiond.Config{Store: inmem.New(inmem.Options{}), Policies: htPolicies()})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		srv, err := httpapi.New(httpapi.Config{Manager: m, APIKey: htKey})
		if err != nil {
			t.Fatal(err)
		}
		h := srv.Handler()
		serve := func(method, target, body string) htResp {
			t.Helper()
			req := httptest.NewRequest(method, target, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+htKey)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return htResp{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
		}

		r := serve("POST", "/v1/sessions", `{"subject":"alice"}`)
		htWantStatus(t, r, http.StatusCreated)
		c := htDecode[htCreated](t, r)
		start := time.Now()

		// Activity before the idle timeout keeps the session.
		time.Sleep(9 * time.Minute)
		htWantStatus(t, serve("POST", "/v1/sessions/validate", `{"token":"`+c.Token+`"}`), http.StatusOK)

		// Then ten quiet minutes: the timer ends it, without any read.
		time.Sleep(10*time.Minute + time.Second)
		synctest.Wait()
		r = serve("GET", "/v1/stats", "")
		htWantStatus(t, r, http.StatusOK)
		if st := htDecode[htStats](t, r); st.Sessions["ended"] != 1 || st.Sessions["active"] != 0 {
			t.Fatalf("after the idle timeout: got sessions %v, want 1 ended by its timer", st.Sessions)
		}
		r = serve("GET", "/v1/sessions/"+c.ID, "")
		htWantStatus(t, r, http.StatusOK)
		s := htDecode[htSession](t, r)
		if s.State != "ended" || s.EndReason != "idle" {
			t.Errorf("got state %q, end_reason %q; want ended, idle", s.State, s.EndReason)
		}
		if want := start.Add(19 * time.Minute).UTC(); s.EndedAt == nil || !s.EndedAt.Equal(want) {
			t.Errorf("got ended_at %v, want %v (last activity + idle timeout)", s.EndedAt, want)
		}
		htWantError(t, serve("POST", "/v1/sessions/validate", `{"token":"`+c.Token+`"}`), http.StatusGone, sessiond.CodeExpired, "")
	})
}
