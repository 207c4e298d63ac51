package ws_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/sessiondtest"
	"github.com/sessiond/sessiond/wire"
	"github.com/sessiond/sessiond/ws"
)

// wantRefused dials and wants an HTTP answer before the upgrade.
func (e *wsEnv) wantRefused(subject, query string, h http.Header, status int, code sessiond.Code) *http.Response {
	e.t.Helper()
	_, resp, err := e.dial(e.token(subject, time.Hour), query, h)
	if err == nil || resp == nil || resp.StatusCode != status {
		e.t.Fatalf("dial %s %s: %v, %v; want HTTP %d", subject, query, err, resp, status)
	}
	if got := errorCode(e.t, resp); got != code {
		e.t.Fatalf("dial %s %s: code %q, want %q", subject, query, got, code)
	}
	return resp
}

// One client address may make ConnectsPerAddress handshakes a second; over
// that it gets 429 rate_limited with Retry-After, and other addresses are
// not affected.
func TestConnectRatePerAddress(t *testing.T) {
	e := newEnv(t, ws.Config{ConnectsPerAddress: 3, ConnectsPerSubject: 100,
		ClientIP: func(r *http.Request) string { return r.Header.Get("X-Test-Address") }})
	from := func(ip string) http.Header { return http.Header{"X-Test-Address": {ip}} }
	for i := range 3 {
		e.mustDial(fmt.Sprint("user-", i), "device_id=d", from("198.51.100.1")).ack()
	}
	resp := e.wantRefused("user-9", "device_id=d", from("198.51.100.1"), http.StatusTooManyRequests, sessiond.CodeRateLimited)
	if resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q, want 1", resp.Header.Get("Retry-After"))
	}
	e.mustDial("user-9", "device_id=d", from("198.51.100.2")).ack() // another address
	e.clock.Advance(time.Second)
	e.mustDial("user-9", "device_id=d", from("198.51.100.1")).ack() // the next second
	if st := e.edge.Stats(); st.RefusedRate != 1 {
		t.Fatalf("refused_rate %d, want 1", st.RefusedRate)
	}
}

// An IPv6 client is counted by its /64, all of which one subscriber can
// use: new addresses within it share the limit; another /64 does not. A
// client whose address is unknown is not counted under a shared key.
func TestConnectRatePerIPv6Network(t *testing.T) {
	e := newEnv(t, ws.Config{ConnectsPerAddress: 2, ConnectsPerSubject: 100,
		ClientIP: func(r *http.Request) string { return r.Header.Get("X-Test-Address") }})
	from := func(ip string) http.Header { return http.Header{"X-Test-Address": {ip}} }
	e.mustDial("user-1", "device_id=d", from("2001:db8:1:2::1")).ack()
	e.mustDial("user-2", "device_id=d", from("2001:db8:1:2::2")).ack()
	e.wantRefused("user-3", "device_id=d", from("2001:db8:1:2:ffff::3"), http.StatusTooManyRequests, sessiond.CodeRateLimited)
	e.mustDial("user-3", "device_id=d", from("2001:db8:1:3::1")).ack() // another /64
	for i := range 3 {
		e.mustDial(fmt.Sprint("nowhere-", i), "device_id=d", from("")).ack()
	}
}

// One subject may make ConnectsPerSubject handshakes a second.
func TestConnectRatePerSubject(t *testing.T) {
	e := newEnv(t, ws.Config{ConnectsPerSubject: 2, ConnectsPerAddress: 100})
	e.mustDial("alice", "device_id=a", nil).ack()
	e.mustDial("alice", "device_id=b", nil).ack()
	e.wantRefused("alice", "device_id=c", nil, http.StatusTooManyRequests, sessiond.CodeRateLimited)
	e.mustDial("bob", "device_id=a", nil).ack()
	e.clock.Advance(time.Second)
	e.mustDial("alice", "device_id=c", nil).ack()
}

// A node holds at most MaxSockets sockets: over that, handshakes get 503
// and are counted, so that WebSockets never take the descriptors REST and
// health checks need. A socket that closes frees its place.
func TestMaxSockets(t *testing.T) {
	e := newEnv(t, ws.Config{MaxSockets: 3, ConnectsPerSubject: 100, ConnectsPerAddress: 100})
	var held []*client
	for i := range 3 {
		c := e.mustDial(fmt.Sprint("user-", i), "device_id=d", nil)
		c.ack()
		held = append(held, c)
	}
	resp := e.wantRefused("user-9", "device_id=d", nil, http.StatusServiceUnavailable, sessiond.CodeUnavailable)
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After on a refusal for capacity")
	}
	if st := e.edge.Stats(); st.RefusedFull != 1 || st.Open != 3 {
		t.Fatalf("refused_full %d, open %d; want 1 and 3", st.RefusedFull, st.Open)
	}
	_ = held[0].c.Close(websocket.StatusNormalClosure, "")
	sessiondtest.Eventually(e.t, "a place freed", func() bool { return e.edge.Open() == 2 })
	// Refused handshakes (bad credentials) take the free place and give it
	// back.
	for range 5 {
		if _, resp, err := e.dial("not-a-jwt", "device_id=d", nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a bad credential below capacity: %v %v; want 401", err, resp)
		}
	}
	e.mustDial("user-9", "device_id=d", nil).ack()
	if _, resp, err := e.dial("not-a-jwt", "", nil); err == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("over capacity again: %v %v", err, resp)
	}
}

// A holder of a valid credential cannot create sessions without bound by
// connecting with ever new device ids: the connect policy's per-subject
// cap (DefaultMaxPerSubject) refuses the one over it.
func TestNewDevicesStopAtTheSubjectsCap(t *testing.T) {
	e := newEnv(t, unlimited)
	for i := range sessiond.DefaultMaxPerSubject {
		e.mustDial("mallory", fmt.Sprint("device_id=d", i), nil).ack()
	}
	e.wantRefused("mallory", "device_id=one-more", nil, http.StatusConflict, sessiond.CodeLimitReached)
	e.mustDial("alice", "device_id=d0", nil).ack() // others are not affected
}

// errorCode reads the error code of a JSON error answer.
func errorCode(t testing.TB, resp *http.Response) sessiond.Code {
	t.Helper()
	var body wire.ErrorBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("error body: %v", err)
	}
	return body.Error.Code
}
