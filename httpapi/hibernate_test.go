package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// htRuntime is a session runtime the test controls: it records its calls,
// fails them while failing is set, and holds wakes while gate is set
// until the gate is closed.
type htRuntime struct {
	mu      sync.Mutex
	calls   []string // "<action> <session id>"
	failing bool
	gate    chan struct{}
}

func (r *htRuntime) run(ctx context.Context, c sessiond.RuntimeCall) error {
	r.mu.Lock()
	r.calls = append(r.calls, string(c.Action)+" "+c.Session.ID)
	failing, gate := r.failing, r.gate
	r.mu.Unlock()
	if gate != nil && c.Action == sessiond.RuntimeWake {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if failing {
		return errors.New("no capacity")
	}
	return nil
}

func (r *htRuntime) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func (r *htRuntime) set(f func(*htRuntime)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}

func TestHibernateAndWakeByHand(t *testing.T) {
	rt := &htRuntime{}
	e := htStartWith(t, func(c *sessiond.Config) { c.Runtime = rt.run }, nil)
	c := e.create(`{"subject":"alice","policy":"workspace"}`)
	id := c.ID

	r := e.send("POST", "/v1/sessions/"+id+"/hibernate", "")
	htWantStatus(t, r, http.StatusOK)
	if s := htDecode[htSession](t, r); s.State != "hibernated" || s.Hibernations != 1 || !s.StateSince.Equal(htEpoch) {
		t.Fatalf("after hibernate: %+v", s)
	}
	if got := e.get(id); got.State != "hibernated" || !got.StateSince.Equal(htEpoch) {
		t.Fatalf("GET after hibernate: state %q since %v", got.State, got.StateSince)
	}

	// A validation returns the hibernated session and wakes nothing.
	e.clock.Advance(time.Minute)
	r = e.validate(c.Token)
	htWantStatus(t, r, http.StatusOK)
	if v := htDecode[htValidated](t, r); v.Session.State != "hibernated" {
		t.Fatalf("validated: %+v", v.Session)
	}
	if got := rt.seen(); len(got) != 1 || got[0] != "hibernate "+id {
		t.Fatalf("runtime calls %q, want one hibernate", got)
	}

	// With "wake": true it begins the wake; POST wake waits for it.
	r = e.send("POST", "/v1/sessions/validate", fmt.Sprintf(`{"token":%q,"wake":true}`, c.Token))
	htWantStatus(t, r, http.StatusOK)
	if v := htDecode[htValidated](t, r); v.Session.State != "waking" && v.Session.State != "active" {
		t.Fatalf("validated with wake: %+v", v.Session)
	}
	r = e.send("POST", "/v1/sessions/"+id+"/wake", "")
	htWantStatus(t, r, http.StatusOK)
	if s := htDecode[htSession](t, r); s.State != "active" || !s.StateSince.After(htEpoch) {
		t.Fatalf("after wake: %+v", s)
	}
	if got := rt.seen(); len(got) != 2 || got[1] != "wake "+id {
		t.Fatalf("runtime calls %q, want hibernate then one wake", got)
	}

	// Waking an awake session returns it; hibernating one with a
	// connection is refused.
	r = e.send("POST", "/v1/sessions/"+id+"/wake", "")
	htWantStatus(t, r, http.StatusOK)
	conn := e.addConn(id, "vnc")
	if conn.State != "active" {
		t.Fatalf("registration state %q, want active", conn.State)
	}
	htWantError(t, e.send("POST", "/v1/sessions/"+id+"/hibernate", ""), http.StatusConflict, sessiond.CodeInvalidState, "")

	// A runtime that fails: 502 runtime_failed, and the session is
	// active again.
	htWantStatus(t, e.send("DELETE", "/v1/connections/"+conn.Connection.ID, ""), http.StatusNoContent)
	rt.set(func(r *htRuntime) { r.failing = true })
	htWantError(t, e.send("POST", "/v1/sessions/"+id+"/hibernate", ""), http.StatusBadGateway, sessiond.CodeRuntimeFailed, "")
	if got := e.get(id); got.State != "active" {
		t.Fatalf("after a failed hibernate: %q, want active", got.State)
	}

	htWantError(t, e.send("POST", "/v1/sessions/nope/hibernate", ""), http.StatusNotFound, sessiond.CodeNotFound, "")
	e.revoke(id)
	htWantError(t, e.send("POST", "/v1/sessions/"+id+"/wake", ""), http.StatusGone, sessiond.CodeEnded, "")
}

// A connection registered over REST to a hibernated session wakes it: its
// answer says "waking" and its heartbeats say "active" once the runtime
// answered.
func TestARegisteredConnectionWakesItsSession(t *testing.T) {
	rt := &htRuntime{gate: make(chan struct{})}
	e := htStartWith(t, func(c *sessiond.Config) { c.Runtime = rt.run }, nil)
	id := e.create(`{"subject":"alice","policy":"workspace"}`).ID
	htWantStatus(t, e.send("POST", "/v1/sessions/"+id+"/hibernate", ""), http.StatusOK)

	conn := e.addConn(id, "vnc")
	if conn.State != "waking" {
		t.Fatalf("registration state %q, want waking", conn.State)
	}
	r := e.send("POST", "/v1/connections/"+conn.Connection.ID+"/heartbeat", "")
	htWantStatus(t, r, http.StatusOK)
	if hb := htDecode[htConnResp](t, r); hb.State != "waking" {
		t.Fatalf("heartbeat while the runtime works: %q, want waking", hb.State)
	}
	close(rt.gate)
	htWantStatus(t, e.send("POST", "/v1/sessions/"+id+"/wake", ""), http.StatusOK) // waits for it
	r = e.send("POST", "/v1/connections/"+conn.Connection.ID+"/heartbeat", "")
	htWantStatus(t, r, http.StatusOK)
	if hb := htDecode[htConnResp](t, r); hb.State != "active" {
		t.Fatalf("heartbeat once awake: %q, want active", hb.State)
	}
	if got := rt.seen(); len(got) != 2 || got[1] != "wake "+id {
		t.Fatalf("runtime calls %q, want hibernate then one wake", got)
	}
}
