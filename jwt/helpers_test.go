package jwt

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/sessiondtest"
)

// t0 is the test clock's time: every token is made relative to it.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

var testSecret = []byte("0123456789abcdef0123456789abcdef") // 32 bytes

// testAudience is the aud of the tokens claims makes, and the Audience of
// the Verifiers that need one (those with PublicKeys or a JWKSURL).
const testAudience = "sessiond"

// Keys are generated once per test binary: RSA generation is slow.
var (
	rsaKey1 = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	rsaKey2 = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	ecKey   = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
	edKey = sync.OnceValue(func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// pemPKIX encodes a public key as a PKIX "PUBLIC KEY" PEM block.
func pemPKIX(tb testing.TB, pub any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// pemCert wraps pub in a self-signed X.509 certificate made with priv.
func pemCert(tb testing.TB, pub, priv any) []byte {
	tb.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// claims returns valid claims for subject alice and testAudience at t0,
// plus extra (a nil value removes the claim).
func claims(extra map[string]any) gojwt.MapClaims {
	c := gojwt.MapClaims{
		"sub": "alice",
		"aud": testAudience,
		"iat": t0.Add(-time.Minute).Unix(),
		"exp": t0.Add(time.Hour).Unix(),
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// sign makes a token with method, signing key, kid ("" for none) and claims.
func sign(tb testing.TB, m gojwt.SigningMethod, key any, kid string, c gojwt.MapClaims) string {
	tb.Helper()
	tok := gojwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// hs256 is a valid HS256 token for alice signed with testSecret.
func hs256(tb testing.TB, extra map[string]any) string {
	tb.Helper()
	return sign(tb, gojwt.SigningMethodHS256, testSecret, "", claims(extra))
}

// rawToken assembles a token from a header and claims JSON and a signature,
// without any library checks.
func rawToken(header, payload string, sig []byte) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(sig)
}

// clock is a settable time source.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.Set(t); return c }
func (c *clock) Now() time.Time   { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Set(t time.Time)  { c.ns.Store(t.UnixNano()) }
func (c *clock) Add(d time.Duration) {
	c.ns.Add(int64(d))
}

// newVerifier returns a Verifier for cfg with Now at t0 unless set, closed
// at the end of the test.
func newVerifier(tb testing.TB, cfg Config) *Verifier {
	tb.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return t0 }
	}
	v, err := New(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(v.Close)
	return v
}

// wantRefused checks that err is an unauthorized *sessiond.Error with msg
// that does not contain the token.
func wantRefused(tb testing.TB, err error, msg, token string) {
	tb.Helper()
	var e *sessiond.Error
	if !errors.As(err, &e) {
		tb.Fatalf("err = %v (%T), want *sessiond.Error %q", err, err, msg)
	}
	if e.Code != sessiond.CodeUnauthorized || e.Message != msg {
		tb.Fatalf("err = {Code: %s, Message: %q}, want {Code: %s, Message: %q}", e.Code, e.Message, sessiond.CodeUnauthorized, msg)
	}
	if !errors.Is(err, sessiond.ErrUnauthorized) {
		tb.Fatalf("errors.Is(err, ErrUnauthorized) = false")
	}
	if token != "" && strings.Contains(err.Error(), token) {
		tb.Fatalf("error contains the token")
	}
}

// wantVerdict checks a Verify's error against a table's expectation: nil
// for msg "", else wantRefused.
func wantVerdict(tb testing.TB, err error, msg, token string) {
	tb.Helper()
	if msg == "" {
		if err != nil {
			tb.Fatalf("Verify: %v", err)
		}
		return
	}
	wantRefused(tb, err, msg, token)
}

// wantUnavailable checks that err is the CodeUnavailable *sessiond.Error of
// a Verifier whose JWK Set has not loaded, and that its text carries the
// last fetch error (cause).
func wantUnavailable(tb testing.TB, err error, cause string) {
	tb.Helper()
	var e *sessiond.Error
	if !errors.As(err, &e) {
		tb.Fatalf("err = %v (%T), want *sessiond.Error with CodeUnavailable", err, err)
	}
	if e.Code != sessiond.CodeUnavailable || e.Message != msgKeysNotLoaded || !errors.Is(err, sessiond.ErrUnavailable) {
		tb.Fatalf("err = {Code: %s, Message: %q}, want {Code: %s, Message: %q}", e.Code, e.Message, sessiond.CodeUnavailable, msgKeysNotLoaded)
	}
	if want := "signing keys not loaded yet: "; !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), cause) {
		tb.Fatalf("err = %q, want it to start with %q and contain %q", err, want, cause)
	}
}

// wantConfigError checks that err is a CodeInvalidArgument *sessiond.Error
// on field whose text contains substr.
func wantConfigError(tb testing.TB, err error, field, substr string) {
	tb.Helper()
	var e *sessiond.Error
	if !errors.As(err, &e) || e.Code != sessiond.CodeInvalidArgument || e.Field != field {
		tb.Fatalf("err = %v, want CodeInvalidArgument on field %q", err, field)
	}
	if !strings.Contains(err.Error(), substr) {
		tb.Fatalf("err = %q, want it to contain %q", err, substr)
	}
}

// roundTripFunc is an http.RoundTripper that needs no network, for tests
// in a synctest bubble and for URLs that must not be dialled.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// jsonResponse is a response with status and body.
func jsonResponse(status int, body []byte) *http.Response {
	return &http.Response{
		StatusCode: status,
		Status:     fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(bytes.NewReader(body)),
	}
}

// jwksDoc is the JSON of a JWK Set with keys.
func jwksDoc(tb testing.TB, keys ...map[string]any) []byte {
	tb.Helper()
	if keys == nil {
		keys = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// jwkOf returns the JWK of a public key with kid.
func jwkOf(tb testing.TB, kid string, pub any) map[string]any {
	tb.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	switch pk := pub.(type) {
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
			"n": enc(pk.N.Bytes()), "e": enc(big.NewInt(int64(pk.E)).Bytes())}
	case *ecdsa.PublicKey:
		b, err := pk.Bytes()
		if err != nil {
			tb.Fatal(err)
		}
		return map[string]any{"kty": "EC", "kid": kid, "crv": "P-256", "x": enc(b[1:33]), "y": enc(b[33:])}
	case ed25519.PublicKey:
		return map[string]any{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": enc(pk)}
	}
	tb.Fatalf("jwkOf: %T", pub)
	return nil
}

// jwksServer serves a JWK Set that tests can replace, and counts requests.
// Paths in redirects are answered with a 302 to their location instead.
type jwksServer struct {
	*httptest.Server
	requests  atomic.Int64
	mu        sync.Mutex
	body      []byte
	status    int
	redirects map[string]string
}

// newJWKSServer starts a plain http JWKS server on 127.0.0.1.
func newJWKSServer(tb testing.TB, keys ...map[string]any) *jwksServer {
	tb.Helper()
	return startJWKSServer(tb, false, keys...)
}

// newTLSJWKSServer starts an https JWKS server on 127.0.0.1; its Client()
// trusts its certificate (valid for 127.0.0.1, ::1 and example.com).
func newTLSJWKSServer(tb testing.TB, keys ...map[string]any) *jwksServer {
	tb.Helper()
	return startJWKSServer(tb, true, keys...)
}

func startJWKSServer(tb testing.TB, tls bool, keys ...map[string]any) *jwksServer {
	tb.Helper()
	s := &jwksServer{status: http.StatusOK}
	s.set(tb, keys...)
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		body, status, location := s.body, s.status, s.redirects[r.URL.Path]
		s.mu.Unlock()
		if location != "" {
			http.Redirect(w, r, location, http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	// Handshakes refused by clients that do not trust the test
	// certificate are expected; they are not worth a log line.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	tb.Cleanup(s.Close)
	return s
}

// redirect makes the server answer path with a redirect to location.
func (s *jwksServer) redirect(path, location string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.redirects == nil {
		s.redirects = map[string]string{}
	}
	s.redirects[path] = location
}

// set replaces the served key set.
func (s *jwksServer) set(tb testing.TB, keys ...map[string]any) {
	tb.Helper()
	s.setRaw(http.StatusOK, jwksDoc(tb, keys...))
}

func (s *jwksServer) setRaw(status int, body []byte) {
	s.mu.Lock()
	s.status, s.body = status, body
	s.mu.Unlock()
}

// waitRequests waits until the server has answered at least n requests.
func (s *jwksServer) waitRequests(tb testing.TB, n int64) {
	tb.Helper()
	sessiondtest.Eventually(tb, fmt.Sprintf("the JWKS server to answer %d requests", n), func() bool { return s.requests.Load() >= n })
}

func p384Key(tb testing.TB) any {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k.Public()
}

func rsa1024Key(tb testing.TB) any {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		tb.Fatal(err)
	}
	return k.Public()
}

func otherEd(tb testing.TB) ed25519.PrivateKey {
	tb.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
