package jwt

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/sessiond/sessiond"
)

// rs256 is a valid RS256 token signed with rsaKey1 or rsaKey2 (which) and kid.
func rs256(tb testing.TB, which int, kid string) string {
	tb.Helper()
	priv := rsaKey1()
	if which == 2 {
		priv = rsaKey2()
	}
	return sign(tb, gojwt.SigningMethodRS256, priv, kid, claims(nil))
}

func TestJWKSKeyTypes(t *testing.T) {
	srv := newJWKSServer(t,
		jwkOf(t, "rsa", rsaKey1().Public()),
		jwkOf(t, "ec", ecKey().Public()),
		jwkOf(t, "ed", edKey().Public()),
	)
	v := newVerifier(t, Config{JWKSURL: srv.URL})
	for _, tc := range []struct {
		kid string
		m   gojwt.SigningMethod
		key any
	}{
		{"rsa", gojwt.SigningMethodRS256, rsaKey1()},
		{"ec", gojwt.SigningMethodES256, ecKey()},
		{"ed", gojwt.SigningMethodEdDSA, edKey()},
	} {
		c, err := v.Verify(context.Background(), sign(t, tc.m, tc.key, tc.kid, claims(nil)))
		if err != nil {
			t.Fatalf("%s: %v", tc.kid, err)
		}
		if c.KeyID != tc.kid {
			t.Fatalf("KeyID = %q, want %q", c.KeyID, tc.kid)
		}
	}
}

func TestParseJWKS(t *testing.T) {
	good := jwkOf(t, "good", rsaKey1().Public())
	with := func(m map[string]any, k string, v any) map[string]any {
		c := make(map[string]any, len(m)+1)
		for a, b := range m {
			c[a] = b
		}
		c[k] = v
		return c
	}
	doc, _ := json.Marshal(map[string]any{"keys": []any{
		good,
		with(good, "use", "enc"),
		with(good, "alg", "PS256"),
		with(good, "n", "AQAB"), // tiny modulus
		with(good, "e", "AAAA"),
		map[string]any{"kty": "oct", "k": "c2VjcmV0"},
		with(jwkOf(t, "p384", ecKey().Public()), "crv", "P-384"),
		with(jwkOf(t, "offcurve", ecKey().Public()), "y", jwkOf(t, "", ecKey().Public())["x"]),
		with(jwkOf(t, "ed", edKey().Public()), "x", "AAAA"),
		"not an object",
		jwkOf(t, "ed-good", edKey().Public()),
	}})
	keys, skipped, err := parseJWKS(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].kid != "good" || keys[1].kid != "ed-good" {
		t.Fatalf("keys = %+v", keys)
	}
	if len(skipped) != 9 {
		t.Fatalf("skipped %d keys, want 9: %v", len(skipped), skipped)
	}
	for _, bad := range []string{`[]`, `{"keys":null}`, `{}`, `not json`} {
		if _, _, err := parseJWKS([]byte(bad)); err == nil {
			t.Errorf("parseJWKS(%s) succeeded", bad)
		}
	}
}

func TestNewFailsWhenJWKSUnavailable(t *testing.T) {
	srv := newJWKSServer(t)
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"status 500", http.StatusInternalServerError, "oops"},
		{"not a JWK Set", http.StatusOK, "<html>"},
		{"too large", http.StatusOK, `{"keys":[],"pad":"` + strings.Repeat("x", maxJWKSSize) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.setRaw(tc.status, []byte(tc.body))
			v, err := New(context.Background(), Config{JWKSURL: srv.URL})
			if err == nil {
				v.Close()
				t.Fatal("New succeeded")
			}
			var e *sessiond.Error
			if !errors.As(err, &e) || e.Code != sessiond.CodeUnavailable || e.Field != "JWKSURL" {
				t.Fatalf("err = %v, want unavailable on JWKSURL", err)
			}
		})
	}
}

func TestJWKSRefreshOnUnknownKID(t *testing.T) {
	srv := newJWKSServer(t, jwkOf(t, "k1", rsaKey1().Public()))
	clk := newClock(t0)
	v := newVerifier(t, Config{JWKSURL: srv.URL, JWKSRefresh: time.Hour, Now: clk.Now})
	ctx := context.Background()
	if got := srv.requests.Load(); got != 1 {
		t.Fatalf("requests after New = %d, want 1", got)
	}
	if _, err := v.Verify(ctx, rs256(t, 1, "k1")); err != nil {
		t.Fatal(err)
	}
	if got := srv.requests.Load(); got != 1 {
		t.Fatalf("a known kid caused a fetch: requests = %d", got)
	}

	// The issuer rotates: k2 replaces k1. A token with k2 verifies at once,
	// by the refresh its unknown kid triggers.
	srv.set(t, jwkOf(t, "k2", rsaKey2().Public()))
	c, err := v.Verify(ctx, rs256(t, 2, "k2"))
	if err != nil {
		t.Fatalf("Verify with new kid: %v", err)
	}
	if c.KeyID != "k2" {
		t.Fatalf("KeyID = %q", c.KeyID)
	}
	if got := srv.requests.Load(); got != 2 {
		t.Fatalf("requests = %d, want 2", got)
	}
	// k1 is gone from the set.
	tok := rs256(t, 1, "k1")
	_, err = v.Verify(ctx, tok)
	wantRefused(t, err, msgUnknownKey, tok)
}

func TestJWKSUnknownKIDRateLimited(t *testing.T) {
	srv := newJWKSServer(t, jwkOf(t, "k1", rsaKey1().Public()))
	clk := newClock(t0)
	v := newVerifier(t, Config{JWKSURL: srv.URL, JWKSRefresh: time.Hour, Now: clk.Now})
	ctx := context.Background()

	// The first unknown kid fetches; the many after it, within 10s, do not.
	for i := range 20 {
		tok := sign(t, gojwt.SigningMethodRS256, rsaKey1(), "nope-"+string(rune('a'+i)), claims(nil))
		_, err := v.Verify(ctx, tok)
		wantRefused(t, err, msgUnknownKey, tok)
	}
	if got := srv.requests.Load(); got != 2 {
		t.Fatalf("requests = %d, want 2 (New + one unknown-kid refresh)", got)
	}

	srv.set(t, jwkOf(t, "k1", rsaKey1().Public()), jwkOf(t, "k2", rsaKey2().Public()))
	clk.Add(9 * time.Second)
	tok := rs256(t, 2, "k2")
	_, err := v.Verify(ctx, tok)
	wantRefused(t, err, msgUnknownKey, tok)
	if got := srv.requests.Load(); got != 2 {
		t.Fatalf("requests at +9s = %d, want 2", got)
	}

	// Past the window, concurrent verifications of the new kid share one
	// fetch.
	clk.Add(time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			if _, err := v.Verify(ctx, tok); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Verify: %v", err)
	}
	if got := srv.requests.Load(); got != 3 {
		t.Fatalf("requests at +10s = %d, want 3", got)
	}
}

func TestJWKSPeriodicRefresh(t *testing.T) {
	srv := newJWKSServer(t, jwkOf(t, "k1", rsaKey1().Public()))
	clk := newClock(t0) // never advanced: no second unknown-kid refresh
	v := newVerifier(t, Config{JWKSURL: srv.URL, JWKSRefresh: 5 * time.Millisecond, Now: clk.Now})
	ctx := context.Background()

	// Spend the unknown-kid refresh so that only the periodic one remains.
	tok := rs256(t, 2, "k2")
	_, err := v.Verify(ctx, tok)
	wantRefused(t, err, msgUnknownKey, tok)

	srv.set(t, jwkOf(t, "k2", rsaKey2().Public()))
	n := srv.requests.Load()
	// Request n+1 was served the new set; request n+2 starts only after
	// the refresher has published the result of n+1.
	srv.waitRequests(t, n+2)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("after periodic refresh: %v", err)
	}
}

func TestJWKSRefreshFailureKeepsKeys(t *testing.T) {
	srv := newJWKSServer(t, jwkOf(t, "k1", rsaKey1().Public()))
	clk := newClock(t0)
	v := newVerifier(t, Config{JWKSURL: srv.URL, JWKSRefresh: 5 * time.Millisecond, Now: clk.Now})
	ctx := context.Background()
	for _, bad := range []struct {
		status int
		body   string
	}{{http.StatusBadGateway, "down"}, {http.StatusOK, "{not json"}} {
		srv.setRaw(bad.status, []byte(bad.body))
		n := srv.requests.Load()
		srv.waitRequests(t, n+2) // at least one failed periodic refresh completed
		clk.Add(time.Minute)     // and one failed unknown-kid refresh
		_, _ = v.Verify(ctx, rs256(t, 2, "k2"))
		if _, err := v.Verify(ctx, rs256(t, 1, "k1")); err != nil {
			t.Fatalf("after failed refreshes (%d): %v", bad.status, err)
		}
	}
}

func TestCloseStopsRefresher(t *testing.T) {
	srv := newJWKSServer(t, jwkOf(t, "k1", rsaKey1().Public()))
	clk := newClock(t0)
	v, err := New(context.Background(), Config{JWKSURL: srv.URL, JWKSRefresh: time.Millisecond, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv.waitRequests(t, 3)
	if !refresherRunning() {
		t.Fatal("no refresher goroutine while open")
	}
	v.Close()
	if refresherRunning() {
		t.Fatal("refresher goroutine outlived Close")
	}
	v.Close() // idempotent

	// Verify still works with the keys it has, and an unknown kid does not
	// fetch any more: the served k2 is never seen. (The request counter is
	// no help here: a request cancelled by Close may reach the server late.)
	if _, err := v.Verify(context.Background(), rs256(t, 1, "k1")); err != nil {
		t.Fatal(err)
	}
	srv.set(t, jwkOf(t, "k1", rsaKey1().Public()), jwkOf(t, "k2", rsaKey2().Public()))
	clk.Add(time.Minute)
	tok := rs256(t, 2, "k2")
	_, err = v.Verify(context.Background(), tok)
	wantRefused(t, err, msgUnknownKey, tok)
}

// refresherRunning reports whether any JWKS refresher goroutine exists.
func refresherRunning() bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Contains(string(buf), "jwt.(*jwks).run")
}

func TestVerifyConcurrentWithRefresh(t *testing.T) {
	srv := newJWKSServer(t, jwkOf(t, "k1", rsaKey1().Public()), jwkOf(t, "k2", rsaKey2().Public()))
	clk := newClock(t0)
	v := newVerifier(t, Config{JWKSURL: srv.URL, JWKSRefresh: time.Millisecond, JWKSUnknownKIDLimit: time.Nanosecond, Now: clk.Now, Secret: testSecret})
	toks := []string{rs256(t, 1, "k1"), rs256(t, 2, "k2"), rs256(t, 2, ""), hs256(t, nil)}
	unknown := rs256(t, 1, "unknown")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				if i == 0 {
					clk.Add(time.Second)
					_, _ = v.Verify(context.Background(), unknown)
				}
				if _, err := v.Verify(context.Background(), toks[(i+j)%len(toks)]); err != nil {
					t.Errorf("Verify: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}
