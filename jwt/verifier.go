package jwt

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/sessiond/sessiond"
)

// Defaults for the zero values of Config.
const (
	DefaultSubjectClaim        = "sub"
	DefaultJWKSRefresh         = 5 * time.Minute
	DefaultJWKSUnknownKIDLimit = 10 * time.Second
	DefaultJWKSTimeout         = 10 * time.Second
)

// MaxTokenSize is the largest token Verify reads; longer ones are refused
// with "token too large" before any decoding.
const MaxTokenSize = 16 << 10

// Config configures a Verifier. At least one of Secret, PublicKeys and
// JWKSURL must be set; every configured key is accepted.
type Config struct {
	// Secret is the HS256 key: at least 32 bytes. Empty means no HMAC key.
	Secret []byte

	// PublicKeys are PEM-encoded public keys, one per entry: PKIX "PUBLIC
	// KEY", PKCS #1 "RSA PUBLIC KEY" or X.509 "CERTIFICATE" (its key is used;
	// the certificate is not otherwise checked). The key's type fixes its
	// algorithm: RSA (>= 2048 bits) verifies RS256, ECDSA P-256 ES256, and
	// Ed25519 EdDSA. These keys have no kid; see "Choosing the key" in the
	// package documentation.
	PublicKeys [][]byte

	// JWKSURL is an http(s) URL serving a JWK Set (RFC 7517). It is fetched
	// by New, which fails if it cannot be, then refreshed in the background
	// every JWKSRefresh and when a token names a kid the set lacks (at most
	// once per JWKSUnknownKIDLimit). A failed refresh keeps the keys in use.
	// RSA, EC P-256 and OKP Ed25519 signing keys are used; others are skipped.
	JWKSURL string

	// JWKSRefresh is the period of the background refresh. Zero means
	// DefaultJWKSRefresh (5m).
	JWKSRefresh time.Duration

	// JWKSUnknownKIDLimit is the least time between two refreshes caused by
	// unknown kids, measured with Now. Zero means
	// DefaultJWKSUnknownKIDLimit (10s).
	JWKSUnknownKIDLimit time.Duration

	// Issuer, if set, must equal the token's iss claim.
	Issuer string

	// Audience, if set, must be one of the token's aud values.
	Audience string

	// Leeway is the clock skew allowed when checking exp, nbf and iat.
	// Zero means none.
	Leeway time.Duration

	// SubjectClaim names the claim that holds the subject; it must be a
	// non-empty string in every token. Zero means "sub". Example: "email".
	SubjectClaim string

	// AllowNoExpiry accepts tokens that have no exp claim. The zero value,
	// false, refuses them ("token has no expiry"): a token that never
	// expires is a credential that can never be taken back.
	AllowNoExpiry bool

	// Now tells the time for exp, nbf and iat and for the unknown-kid rate
	// limit. Zero means time.Now.
	Now func() time.Time

	// HTTPClient fetches the JWK Set. Zero means a client with a 10s
	// timeout.
	HTTPClient *http.Client

	// Logger receives JWKS refresh failures and skipped keys; tokens are
	// never logged. Zero means no logging.
	Logger *slog.Logger
}

// Claims are the verified claims of a token.
type Claims struct {
	// Subject is the value of the configured subject claim ("sub" unless
	// Config.SubjectClaim says otherwise); never empty.
	Subject   string
	Issuer    string    // iss, or ""
	Audience  []string  // aud, as a list even if the token has one string
	ExpiresAt time.Time // exp; zero if absent (only with AllowNoExpiry)
	NotBefore time.Time // nbf; zero if absent
	IssuedAt  time.Time // iat; zero if absent
	ID        string    // jti, or ""
	// KeyID is the kid of the key that verified the token: "" for a key
	// from Config.Secret or Config.PublicKeys.
	KeyID string
	// Raw holds every claim as decoded by encoding/json (numbers are
	// float64). It is the caller's to keep.
	Raw map[string]any
}

// Verifier verifies tokens. It is safe for concurrent use.
type Verifier struct {
	static       []key
	jwks         *jwks // nil without JWKSURL
	parsers      map[kind]*gojwt.Parser
	subjectClaim string
	issuer       string
	audience     string
	closeOnce    sync.Once
}

// New checks cfg and returns a Verifier. With a JWKSURL it fetches the key
// set (bounded by ctx) and starts the background refresher, which runs until
// Close. Configuration errors are *sessiond.Error with CodeInvalidArgument
// and the offending field in Field; a failed first JWKS fetch is
// CodeUnavailable.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	v := &Verifier{
		subjectClaim: cfg.SubjectClaim,
		issuer:       cfg.Issuer,
		audience:     cfg.Audience,
	}
	if v.subjectClaim == "" {
		v.subjectClaim = DefaultSubjectClaim
	}
	if len(cfg.Secret) == 0 && len(cfg.PublicKeys) == 0 && cfg.JWKSURL == "" {
		return nil, sessiond.Errorf(sessiond.CodeInvalidArgument, "", "no verification key: set Secret, PublicKeys or JWKSURL")
	}
	if len(cfg.Secret) > 0 {
		if err := checkSecret(cfg.Secret); err != nil {
			return nil, err
		}
		v.static = append(v.static, key{kind: kindHMAC, key: append([]byte(nil), cfg.Secret...)})
	}
	for i, p := range cfg.PublicKeys {
		k, err := parsePEM(p)
		if err != nil {
			return nil, sessiond.Errorf(sessiond.CodeInvalidArgument, fmt.Sprintf("PublicKeys[%d]", i), "%v", err)
		}
		v.static = append(v.static, k)
	}
	switch {
	case cfg.Leeway < 0:
		return nil, sessiond.Errorf(sessiond.CodeInvalidArgument, "Leeway", "must not be negative (got %v)", cfg.Leeway)
	case cfg.JWKSRefresh < 0:
		return nil, sessiond.Errorf(sessiond.CodeInvalidArgument, "JWKSRefresh", "must not be negative (got %v)", cfg.JWKSRefresh)
	case cfg.JWKSUnknownKIDLimit < 0:
		return nil, sessiond.Errorf(sessiond.CodeInvalidArgument, "JWKSUnknownKIDLimit", "must not be negative (got %v)", cfg.JWKSUnknownKIDLimit)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}

	opts := []gojwt.ParserOption{
		gojwt.WithTimeFunc(now),
		gojwt.WithLeeway(cfg.Leeway),
		gojwt.WithIssuedAt(),
		gojwt.WithStrictDecoding(),
	}
	if !cfg.AllowNoExpiry {
		opts = append(opts, gojwt.WithExpirationRequired())
	}
	// One parser per key type, each accepting only that type's algorithm:
	// the algorithm is pinned by the key, whatever the header says.
	v.parsers = make(map[kind]*gojwt.Parser, 4)
	for _, k := range []kind{kindHMAC, kindRSA, kindECDSA, kindEd25519} {
		v.parsers[k] = gojwt.NewParser(append(slices.Clip(opts), gojwt.WithValidMethods([]string{k.alg()}))...)
	}

	if cfg.JWKSURL != "" {
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, sessiond.Errorf(sessiond.CodeInvalidArgument, "JWKSURL", "must be an http or https URL")
		}
		s := &jwks{
			url:         cfg.JWKSURL,
			client:      cfg.HTTPClient,
			log:         cfg.Logger,
			now:         now,
			every:       cfg.JWKSRefresh,
			minInterval: cfg.JWKSUnknownKIDLimit,
			wake:        make(chan struct{}, 1),
		}
		if s.client == nil {
			// An own transport, so that Close can drop its idle
			// connections without touching http.DefaultTransport's.
			s.client = &http.Client{Timeout: DefaultJWKSTimeout, Transport: http.DefaultTransport.(*http.Transport).Clone()}
			s.ownClient = true
		}
		if s.log == nil {
			s.log = slog.New(slog.DiscardHandler)
		}
		if s.every == 0 {
			s.every = DefaultJWKSRefresh
		}
		if s.minInterval == 0 {
			s.minInterval = DefaultJWKSUnknownKIDLimit
		}
		if err := s.fetch(ctx); err != nil {
			return nil, &sessiond.Error{Code: sessiond.CodeUnavailable, Field: "JWKSURL", Message: "fetching the JWK Set", Err: err}
		}
		// The refresher's lifetime is the Verifier's, not New's ctx.
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.start()
		v.jwks = s
	}
	return v, nil
}

// Close stops the JWKS refresher and waits for it to exit. It is idempotent.
// Verify keeps working after Close with the keys it had.
func (v *Verifier) Close() {
	v.closeOnce.Do(func() {
		if v.jwks != nil {
			v.jwks.close()
		}
	})
}

// Failure messages. They are part of the API: the edge returns them in the
// body of a 401 and the documentation cites them.
const (
	msgMissing        = "missing token"
	msgTooLarge       = "token too large"
	msgMalformed      = "malformed token"
	msgAlgorithm      = "signing algorithm not allowed"
	msgUnknownKey     = "unknown key id"
	msgBadSignature   = "bad signature"
	msgExpired        = "token expired"
	msgNotYetValid    = "token not yet valid"
	msgIssuedInFuture = "token issued in the future"
	msgNoExpiry       = "token has no expiry"
	msgInvalidClaims  = "invalid claims"
	msgWrongIssuer    = "wrong issuer"
	msgWrongAudience  = "wrong audience"
)

func unauthorized(msg string) error {
	return &sessiond.Error{Code: sessiond.CodeUnauthorized, Message: msg}
}

// Verify checks token and returns its claims. ctx bounds only the wait for a
// JWKS refresh caused by an unknown kid. Every failure is a *sessiond.Error
// with CodeUnauthorized whose Message says why (see the package
// documentation); it never contains the token.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	switch {
	case token == "":
		return nil, unauthorized(msgMissing)
	case len(token) > MaxTokenSize:
		return nil, unauthorized(msgTooLarge)
	}
	alg, kid, ok := peekHeader(token)
	if !ok {
		return nil, unauthorized(msgMalformed)
	}
	keys, byKID := v.candidates(kid)
	if !byKID && kid != "" && v.jwks != nil {
		v.jwks.refreshUnknown(ctx)
		keys, byKID = v.candidates(kid)
	}
	tried := false
	for _, k := range keys {
		if k.kind.alg() != alg {
			continue
		}
		tried = true
		c, err := v.verifyWith(k, token)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, gojwt.ErrTokenSignatureInvalid) {
			// The signature was good (or the token cannot be parsed at
			// all): another key would not change the verdict.
			return nil, err
		}
	}
	switch {
	case tried:
		return nil, unauthorized(msgBadSignature)
	case kid != "" && !byKID:
		return nil, unauthorized(msgUnknownKey)
	}
	return nil, unauthorized(msgAlgorithm)
}

// candidates returns the keys to try, in order, for a token with the given
// kid: with a kid, the JWKS keys carrying that kid (byKID is true), or if
// none does, the keys without a kid (Secret and PublicKeys); without a kid,
// every key, Secret and PublicKeys first.
func (v *Verifier) candidates(kid string) (keys []key, byKID bool) {
	var remote []key
	if v.jwks != nil {
		remote = v.jwks.get()
	}
	if kid == "" {
		if len(remote) == 0 {
			return v.static, false
		}
		return slices.Concat(v.static, remote), false
	}
	for _, k := range remote {
		if k.kid == kid {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return v.static, false
	}
	return keys, true
}

// verifyWith verifies token with one key, using the parser pinned to that
// key's algorithm. A signature failure is returned as the jwt library's
// error (so that Verify can try the next key); any other failure is the
// final *sessiond.Error.
func (v *Verifier) verifyWith(k key, token string) (*Claims, error) {
	mc := gojwt.MapClaims{}
	_, err := v.parsers[k.kind].ParseWithClaims(token, mc, func(*gojwt.Token) (any, error) { return k.key, nil })
	if err != nil {
		return nil, mapError(err)
	}
	c := &Claims{KeyID: k.kid, Raw: mc}
	sub, _ := mc[v.subjectClaim].(string)
	if sub == "" {
		return nil, unauthorized(fmt.Sprintf("no subject claim %q", v.subjectClaim))
	}
	c.Subject = sub
	iss, err := mc.GetIssuer()
	if err != nil {
		return nil, unauthorized(msgInvalidClaims)
	}
	if v.issuer != "" && iss != v.issuer {
		return nil, unauthorized(msgWrongIssuer)
	}
	c.Issuer = iss
	aud, err := mc.GetAudience()
	if err != nil {
		return nil, unauthorized(msgInvalidClaims)
	}
	if v.audience != "" && !slices.Contains(aud, v.audience) {
		return nil, unauthorized(msgWrongAudience)
	}
	c.Audience = aud
	// The time claims were type-checked by the parser's validation.
	if t, _ := mc.GetExpirationTime(); t != nil {
		c.ExpiresAt = t.Time
	}
	if t, _ := mc.GetNotBefore(); t != nil {
		c.NotBefore = t.Time
	}
	if t, _ := mc.GetIssuedAt(); t != nil {
		c.IssuedAt = t.Time
	}
	c.ID, _ = mc["jti"].(string)
	return c, nil
}

// mapError turns the jwt library's error into the stable message. A bad
// signature is passed through unchanged for Verify's key loop.
func mapError(err error) error {
	switch {
	case errors.Is(err, gojwt.ErrTokenSignatureInvalid):
		return err
	case errors.Is(err, gojwt.ErrTokenMalformed):
		return unauthorized(msgMalformed)
	case errors.Is(err, gojwt.ErrTokenUnverifiable):
		// Unknown or missing alg; peekHeader has already refused these.
		return unauthorized(msgAlgorithm)
	case errors.Is(err, gojwt.ErrTokenExpired):
		return unauthorized(msgExpired)
	case errors.Is(err, gojwt.ErrTokenNotValidYet):
		return unauthorized(msgNotYetValid)
	case errors.Is(err, gojwt.ErrTokenUsedBeforeIssued):
		return unauthorized(msgIssuedInFuture)
	case errors.Is(err, gojwt.ErrTokenRequiredClaimMissing):
		return unauthorized(msgNoExpiry) // exp is the only claim the parsers require
	}
	return unauthorized(msgInvalidClaims)
}

// peekHeader reads alg and kid from the token's header, decoding it the way
// the jwt library does (a JSON object, so that duplicate or differently
// cased members resolve the same way). It reports false for anything that
// is not three dot-separated parts with a well-formed header.
func peekHeader(token string) (alg, kid string, ok bool) {
	h, rest, ok1 := strings.Cut(token, ".")
	_, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") {
		return "", "", false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(h)
	if err != nil {
		return "", "", false
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return "", "", false
	}
	alg, ok = m["alg"].(string)
	if !ok {
		return "", "", false
	}
	if x, present := m["kid"]; present {
		if kid, ok = x.(string); !ok {
			return "", "", false
		}
	}
	return alg, kid, true
}

// checkSecret refuses HMAC secrets shorter than 256 bits.
func checkSecret(secret []byte) error {
	if len(secret) < minSecretLen {
		return sessiond.Errorf(sessiond.CodeInvalidArgument, "Secret",
			"is %d bytes; HS256 needs at least %d (e.g. openssl rand -base64 32)", len(secret), minSecretLen)
	}
	return nil
}
