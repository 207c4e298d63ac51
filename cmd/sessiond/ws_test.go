package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.yaml.in/yaml/v3"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/sessiondtest"
	"github.com/sessiond/sessiond/wire"
)

const testSecret = "an-hs256-secret-of-at-least-32-bytes!"

// cliToken is a credential for subject signed with testSecret, as
// `sessiond token` prints it; ttl is its --ttl ("": the command's default).
func cliToken(t *testing.T, subject, ttl string) string {
	t.Helper()
	args := []string{"token", "--subject", subject, "--jwt-secret", testSecret}
	if ttl != "" {
		args = append(args, "--ttl", ttl)
	}
	return strings.TrimSpace(mustCLI(t, args...))
}

// wsOpts is how a test makes a WebSocket handshake.
type wsOpts struct {
	token  string       // sent as Authorization: Bearer; none if ""
	header http.Header  // more headers
	client *http.Client // nil: the default client
}

// wsDial makes a WebSocket handshake with url, giving up after 10s. When
// the server refuses it, resp is the server's answer. An open socket is
// closed when the test ends. It may be called from any goroutine.
func wsDial(t testing.TB, url string, o wsOpts) (c *websocket.Conn, resp *http.Response, err error) {
	h := o.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if o.token != "" {
		h.Set("Authorization", "Bearer "+o.token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err = websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: o.client, HTTPHeader: h}) //nolint:bodyclose // the library's to close
	if err == nil {
		t.Cleanup(func() { _ = c.CloseNow() })
	}
	return c, resp, err
}

// wsStatus is the status of a handshake with url: 101 if the socket opened
// (it is closed at once), or the status the server refused it with.
func wsStatus(t testing.TB, url string, o wsOpts) (int, error) {
	c, resp, err := wsDial(t, url, o)
	switch {
	case err == nil:
		_ = c.CloseNow()
		return http.StatusSwitchingProtocols, nil
	case resp != nil:
		return resp.StatusCode, nil
	}
	return 0, err
}

// readAck reads the server's first message on c, the ack, within 10s.
func readAck(c *websocket.Conn) (wire.Connected, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ack wire.Connected
	_, b, err := c.Read(ctx)
	if err == nil {
		err = json.Unmarshal(b, &ack)
	}
	if err == nil && ack.Type != wire.TypeConnected {
		err = fmt.Errorf("the first message is %s, not the ack", b)
	}
	return ack, err
}

// wsConnect makes a WebSocket handshake with url that must succeed, and
// returns the socket and the server's ack.
func wsConnect(t *testing.T, url string, o wsOpts) (*websocket.Conn, wire.Connected) {
	t.Helper()
	c, _, err := wsDial(t, url, o)
	if err != nil {
		t.Fatalf("WebSocket to %s: %v", url, err)
	}
	ack, err := readAck(c)
	if err != nil {
		t.Fatalf("WebSocket to %s: %v", url, err)
	}
	return c, ack
}

// dialDevice connects to the server's /v1/connect as subject's device,
// with a credential printed by `sessiond token`, and returns the socket
// and the ack.
func dialDevice(t *testing.T, addr, subject, device string) (*websocket.Conn, wire.Connected) {
	t.Helper()
	return wsConnect(t, "ws://"+addr+"/v1/connect?device_id="+device, wsOpts{token: cliToken(t, subject, "1h")})
}

func closeCode(t *testing.T, c *websocket.Conn) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

func TestWebSocketThroughTheServer(t *testing.T) {
	cfg := testConfig(t)
	cfg.JWT.Secret = testSecret
	ts := startServer(t, cfg)

	// Revoking over REST closes the socket with the terminal code.
	c, ack := dialDevice(t, ts.addr, "alice", "glasses-1")
	if ack.Resumed || ack.SessionToken == "" {
		t.Fatalf("ack %+v", ack)
	}
	if err := ts.client().Revoke(context.Background(), ack.SessionID); err != nil {
		t.Fatal(err)
	}
	if code := closeCode(t, c); code != 4500 {
		t.Fatalf("after revoke: close code %d, want 4500", code)
	}
	st, err := ts.client().Stats(context.Background())
	if err != nil || st.WebSocket == nil {
		t.Fatalf("stats without websocket counts: %+v, %v", st, err)
	}

	// Without a device_id, as in the README's wscat example without
	// ?device_id=: the subject's session for the default device, found
	// again by the next such connect.
	tok := cliToken(t, "bob", "1h")
	var sessions []string
	for range 2 {
		c, ack := wsConnect(t, "ws://"+ts.addr+"/v1/connect", wsOpts{token: tok})
		sessions = append(sessions, ack.SessionID)
		_ = c.Close(websocket.StatusNormalClosure, "")
	}
	if sessions[0] != sessions[1] {
		t.Fatalf("two connects without a device_id made sessions %v; want one", sessions)
	}
	s, err := ts.client().Get(context.Background(), sessions[0])
	if err != nil || s.Device.ID != sessiond.DefaultDeviceID {
		t.Fatalf("the session's device %+v, %v; want %q", s, err, sessiond.DefaultDeviceID)
	}
}

// A graceful stop tells every socket to reconnect (1001) and keeps the
// sessions; after a restart, a device reconnecting within its grace resumes
// its session.
func TestShutdownKeepsSessionsForResume(t *testing.T) {
	cfg := testConfig(t)
	cfg.JWT.Secret = testSecret
	ts := startServer(t, cfg)
	c, ack := dialDevice(t, ts.addr, "alice", "glasses-1")
	sid := ack.SessionID

	stopped := make(chan error, 1)
	go func() { stopped <- ts.stop(t) }()
	if code := closeCode(t, c); code != websocket.StatusGoingAway {
		t.Fatalf("on shutdown: close code %d, want 1001", code)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}

	again := startServer(t, cfg)
	s, err := again.client().Get(context.Background(), sid)
	if err != nil || s.State != sessiond.StateDisconnected {
		t.Fatalf("after restart the session is %v (%v); want disconnected, waiting out its grace", s.State, err)
	}
	_, ack = dialDevice(t, again.addr, "alice", "glasses-1")
	if ack.SessionID != sid || !ack.Resumed {
		t.Fatalf("reconnect after restart: %+v; want session %s resumed", ack, sid)
	}
}

// A negative websocket.connects_per_* or jwt.max_lifetime turns that limit
// off; `sessiond config` shows the value and says so. (A negative
// jwt.leeway or websocket.max_sockets is refused: TestConfigErrors.)
func TestNegativeTurnsLimitsOff(t *testing.T) {
	args := []string{"--ws-connects-per-subject", "-1", "--ws-connects-per-address", "-1", "--jwt-max-lifetime", "-1s"}
	out := mustCLI(t, append([]string{"config"}, args...)...)
	for _, want := range []string{
		"max_lifetime: -1s # negative: off, credentials of any lifetime are accepted",
		"connects_per_subject: -1 # negative: off, no limit on a subject's handshakes",
		"connects_per_address: -1 # negative: off, no limit on an address's handshakes",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config %v: no line %q in\n%s", args, want, out)
		}
	}
	var printed Config
	if err := yaml.Unmarshal([]byte(out), &printed); err != nil || printed.WebSocket.ConnectsPerSubject != -1 || printed.JWT.MaxLifetime != Duration(-time.Second) {
		t.Errorf("config %v prints %+v %+v, %v", args, printed.WebSocket, printed.JWT, err)
	}

	// A credential living two days: refused by the default 24h cap,
	// accepted with the cap off.
	long := cliToken(t, "alice", "48h")
	dial := func(ts *testServer, tok, device string) (int, error) {
		return wsStatus(t, "ws://"+ts.addr+"/v1/connect?device_id="+device, wsOpts{token: tok})
	}
	cfg := testConfig(t)
	cfg.JWT.Secret = testSecret
	capped := startServer(t, cfg)
	if st, err := dial(capped, long, "d"); err != nil || st != http.StatusUnauthorized {
		t.Fatalf("a 48h credential with the default max lifetime: %d, %v; want 401", st, err)
	}
	off := loadTestConfig(t, noEnv, append(args, "--jwt-secret", testSecret, "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())...)
	ts := startServer(t, off)
	if st, err := dial(ts, long, "d"); err != nil || st != http.StatusSwitchingProtocols {
		t.Fatalf("a 48h credential with jwt.max_lifetime -1s: %d, %v; want 101", st, err)
	}

	// One subject, one address: far more handshakes in a row than the
	// default 10 a second of a subject, none refused.
	tok := cliToken(t, "bob", "")
	for i := range 3 * 10 {
		if st, err := dial(ts, tok, fmt.Sprint("g", i)); err != nil || st != http.StatusSwitchingProtocols {
			t.Fatalf("handshake %d of one subject with the connect limits off: %d, %v; want 101", i+1, st, err)
		}
	}
}

// `sessiond connect` holds a socket, with or without --device, and prints
// the session, the token of a session it created (once), and its end.
func TestConnectCommand(t *testing.T) {
	cfg := testConfig(t)
	cfg.JWT.Secret = testSecret
	ts := startServer(t, cfg)
	for _, tc := range []struct {
		args   []string
		device string
	}{
		{nil, sessiond.DefaultDeviceID},
		{[]string{"--device", "glasses-1"}, "glasses-1"},
	} {
		out := &syncBuffer{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, append([]string{"connect", "--subject", "alice", "--addr", ts.addr, "--jwt-secret", testSecret}, tc.args...), out, out, noEnv)
		}()
		connected := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d connected: session (\S+), connection \S+, resumed false$`)
		sessiondtest.Eventually(t, "connect to print the session and its token", func() bool {
			return connected.MatchString(out.String()) && strings.Contains(out.String(), " session token (shown once): sd_")
		})
		sid := connected.FindStringSubmatch(out.String())[1]
		s, err := ts.client().Get(context.Background(), sid)
		if err != nil || s.Device.ID != tc.device {
			t.Errorf("connect %v: session %+v, %v; want device %q", tc.args, s, err, tc.device)
		}
		// Revoked: the socket closes with the terminal code, and the client stops.
		if err := ts.client().Revoke(context.Background(), sid); err != nil {
			t.Fatal(err)
		}
		select {
		case code := <-done:
			if code != 1 || !strings.Contains(out.String(), "disconnected: close code 4500") {
				t.Errorf("connect %v after revoke: exit %d\n%s", tc.args, code, out)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("connect %v still runs 10s after its session was revoked:\n%s", tc.args, out)
		}
		cancel()
	}
}

// `sessiond nodes` lists the server's node, marked as the one answering,
// with the sockets it holds.
func TestNodesCommand(t *testing.T) {
	cfg := testConfig(t)
	cfg.JWT.Secret = testSecret
	cfg.Node = "edge-1"
	ts := startServer(t, cfg)
	dialDevice(t, ts.addr, "alice", "glasses-1")
	dialDevice(t, ts.addr, "bob", "glasses-1")

	out := mustCLI(t, "nodes", "--addr", ts.addr, "--api-key", ts.key)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "NODE") {
		t.Fatalf("nodes printed:\n%s\nwant a header and one node", out)
	}
	if f := strings.Fields(lines[1]); f[0] != "edge-1" || f[1] != "*" || !strings.Contains(lines[1], "ends in") || f[len(f)-1] != "2" {
		t.Fatalf("node line %q; want edge-1 *, its lease's end, 2 connections", lines[1])
	}
	var got wire.NodesResponse
	if err := json.Unmarshal([]byte(mustCLI(t, "nodes", "--json", "--addr", ts.addr, "--api-key", ts.key)), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Nodes) != 1 || got.Nodes[0].Node != "edge-1" || !got.Nodes[0].Self || got.Nodes[0].Connections != 2 {
		t.Fatalf("nodes --json: %+v", got)
	}
}
