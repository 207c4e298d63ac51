package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sessiond/sessiond"
)

const testSecret = "an-hs256-secret-of-at-least-32-bytes!"

// dialDevice connects to the server's /v1/connect as a device, with a
// credential printed by `sessiond token`, and returns the socket and ack.
func dialDevice(t *testing.T, addr, subject, device string) (*websocket.Conn, map[string]any) {
	t.Helper()
	tok := strings.TrimSpace(mustCLI(t, "token", "--subject", subject, "--ttl", "1h", "--jwt-secret", testSecret))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/v1/connect?device_id="+device, //nolint:bodyclose // the library's to close
		&websocket.DialOptions{HTTPHeader: map[string][]string{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ack map[string]any
	if err := json.Unmarshal(b, &ack); err != nil || ack["type"] != "connected" {
		t.Fatalf("ack %s: %v", b, err)
	}
	return c, ack
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
	if ack["resumed"] != false || ack["session_token"] == nil {
		t.Fatalf("ack %v", ack)
	}
	if err := ts.client().Revoke(context.Background(), ack["session_id"].(string)); err != nil {
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
	tok := strings.TrimSpace(mustCLI(t, "token", "--subject", "bob", "--ttl", "1h", "--jwt-secret", testSecret))
	var sessions []string
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, _, err := websocket.Dial(ctx, "ws://"+ts.addr+"/v1/connect", //nolint:bodyclose // the library's to close
			&websocket.DialOptions{HTTPHeader: map[string][]string{"Authorization": {"Bearer " + tok}}})
		if err != nil {
			cancel()
			t.Fatalf("dial without a device_id: %v", err)
		}
		_, b, err := c.Read(ctx)
		cancel()
		var ack map[string]any
		if err != nil || json.Unmarshal(b, &ack) != nil || ack["type"] != "connected" {
			t.Fatalf("ack %s: %v", b, err)
		}
		sessions = append(sessions, ack["session_id"].(string))
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
	sid := ack["session_id"].(string)

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
	if ack["session_id"] != sid || ack["resumed"] != true {
		t.Fatalf("reconnect after restart: %v; want session %s resumed", ack, sid)
	}
}
