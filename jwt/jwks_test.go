package jwt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/sessiond/sessiond/sessiondtest"
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
	v := newVerifier(t, Config{Audience: testAudience, JWKSURL: srv.URL})
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

func TestNewSucceedsWhenJWKSUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		cause  string
	}{
		{"status 500", http.StatusInternalServerError, "oops", "status 500 Internal Server Error"},
		{"not a JWK Set", http.StatusOK, "<html>", "not a JWK Set"},
		{"too large", http.StatusOK, `{"keys":[],"pad":"` + strings.Repeat("x", maxJWKSSize) + `"}`, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t)
			srv.setRaw(tc.status, []byte(tc.body))
			// The retry backoff is capped by JWKSRefresh: short here, so
			// that the recovery below comes quickly.
			v := newVerifier(t, Config{Audience: testAudience, JWKSURL: srv.URL, JWKSRefresh: 20 * time.Millisecond})

			ready, detail := v.Ready()
			if ready || !strings.HasPrefix(detail, "jwks: not loaded yet: ") || !strings.Contains(detail, tc.cause) ||
				!strings.HasSuffix(detail, "; last attempt 2030-01-02T03:04:05Z") {
				t.Fatalf("Ready() = %v, %q; want false, not loaded yet with %q and the last attempt", ready, detail, tc.cause)
			}
			for _, kid := range []string{"k1", ""} {
				_, err := v.Verify(context.Background(), rs256(t, 1, kid))
				wantUnavailable(t, err, tc.cause)
			}
			// A token no JWKS key could verify is still the client's fault.
			tok := hs256(t, nil)
			_, err := v.Verify(context.Background(), tok)
			wantRefused(t, err, msgAlgorithm, tok)

			// The identity provider recovers: the background retry loads
			// the set without any token asking for it.
			srv.set(t, jwkOf(t, "k1", rsaKey1().Public()))
			waitReady(t, v)
			if _, err := v.Verify(context.Background(), rs256(t, 1, "k1")); err != nil {
				t.Fatalf("after the set loaded: %v", err)
			}
			if _, detail := v.Ready(); detail != "jwks: 1 key, loaded 2030-01-02T03:04:05Z" {
				t.Fatalf("Ready detail = %q", detail)
			}
		})
	}
}

// waitReady waits until v is ready.
func waitReady(tb testing.TB, v *Verifier) {
	tb.Helper()
	sessiondtest.Eventually(tb, "the verifier to be ready", func() bool { ready, _ := v.Ready(); return ready })
}

func TestNewStillFailsOnConfigErrorsWithJWKS(t *testing.T) {
	srv := newJWKSServer(t, jwkOf(t, "k1", rsaKey1().Public()))
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string
	}{
		{"negative refresh", Config{Audience: testAudience, JWKSURL: srv.URL, JWKSRefresh: -time.Second}, "JWKSRefresh"},
		{"negative unknown-kid limit", Config{Audience: testAudience, JWKSURL: srv.URL, JWKSUnknownKIDLimit: -time.Second}, "JWKSUnknownKIDLimit"},
		{"short secret", Config{Audience: testAudience, JWKSURL: srv.URL, Secret: []byte("short")}, "Secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(context.Background(), tc.cfg)
			if err == nil {
				v.Close()
				t.Fatal("New succeeded")
			}
			wantConfigError(t, err, tc.field, "")
		})
	}
	if n := srv.requests.Load(); n != 0 {
		t.Fatalf("the JWKS was fetched %d times for refused configurations", n)
	}
}

// Validate accepts a good configuration with a JWKS URL without fetching
// the set: it is what `sessiond config` checks.
func TestValidateDoesNotFetchTheJWKS(t *testing.T) {
	srv := newJWKSServer(t, jwkOf(t, "k1", rsaKey1().Public()))
	for _, cfg := range []Config{
		{Audience: testAudience, JWKSURL: srv.URL},
		{AllowAnyAudience: true, JWKSURL: srv.URL, Secret: testSecret},
	} {
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Validate(%+v): %v", cfg, err)
		}
	}
	if n := srv.requests.Load(); n != 0 {
		t.Fatalf("Validate fetched the JWKS %d times", n)
	}
}

func TestJWKSNotLoadedStaticKeysStillWork(t *testing.T) {
	srv := newJWKSServer(t)
	srv.setRaw(http.StatusServiceUnavailable, []byte("down"))
	v := newVerifier(t, Config{
		Audience: testAudience, JWKSURL: srv.URL, JWKSRefresh: time.Hour,
		Secret: testSecret, PublicKeys: [][]byte{pemPKIX(t, rsaKey1().Public())},
	})
	ctx := context.Background()
	if ready, _ := v.Ready(); ready {
		t.Fatal("ready without the JWK Set")
	}
	// Keys that need no JWKS verify as usual, kid or not.
	for _, tok := range []string{hs256(t, nil), rs256(t, 1, ""), rs256(t, 1, "k1"), sign(t, gojwt.SigningMethodHS256, testSecret, "k1", claims(nil))} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	// A token a static key verifies but refuses on its claims is refused
	// for them.
	expired := sign(t, gojwt.SigningMethodRS256, rsaKey1(), "", claims(map[string]any{"exp": t0.Add(-time.Hour).Unix()}))
	_, err := v.Verify(ctx, expired)
	wantRefused(t, err, msgExpired, expired)
	// Tokens that a key of the set might verify are not refused as bad
	// signatures or unknown kids: the server cannot tell yet.
	for _, tok := range []string{
		rs256(t, 2, ""), rs256(t, 2, "k2"),
		sign(t, gojwt.SigningMethodES256, ecKey(), "", claims(nil)),
		sign(t, gojwt.SigningMethodEdDSA, edKey(), "ed", claims(nil)),
	} {
		_, err := v.Verify(ctx, tok)
		wantUnavailable(t, err, "status 503 Service Unavailable")
	}
	// Nor are tokens no key could ever verify.
	none := sign(t, gojwt.SigningMethodNone, gojwt.UnsafeAllowNoneSignatureType, "", claims(nil))
	_, err = v.Verify(ctx, none)
	wantRefused(t, err, msgAlgorithm, none)
	forged := sign(t, gojwt.SigningMethodHS256, bytes.Repeat([]byte("z"), 32), "", claims(nil))
	_, err = v.Verify(ctx, forged)
	wantRefused(t, err, msgBadSignature, forged)
}

// fakeIdP is an identity provider reached through an http.RoundTripper, so
// that it works in a synctest bubble: it answers every request with the
// next of its responses (the last one repeated), recording when each came.
type fakeIdP struct {
	mu       sync.Mutex
	attempts []time.Time
	answer   func(n int) (*http.Response, error) // n counts from 0
}

func (f *fakeIdP) client() *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		f.mu.Lock()
		n := len(f.attempts)
		f.attempts = append(f.attempts, time.Now())
		f.mu.Unlock()
		return f.answer(n)
	})}
}

func (f *fakeIdP) times() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.attempts)
}

func TestJWKSRetryBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const failures = 8
		keys := jwksDoc(t, jwkOf(t, "k1", rsaKey1().Public()))
		idp := &fakeIdP{answer: func(n int) (*http.Response, error) {
			if n < failures {
				return nil, errors.New("connection refused")
			}
			return jsonResponse(http.StatusOK, keys), nil
		}}
		start := time.Now()
		v, err := New(context.Background(), Config{
			Audience: testAudience, JWKSURL: "https://idp.example/jwks", HTTPClient: idp.client(),
			JWKSRefresh: 10 * time.Second,
			Now:         func() time.Time { return t0.Add(time.Since(start)) }, // fake time in the bubble
		})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		defer v.Close()
		if ready, detail := v.Ready(); ready || detail != "jwks: not loaded yet: Get \"https://idp.example/jwks\": connection refused; last attempt 2030-01-02T03:04:05Z" {
			t.Fatalf("Ready() = %v, %q", ready, detail)
		}

		// Each wait is the backoff (1s doubling, capped at JWKSRefresh)
		// less up to half of it at random.
		time.Sleep(2 * time.Minute)
		got := idp.times()
		if len(got) < failures+2 {
			t.Fatalf("%d attempts in 2m, want at least %d", len(got), failures+2)
		}
		jittered := false
		for i, want := range []time.Duration{1, 2, 4, 8, 10, 10, 10, 10} {
			want *= time.Second
			gap := got[i+1].Sub(got[i])
			if gap < want/2 || gap > want {
				t.Errorf("wait before attempt %d = %v, want in [%v, %v]", i+1, gap, want/2, want)
			}
			jittered = jittered || gap != want
		}
		if !jittered {
			t.Error("no wait was jittered")
		}
		// Once loaded, the set is refreshed every JWKSRefresh.
		if gap := got[failures+1].Sub(got[failures]); gap != 10*time.Second {
			t.Errorf("wait after loading = %v, want the refresh period 10s", gap)
		}
		if ready, _ := v.Ready(); !ready {
			t.Fatal("not ready after the set loaded")
		}
		if _, err := v.Verify(context.Background(), rs256(t, 1, "k1")); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	})
}

func TestJWKSNotLoadedVerifyAsksForFetchWithoutWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		keys := jwksDoc(t, jwkOf(t, "k1", rsaKey1().Public()))
		release := make(chan struct{})
		idp := &fakeIdP{answer: func(n int) (*http.Response, error) {
			switch n {
			case 0:
				return jsonResponse(http.StatusBadGateway, []byte("down")), nil
			case 1:
				<-release // the identity provider is slow to answer
			}
			return jsonResponse(http.StatusOK, keys), nil
		}}
		start := time.Now()
		v, err := New(context.Background(), Config{
			Audience: testAudience, JWKSURL: "https://idp.example/jwks", HTTPClient: idp.client(),
			JWKSRefresh: time.Hour, // the first retry is 0.5-1s away
			Now:         func() time.Time { return t0.Add(time.Since(start)) },
		})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		defer v.Close()

		// Verify answers at once, and has asked for a fetch.
		tok := rs256(t, 1, "k1")
		_, err = v.Verify(context.Background(), tok)
		wantUnavailable(t, err, "status 502 Bad Gateway")
		synctest.Wait()
		if n := len(idp.times()); n != 2 {
			t.Fatalf("%d fetches, want 2 (New's and the one Verify asked for)", n)
		}
		// While that fetch is pending (and within the rate limit), more
		// tokens do not cause more fetches.
		for range 10 {
			_, err = v.Verify(context.Background(), tok)
			wantUnavailable(t, err, "status 502 Bad Gateway")
		}
		close(release)
		synctest.Wait()
		if n := len(idp.times()); n != 2 {
			t.Fatalf("%d fetches, want 2", n)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("the set loaded after %v, want it loaded by Verify's request, before any backoff", d)
		}
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	})
}

func TestReady(t *testing.T) {
	t.Run("static keys only", func(t *testing.T) {
		v := newVerifier(t, Config{Secret: testSecret, PublicKeys: [][]byte{pemPKIX(t, rsaKey1().Public())}, Audience: testAudience})
		if ready, detail := v.Ready(); !ready || detail != "" {
			t.Fatalf("Ready() = %v, %q; want true, \"\"", ready, detail)
		}
	})
	t.Run("JWKS loaded, then a refresh fails", func(t *testing.T) {
		srv := newJWKSServer(t, jwkOf(t, "k1", rsaKey1().Public()), jwkOf(t, "k2", rsaKey2().Public()))
		clk := newClock(t0)
		v := newVerifier(t, Config{Audience: testAudience, JWKSURL: srv.URL, JWKSRefresh: time.Hour, Now: clk.Now})
		if ready, detail := v.Ready(); !ready || detail != "jwks: 2 keys, loaded 2030-01-02T03:04:05Z" {
			t.Fatalf("Ready() = %v, %q", ready, detail)
		}
		srv.setRaw(http.StatusBadGateway, []byte("down"))
		clk.Add(time.Minute)
		_, _ = v.Verify(context.Background(), rs256(t, 1, "unknown")) // an unknown kid: a refresh
		ready, detail := v.Ready()
		want := "jwks: 2 keys, loaded 2030-01-02T03:04:05Z; last refresh failed 2030-01-02T03:05:05Z: GET " + srv.URL + ": status 502 Bad Gateway"
		if !ready || detail != want {
			t.Fatalf("Ready() = %v, %q; want true, %q", ready, detail, want)
		}
	})
}

func TestJWKSURLMustBeHTTPSExceptOnLoopback(t *testing.T) {
	for _, u := range []string{
		"http://idp.example/jwks",
		"http://10.0.0.1/jwks",
		"http://localhost.idp.example/jwks",
		"http://127.0.0.1.nip.io/jwks",
		"http://[fe80::1]/jwks",
		"ftp://idp.example/jwks",
		"file:///etc/passwd",
		"https://",
		"https:///jwks",
		"idp.example/jwks",
		"://x",
	} {
		t.Run(u, func(t *testing.T) {
			v, err := New(context.Background(), Config{Audience: testAudience, JWKSURL: u})
			if err == nil {
				v.Close()
				t.Fatal("New succeeded")
			}
			wantConfigError(t, err, "JWKSURL", "https")
		})
	}
	// These are accepted; nothing is dialled (the client fails every
	// request), so New succeeds with the set not loaded.
	for _, u := range []string{
		"https://idp.example/jwks",
		"http://localhost:1/jwks",
		"http://LocalHost/jwks",
		"http://127.0.0.1:1/jwks",
		"http://127.9.8.7/jwks",
		"http://[::1]:1/jwks",
		"http://[::ffff:127.0.0.1]/jwks",
	} {
		t.Run(u, func(t *testing.T) {
			var asked atomic.Value
			client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				asked.Store(r.URL.String())
				return nil, errors.New("no network in this test")
			})}
			v := newVerifier(t, Config{Audience: testAudience, JWKSURL: u, HTTPClient: client, JWKSRefresh: time.Hour})
			if got, _ := asked.Load().(string); got != u {
				t.Fatalf("fetched %q, want %q", got, u)
			}
			if ready, detail := v.Ready(); ready || !strings.Contains(detail, "no network in this test") {
				t.Fatalf("Ready() = %v, %q", ready, detail)
			}
		})
	}
}

func TestJWKSOverHTTPS(t *testing.T) {
	srv := newTLSJWKSServer(t, jwkOf(t, "k1", rsaKey1().Public()))
	v := newVerifier(t, Config{Audience: testAudience, JWKSURL: srv.URL, HTTPClient: srv.Client()})
	if _, err := v.Verify(context.Background(), rs256(t, 1, "k1")); err != nil {
		t.Fatal(err)
	}
	// Without a client that trusts the server's certificate, it is not
	// trusted.
	v2 := newVerifier(t, Config{Audience: testAudience, JWKSURL: srv.URL, JWKSRefresh: time.Hour})
	if ready, detail := v2.Ready(); ready || !strings.Contains(detail, "certificate") {
		t.Fatalf("Ready() = %v, %q; want a certificate error", ready, detail)
	}
}

func TestJWKSRedirects(t *testing.T) {
	ctx := context.Background()
	k1 := jwkOf(t, "k1", rsaKey1().Public())
	port := func(s *jwksServer) string {
		_, p, err := net.SplitHostPort(s.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("same host is followed", func(t *testing.T) {
		srv := newTLSJWKSServer(t, k1)
		other := newTLSJWKSServer(t, k1) // same host, another port
		srv.redirect("/old", "/older")
		srv.redirect("/older", other.URL+"/jwks")
		client := srv.Client()
		v := newVerifier(t, Config{Audience: testAudience, JWKSURL: srv.URL + "/old", HTTPClient: client})
		if _, err := v.Verify(ctx, rs256(t, 1, "k1")); err != nil {
			t.Fatal(err)
		}
		if srv.requests.Load() != 2 || other.requests.Load() != 1 {
			t.Fatalf("requests = %d, %d; want 2, 1", srv.requests.Load(), other.requests.Load())
		}
		if client.CheckRedirect != nil {
			t.Fatal("New modified Config.HTTPClient")
		}
	})
	t.Run("http to https on the same host is followed", func(t *testing.T) {
		srv := newJWKSServer(t)
		tlsSrv := newTLSJWKSServer(t, k1)
		srv.redirect("/jwks", tlsSrv.URL+"/jwks")
		v := newVerifier(t, Config{Audience: testAudience, JWKSURL: srv.URL + "/jwks", HTTPClient: tlsSrv.Client()})
		if ready, detail := v.Ready(); !ready {
			t.Fatalf("not ready: %s", detail)
		}
	})
	for _, tc := range []struct {
		name   string
		tls    bool
		target func(t *testing.T) *jwksServer
		host   string // the target's host in the redirect
		want   string
	}{
		{"https to another host", true, func(t *testing.T) *jwksServer { return newTLSJWKSServer(t, k1) }, "localhost",
			"redirect from 127.0.0.1 to another host (localhost) refused"},
		{"http to another host", false, func(t *testing.T) *jwksServer { return newJWKSServer(t, k1) }, "localhost",
			"redirect from 127.0.0.1 to another host (localhost) refused"},
		{"https to http", true, func(t *testing.T) *jwksServer { return newJWKSServer(t, k1) }, "127.0.0.1",
			"redirect from https to http refused"},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			srv := newJWKSServer(t)
			if tc.tls {
				srv = newTLSJWKSServer(t)
			}
			target := tc.target(t)
			scheme := "http"
			if target.TLS != nil {
				scheme = "https"
			}
			srv.redirect("/jwks", scheme+"://"+tc.host+":"+port(target)+"/jwks")
			v := newVerifier(t, Config{Audience: testAudience, JWKSURL: srv.URL + "/jwks", HTTPClient: srv.Client(), JWKSRefresh: time.Hour})
			if ready, detail := v.Ready(); ready || !strings.Contains(detail, tc.want) {
				t.Fatalf("Ready() = %v, %q; want not ready with %q", ready, detail, tc.want)
			}
			_, err := v.Verify(ctx, rs256(t, 1, "k1"))
			wantUnavailable(t, err, tc.want)
			if n := target.requests.Load(); n != 0 {
				t.Fatalf("the redirect target was asked %d times", n)
			}
		})
	}
	t.Run("a redirect loop is cut", func(t *testing.T) {
		srv := newTLSJWKSServer(t, k1)
		srv.redirect("/loop", "/loop")
		v := newVerifier(t, Config{Audience: testAudience, JWKSURL: srv.URL + "/loop", HTTPClient: srv.Client(), JWKSRefresh: time.Hour})
		if ready, detail := v.Ready(); ready || !strings.Contains(detail, "stopped after 5 redirects") {
			t.Fatalf("Ready() = %v, %q", ready, detail)
		}
		if n := srv.requests.Load(); n != 6 {
			t.Fatalf("requests = %d, want 6 (the first and 5 redirects)", n)
		}
	})
	t.Run("the client's own policy still applies", func(t *testing.T) {
		srv := newTLSJWKSServer(t, k1)
		srv.redirect("/old", "/jwks")
		client := srv.Client()
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return errors.New("no redirects for me") }
		v := newVerifier(t, Config{Audience: testAudience, JWKSURL: srv.URL + "/old", HTTPClient: client, JWKSRefresh: time.Hour})
		if ready, detail := v.Ready(); ready || !strings.Contains(detail, "no redirects for me") {
			t.Fatalf("Ready() = %v, %q", ready, detail)
		}
	})
}

func TestJWKSRefreshOnUnknownKID(t *testing.T) {
	srv := newJWKSServer(t, jwkOf(t, "k1", rsaKey1().Public()))
	clk := newClock(t0)
	v := newVerifier(t, Config{Audience: testAudience, JWKSURL: srv.URL, JWKSRefresh: time.Hour, Now: clk.Now})
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
	v := newVerifier(t, Config{Audience: testAudience, JWKSURL: srv.URL, JWKSRefresh: time.Hour, Now: clk.Now})
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
	v := newVerifier(t, Config{Audience: testAudience, JWKSURL: srv.URL, JWKSRefresh: 5 * time.Millisecond, Now: clk.Now})
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
	v := newVerifier(t, Config{Audience: testAudience, JWKSURL: srv.URL, JWKSRefresh: 5 * time.Millisecond, Now: clk.Now})
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
	v, err := New(context.Background(), Config{Audience: testAudience, JWKSURL: srv.URL, JWKSRefresh: time.Millisecond, Now: clk.Now})
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
	v := newVerifier(t, Config{Audience: testAudience, JWKSURL: srv.URL, JWKSRefresh: time.Millisecond, JWKSUnknownKIDLimit: time.Nanosecond, Now: clk.Now, Secret: testSecret})
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

func TestJWKSFetchBoundedWithoutClientTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// An identity provider that accepts the connection and never
		// answers, and a client without a Timeout.
		client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			<-r.Context().Done()
			return nil, r.Context().Err()
		})}
		start := time.Now()
		v, err := New(context.Background(), Config{Audience: testAudience, JWKSURL: "https://idp.example/jwks", HTTPClient: client})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		defer v.Close()
		if d := time.Since(start); d != DefaultJWKSTimeout {
			t.Fatalf("New returned after %v, want DefaultJWKSTimeout (%v)", d, DefaultJWKSTimeout)
		}
		if ready, detail := v.Ready(); ready || !strings.Contains(detail, "context deadline exceeded") {
			t.Fatalf("Ready() = %v, %q", ready, detail)
		}
	})
}
