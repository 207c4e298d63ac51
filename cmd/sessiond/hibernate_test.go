package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/sessiondtest"
	"github.com/sessiond/sessiond/wire"
)

// runtimeHook is a workspace runtime reached over HTTP, as a user would
// write one: it verifies each call with the Standard Webhooks library and
// records it, and answers with status (200 unless the test changes it).
type runtimeHook struct {
	*httptest.Server
	t      *testing.T
	wh     *standardwebhooks.Webhook
	status atomic.Int32
	mu     sync.Mutex
	calls  []hookCall
	// hold, if set, is waited on before answering a call of that action
	// (or until the caller gives up).
	hold map[sessiond.RuntimeAction]chan struct{}
}

type hookCall struct {
	id   string // webhook-id
	body sessiond.RuntimeMessage
}

const hookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func newRuntimeHook(t *testing.T) *runtimeHook {
	h := &runtimeHook{t: t}
	h.status.Store(http.StatusOK)
	var err error
	if h.wh, err = standardwebhooks.NewWebhook(hookSecret); err != nil {
		t.Fatal(err)
	}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if err := h.wh.Verify(b, r.Header); err != nil {
			t.Errorf("a runtime call does not verify: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var m sessiond.RuntimeMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("runtime call %s: %v", b, err)
		}
		h.mu.Lock()
		h.calls = append(h.calls, hookCall{r.Header.Get("webhook-id"), m})
		hold := h.hold[m.Data.Action]
		h.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		w.WriteHeader(int(h.status.Load()))
	}))
	t.Cleanup(h.Close)
	return h
}

// actions lists the actions the hook was called with, retries included.
func (h *runtimeHook) actions() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, c := range h.calls {
		out = append(out, string(c.body.Data.Action))
	}
	return out
}

// holdAction makes calls of the action wait until the returned function
// is called (or their caller gives up).
func (h *runtimeHook) holdAction(a sessiond.RuntimeAction) (release func()) {
	ch := make(chan struct{})
	h.mu.Lock()
	if h.hold == nil {
		h.hold = map[sessiond.RuntimeAction]chan struct{}{}
	}
	h.hold[a] = ch
	h.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.hold, a)
			h.mu.Unlock()
			close(ch)
		})
	}
}

func (h *runtimeHook) last() hookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[len(h.calls)-1]
}

// The walk-through, on a real server with a runtime webhook: a
// workspace whose connection stops its heartbeats hibernates
// hibernate_after later; a WebSocket wakes it and is told when it is
// ready; the CLI hibernates and wakes it by hand; and a runtime that is
// down fails the wake into a hibernated session, with an event.
//
// The server runs on the real clock here (short durations); the timings
// themselves are tested on the engine with synctest (sessiondtest).
func TestHibernationThroughTheServer(t *testing.T) {
	hook := newRuntimeHook(t)
	cfg := testConfig(t)
	cfg.JWT.Secret = testSecret
	cfg.Hooks.Runtime.URL, cfg.Hooks.Runtime.Secret = hook.URL, hookSecret
	cfg.Policies = map[string]PolicyConfig{"workspace": {
		TTL: Duration(time.Hour), IdleTimeout: Duration(10 * time.Minute), HibernateAfter: Duration(time.Second),
		HeartbeatInterval: Duration(300 * time.Millisecond), HeartbeatTimeout: Duration(1500 * time.Millisecond),
		WakeTimeout: Duration(3 * time.Second),
	}}
	testHistory(t, &cfg) // step 4: the history in PostgreSQL
	ts := startServer(t, cfg)
	c := ts.client()
	cli := func(args ...string) string {
		return mustCLI(t, append(args, "--addr", ts.addr, "--data-dir", cfg.DataDir)...)
	}

	// 1. A vnc connection that stops its heartbeats is lost; the session
	// hibernates a second after it left.
	created := create(t, c, "alice")
	id := created.ID
	conn, err := c.AddConnection(t.Context(), id, wire.ConnectionRequest{Kind: "vnc"})
	if err != nil || conn.State != sessiond.StateActive {
		t.Fatalf("register: %+v, %v", conn, err)
	}
	sessiondtest.Eventually(t, "the session hibernated", func() bool {
		s, err := c.Get(t.Context(), id)
		return err == nil && s.State == sessiond.StateHibernated
	})
	if got := hook.actions(); len(got) != 1 || got[0] != "hibernate" {
		t.Fatalf("hook calls %v, want one hibernate", got)
	}
	if call := hook.last(); call.id != call.body.Data.Key || !strings.HasPrefix(call.id, id+".") || call.body.Data.Session.ID != id {
		t.Fatalf("hibernate call id %q body %+v", call.id, call.body)
	}
	out := cli("sessions", "show", id)
	if !hasField(out, "state", "hibernated") || !strings.Contains(out, "state since:") {
		t.Fatalf("sessions show:\n%s", out)
	}

	// 2. A WebSocket wakes it: acked waking, then ready once the hook
	// answered.
	ws, ack := wsConnect(t, "ws://"+ts.addr+"/v1/connect", wsOpts{token: cliToken(t, "alice", "1h"),
		header: http.Header{"X-Session-Token": {created.Token}}})
	if ack.State != "waking" || ack.SessionID != id {
		t.Fatalf("ack %+v, want waking", ack)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, b, err := ws.Read(ctx)
	if err != nil || !strings.Contains(string(b), `"type":"ready"`) {
		t.Fatalf("after the ack: %s, %v; want ready", b, err)
	}
	if s, err := c.Get(t.Context(), id); err != nil || s.State != sessiond.StateActive {
		t.Fatalf("after ready: %v, %v", s, err)
	}
	if got := hook.actions(); len(got) != 2 || got[1] != "wake" {
		t.Fatalf("hook calls %v, want hibernate, wake", got)
	}
	_ = ws.Close(websocket.StatusNormalClosure, "")
	sessiondtest.Eventually(t, "the socket's close reached the session", func() bool {
		s, err := c.Get(t.Context(), id)
		return err == nil && s.ConnCount == 0
	})

	// 3. By hand, with the CLI.
	if out := cli("sessions", "hibernate", id); !strings.Contains(out, "hibernated") {
		t.Fatalf("sessions hibernate: %s", out)
	}
	if out := cli("sessions", "wake", id); !strings.Contains(out, "active") {
		t.Fatalf("sessions wake: %s", out)
	}

	// The runtime down: the wake is retried with one id, then fails; the
	// session is hibernated again, with a wake_failed event.
	if _, err := c.Hibernate(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	hook.status.Store(http.StatusServiceUnavailable)
	before := len(hook.actions())
	if _, err := c.Wake(t.Context(), id); sessiond.ErrorCode(err) != sessiond.CodeRuntimeFailed {
		t.Fatalf("wake with the runtime down: %v, want runtime_failed", err)
	}
	hook.mu.Lock()
	retries := hook.calls[before:]
	hook.mu.Unlock()
	if len(retries) < 2 {
		t.Fatalf("%d wake attempts, want retries", len(retries))
	}
	for _, r := range retries {
		if r.id != retries[0].id || r.body.Data.Action != sessiond.RuntimeWake {
			t.Fatalf("attempt %q %s, want every attempt to be the wake %q", r.id, r.body.Data.Action, retries[0].id)
		}
	}
	s, err := c.Get(t.Context(), id)
	if err != nil || s.State != sessiond.StateHibernated {
		t.Fatalf("after a failed wake: %v, %v; want hibernated", s, err)
	}

	// A slow runtime: a wake it does not answer within wake_timeout fails
	// the same way, and the waiting socket is closed with 4003.
	hook.status.Store(http.StatusOK)
	release := hook.holdAction(sessiond.RuntimeWake)
	ws, ack = wsConnect(t, "ws://"+ts.addr+"/v1/connect", wsOpts{token: cliToken(t, "alice", "1h"),
		header: http.Header{"X-Session-Token": {created.Token}}})
	if ack.State != "waking" {
		t.Fatalf("ack %+v, want waking", ack)
	}
	if code := closeCode(t, ws); code != websocket.StatusCode(wire.CloseWakeFailed) {
		t.Fatalf("a wake past wake_timeout closed the socket with %d, want %d", code, wire.CloseWakeFailed)
	}
	release()
	if s, err := c.Get(t.Context(), id); err != nil || s.State != sessiond.StateHibernated {
		t.Fatalf("after a wake that timed out: %v, %v; want hibernated", s, err)
	}

	// A connect that arrives while the session is going to sleep waits for
	// it to be hibernated, then wakes it: one hibernate, one wake.
	if _, err := c.Wake(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	release = hook.holdAction(sessiond.RuntimeHibernate)
	hibernated := make(chan error, 1)
	go func() {
		_, err := c.Hibernate(context.Background(), id)
		hibernated <- err
	}()
	sessiondtest.Eventually(t, "the session is hibernating, its hook called", func() bool {
		s, err := c.Get(t.Context(), id)
		a := hook.actions()
		return err == nil && s.State == sessiond.StateHibernating && a[len(a)-1] == "hibernate"
	})
	before = len(hook.actions())
	acked := make(chan wire.Connected, 1)
	go func() {
		c, _, err := wsDial(t, "ws://"+ts.addr+"/v1/connect", wsOpts{token: cliToken(t, "alice", "1h"),
			header: http.Header{"X-Session-Token": {created.Token}}})
		if err != nil {
			t.Error(err)
			close(acked)
			return
		}
		ack, err := readAck(c)
		if err != nil {
			t.Error(err)
		}
		acked <- ack
	}()
	release()
	if err := <-hibernated; err != nil {
		t.Fatalf("hibernate with a connect waiting: %v", err)
	}
	if ack := <-acked; ack.State != "waking" {
		t.Fatalf("the connect that waited: ack %+v, want waking", ack)
	}
	sessiondtest.Eventually(t, "the session is awake", func() bool {
		s, err := c.Get(t.Context(), id)
		return err == nil && s.State == sessiond.StateActive
	})
	if got := hook.actions()[before:]; !slices.Equal(got, []string{"wake"}) {
		t.Fatalf("hook calls after the hibernate answered: %v, want one wake", got)
	}

	// 4. The history holds every lifecycle event and every connection:
	// the vnc connection lost to its heartbeats, the sockets.
	want := []sessiond.EventType{sessiond.EventHibernating, sessiond.EventHibernated, sessiond.EventWaking,
		sessiond.EventWoke, sessiond.EventWakeFailed, sessiond.EventConnectionClosed}
	var events []sessiond.Event
	sessiondtest.Eventually(t, "the history caught up", func() bool {
		events = nil
		o := client.HistoryOptions{Limit: 1000}
		for {
			page, err := c.SessionHistory(t.Context(), id, o)
			if err != nil {
				return false
			}
			events = append(events, page.Events...)
			if o.Cursor = page.NextCursor; o.Cursor == "" {
				break
			}
		}
		seen := map[sessiond.EventType]bool{}
		for _, e := range events {
			seen[e.Type] = true
		}
		for _, w := range want {
			if !seen[w] {
				return false
			}
		}
		return true
	})
	var vnc *sessiond.ConnDetail
	for _, e := range events {
		if e.Type == sessiond.EventConnectionClosed && e.Connection == conn.Connection.ID {
			vnc = e.Conn
		}
	}
	if vnc == nil || vnc.Kind != "vnc" || vnc.CloseReason != sessiond.ClosedHeartbeatTimeout || vnc.ClosedAt.Before(vnc.OpenedAt) {
		t.Fatalf("the vnc connection in the history: %+v", vnc)
	}
	out = cli("history", "--subject", "alice", "--since", "1h")
	for _, w := range []string{"hibernated", "woke", "wake_failed", "vnc", "heartbeat_timeout", "websocket"} {
		if !strings.Contains(out, w) {
			t.Errorf("sessiond history --subject alice --since 1h lacks %q:\n%s", w, out)
		}
	}
}
