package ws_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/wire"
	"github.com/sessiond/sessiond/ws"
)

func TestAllowedOriginsRefuseOtherBrowserOrigins(t *testing.T) {
	e := newEnv(t, ws.Config{AllowedOrigins: []string{"https://app.example.com", "http://localhost:3000"}})

	for _, origin := range []string{"https://evil.example", "http://app.example.com", "https://app.example.com.evil.example", "null"} {
		t.Run("refused "+origin, func(t *testing.T) {
			// A valid credential: the Origin alone is the reason.
			_, resp, err := e.dial(e.token("alice", time.Hour), "device_id=g", http.Header{"Origin": {origin}})
			if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("dial from %s: %v, response %v; want 403 before the upgrade", origin, err, resp)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			var body wire.ErrorBody
			b, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(b, &body); err != nil || body.Error.Code != "unauthorized" || !strings.Contains(body.Error.Message, "Origin") {
				t.Fatalf("body %s; want code unauthorized about the Origin", b)
			}
		})
	}
	st, _ := e.m.Stats(context.Background())
	if st.Total != 0 {
		t.Fatalf("%d sessions exist after refused origins; want none attached or created", st.Total)
	}
	if got := e.edge.Stats().Refused; got != 4 {
		t.Errorf("refused %d, want 4", got)
	}

	// Listed origins pass, compared without case and without the default
	// port; so do clients that send no Origin (not browsers).
	for _, h := range []http.Header{
		{"Origin": {"https://app.example.com"}},
		{"Origin": {"HTTPS://App.Example.com:443"}},
		{"Origin": {"http://localhost:3000"}},
		{},
	} {
		c := e.mustDial("alice", "device_id=g", h)
		if _, _, _, ack := c.ack(); ack["type"] != "connected" {
			t.Fatalf("origin %v: ack %v", h, ack)
		}
	}
}

func TestNoAllowedOriginsAcceptsAnyOrigin(t *testing.T) {
	e := newEnv(t, ws.Config{})
	c := e.mustDial("alice", "device_id=g", http.Header{"Origin": {"https://anywhere.example"}})
	c.ack()
}

func TestBadAllowedOriginIsAConfigError(t *testing.T) {
	for _, bad := range []string{"app.example.com", "https://app.example.com/path", "ftp://x.example", "https://u@x.example", "https://x.example?q"} {
		if _, err := ws.ParseOrigin(bad); err == nil {
			t.Errorf("ParseOrigin(%q): no error", bad)
		}
	}
	if _, err := ws.New(ws.Config{Manager: newEnv(t, ws.Config{}).m, Verify: func(context.Context, string) (string, time.Time, error) {
		return "", time.Time{}, nil
	}, AllowedOrigins: []string{"https://ok.example", "not an origin"}}); err == nil || !strings.Contains(err.Error(), "AllowedOrigins[1]") {
		t.Errorf("ws.New with a bad origin: %v, want an error naming AllowedOrigins[1]", err)
	}
	for in, want := range map[string]string{
		"https://App.Example.com:443/": "https://app.example.com",
		"http://localhost:80":          "http://localhost",
		"http://localhost:8080":        "http://localhost:8080",
		"https://[::1]:443":            "https://[::1]",
	} {
		if got, err := ws.ParseOrigin(in); err != nil || got != want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestClientIPFromConfig(t *testing.T) {
	e := newEnv(t, ws.Config{ClientIP: func(r *http.Request) string { return "198.51.100.7" }})
	c := e.mustDial("alice", "device_id=g", nil)
	sid, _, _, _ := c.ack()
	s := e.session(sid)
	if s.Device.IP != "198.51.100.7" || len(e.conns(s.ID)) != 1 || e.conns(s.ID)[0].ClientIP != "198.51.100.7" {
		t.Fatalf("device IP %q, connections %+v; want the address ClientIP told", s.Device.IP, e.conns(s.ID))
	}
}

func TestClientIPDefaultsToThePeer(t *testing.T) {
	e := newEnv(t, ws.Config{})
	c := e.mustDial("alice", "device_id=g", http.Header{"X-Forwarded-For": {"203.0.113.9"}})
	sid, _, _, _ := c.ack()
	if s := e.session(sid); e.conns(s.ID)[0].ClientIP != "127.0.0.1" {
		t.Fatalf("client IP %q: without trusted proxies X-Forwarded-For must be ignored", e.conns(s.ID)[0].ClientIP)
	}
}
