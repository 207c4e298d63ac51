package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/sessiond/sessiond/sessiondtest"
)

// An identity provider that is down when the server starts does not stop
// it: /readyz answers 200 "degraded" with the reason, the WebSocket edge
// answers 503 with Retry-After, and once the JWK Set can be fetched the
// edge serves and /readyz says ready.
func TestJWKSDownAtStart(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var up atomic.Bool
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","use":"sig","alg":"EdDSA","x":%q}]}`,
			base64.RawURLEncoding.EncodeToString(pub))
	}))
	defer idp.Close()

	cfg := testConfig(t)
	cfg.JWT.JWKSURL = idp.URL + "/jwks.json" // loopback: plain http is allowed
	cfg.JWT.Audience = "glasses"
	cfg.JWT.JWKSRefresh = Duration(time.Minute)
	ts := startServer(t, cfg)
	defer ts.stop(t)

	ready := func() readyBody {
		t.Helper()
		resp, err := ts.hc.Get(ts.url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b readyBody
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&b) != nil {
			t.Fatalf("/readyz: %s", resp.Status)
		}
		return b
	}
	if b := ready(); b.Status != "degraded" || b.Checks["websocket"].OK || b.Checks["websocket"].Detail == "" {
		t.Fatalf("/readyz with the identity provider down: %+v; want degraded, websocket not ok with a detail", b)
	}
	tok, err := gojwt.NewWithClaims(gojwt.SigningMethodEdDSA, gojwt.MapClaims{
		"sub": "alice", "aud": "glasses", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	// The token carries no kid; the only key will be k1's.
	url := "ws://" + ts.addr + "/v1/connect?device_id=g1"
	if _, resp, err := wsDial(t, url, wsOpts{token: tok}); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("connect with the identity provider down: %v %v; want 503 with Retry-After", err, resp)
	}

	up.Store(true)
	sessiondtest.Eventually(t, "the signing keys to arrive", func() bool {
		return ready().Status == "ready"
	})
	wsConnect(t, url, wsOpts{token: tok})
}

type readyBody struct {
	Status string `json:"status"`
	Checks map[string]struct {
		OK     bool   `json:"ok"`
		Detail string `json:"detail"`
	} `json:"checks"`
}
