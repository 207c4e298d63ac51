package jwt

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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
	DefaultLeeway              = 30 * time.Second
	DefaultMaxLifetime         = 24 * time.Hour
	DefaultJWKSRefresh         = 5 * time.Minute
	DefaultJWKSUnknownKIDLimit = 10 * time.Second
	DefaultJWKSTimeout         = 10 * time.Second
)

// MaxTokenSize is the largest token Verify reads; longer ones are refused
// with "token too large" before any decoding.
const MaxTokenSize = 16 << 10

// Config configures a Verifier. At least one of Secret, PublicKeys and
// JWKSURL must be set; every configured key is accepted. With PublicKeys or
// JWKSURL, Audience (or the explicit waiver AllowAnyAudience) is required
// too.
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

	// JWKSURL is the URL of a JWK Set (RFC 7517). It must be https; http is
	// allowed only when the host is loopback ("localhost", 127.0.0.0/8 or
	// ::1). Redirects are followed only within the URL's host (any port),
	// never from https to http, and at most 5.
	//
	// New fetches it once; if that fails, New still succeeds and the set is
	// fetched again in the background with exponential backoff (about 1s,
	// doubling, with jitter, at most JWKSRefresh apart) until it loads.
	// Meanwhile a token that only its keys could verify is refused with
	// sessiond.CodeUnavailable, and Ready reports false. Once loaded, the
	// set is refreshed every JWKSRefresh and when a token names a kid the
	// set lacks (at most once per JWKSUnknownKIDLimit); a failed refresh
	// keeps the keys in use. RSA, EC P-256 and OKP Ed25519 signing keys are
	// used; others are skipped.
	JWKSURL string

	// JWKSRefresh is the period of the background refresh, and the longest
	// wait between two retries before the set has first loaded. Zero means
	// DefaultJWKSRefresh (5m).
	JWKSRefresh time.Duration

	// JWKSUnknownKIDLimit is the least time between two fetches caused by
	// tokens, measured with Now: by unknown kids, and by tokens that arrive
	// before the set has loaded. Zero means DefaultJWKSUnknownKIDLimit
	// (10s).
	JWKSUnknownKIDLimit time.Duration

	// Issuer, if set, must equal the token's iss claim.
	Issuer string

	// Audience, if set, must be one of the token's aud values. It is
	// required with PublicKeys or JWKSURL (New fails without it): an
	// identity provider's keys sign tokens for every service it serves, and
	// aud is what tells those for this server apart. With only Secret (the
	// server's own key) it is optional.
	Audience string

	// AllowAnyAudience waives the Audience requirement of PublicKeys and
	// JWKSURL: tokens are accepted whatever their aud. The zero value,
	// false, requires Audience. Setting both is a configuration error.
	AllowAnyAudience bool

	// Leeway is the clock skew allowed when checking exp, nbf and iat.
	// Zero means DefaultLeeway (30s); a negative value means none.
	Leeway time.Duration

	// MaxLifetime is the longest lifetime accepted: a token whose exp is
	// more than MaxLifetime after its iat (after the time of verification,
	// for a token without iat) is refused. Zero means DefaultMaxLifetime
	// (24h); a negative value means no limit. Tokens without exp are
	// governed by AllowNoExpiry alone.
	MaxLifetime time.Duration

	// SubjectClaim names the claim that holds the subject; it must be a
	// non-empty string in every token. Zero means "sub". Example: "email".
	SubjectClaim string

	// AllowNoExpiry accepts tokens that have no exp claim. The zero value,
	// false, refuses them ("token has no expiry"): a token that never
	// expires is a credential that can never be taken back.
	AllowNoExpiry bool

	// Now tells the time for exp, nbf, iat and MaxLifetime, for the
	// unknown-kid rate limit and for the times Ready reports. Zero means
	// time.Now.
	Now func() time.Time

	// HTTPClient fetches the JWK Set. New uses a copy of it with the
	// redirect policy described at JWKSURL (which then calls the client's
	// own CheckRedirect, if any); the client itself is not modified. If its
	// Timeout is zero, each fetch is bounded by DefaultJWKSTimeout (10s)
	// all the same. Zero means a client with a DefaultJWKSTimeout timeout.
	HTTPClient *http.Client

	// Logger receives JWKS fetch failures and skipped keys; tokens are
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
	now          func() time.Time
	maxLifetime  time.Duration // 0: no limit
	msgLifetime  string        // the refusal of a token over maxLifetime
	closeOnce    sync.Once
}

// Validate checks cfg as New does, with New's errors, without fetching
// anything: at least one key, the secret's length, the public keys
// parseable, the JWKS URL's form, the audience required with public keys
// or a JWKS URL, no negative JWKSRefresh or JWKSUnknownKIDLimit. New fails
// exactly when Validate does.
func (cfg *Config) Validate() error {
	_, err := cfg.staticKeys()
	return err
}

// staticKeys is Validate, returning the keys of Secret and PublicKeys.
func (cfg *Config) staticKeys() ([]key, error) {
	if len(cfg.Secret) == 0 && len(cfg.PublicKeys) == 0 && cfg.JWKSURL == "" {
		return nil, sessiond.Errorf(sessiond.CodeInvalidArgument, "", "no verification key: set Secret, PublicKeys or JWKSURL")
	}
	var keys []key
	if len(cfg.Secret) > 0 {
		if err := checkSecret(cfg.Secret); err != nil {
			return nil, err
		}
		keys = append(keys, key{kind: kindHMAC, key: append([]byte(nil), cfg.Secret...)})
	}
	for i, p := range cfg.PublicKeys {
		k, err := parsePEM(p)
		if err != nil {
			return nil, sessiond.Errorf(sessiond.CodeInvalidArgument, fmt.Sprintf("PublicKeys[%d]", i), "%v", err)
		}
		keys = append(keys, k)
	}
	if cfg.JWKSURL != "" {
		if err := checkJWKSURL(cfg.JWKSURL); err != nil {
			return nil, sessiond.Errorf(sessiond.CodeInvalidArgument, "JWKSURL", "%v", err)
		}
	}
	switch {
	case cfg.Audience != "" && cfg.AllowAnyAudience:
		return nil, sessiond.Errorf(sessiond.CodeInvalidArgument, "AllowAnyAudience",
			"contradicts Audience %q: set one or the other", cfg.Audience)
	case cfg.Audience == "" && !cfg.AllowAnyAudience && (len(cfg.PublicKeys) > 0 || cfg.JWKSURL != ""):
		return nil, sessiond.Errorf(sessiond.CodeInvalidArgument, "Audience",
			"is required with PublicKeys or JWKSURL (an identity provider signs tokens for other services too): "+
				"set it to the aud of this server's tokens, or set AllowAnyAudience to accept any")
	case cfg.JWKSRefresh < 0:
		return nil, sessiond.Errorf(sessiond.CodeInvalidArgument, "JWKSRefresh", "must not be negative (got %v)", cfg.JWKSRefresh)
	case cfg.JWKSUnknownKIDLimit < 0:
		return nil, sessiond.Errorf(sessiond.CodeInvalidArgument, "JWKSUnknownKIDLimit", "must not be negative (got %v)", cfg.JWKSUnknownKIDLimit)
	}
	return keys, nil
}

// New checks cfg (see Validate) and returns a Verifier. With a JWKSURL it
// fetches the key set once (bounded by ctx and the HTTP client's timeout)
// and starts the background refresher, which runs until Close. A failed
// fetch does not make New fail: the refresher keeps trying (see
// Config.JWKSURL) and Ready says why it is not ready. Configuration errors
// are *sessiond.Error with CodeInvalidArgument and the offending field in
// Field.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	keys, err := cfg.staticKeys()
	if err != nil {
		return nil, err
	}
	v := &Verifier{
		static:       keys,
		subjectClaim: cfg.SubjectClaim,
		issuer:       cfg.Issuer,
		audience:     cfg.Audience,
		now:          cfg.Now,
	}
	if v.subjectClaim == "" {
		v.subjectClaim = DefaultSubjectClaim
	}
	if v.now == nil {
		v.now = time.Now
	}
	leeway := cfg.Leeway
	switch {
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway < 0:
		leeway = 0
	}
	switch {
	case cfg.MaxLifetime == 0:
		v.maxLifetime = DefaultMaxLifetime
	case cfg.MaxLifetime > 0:
		v.maxLifetime = cfg.MaxLifetime
	}
	v.msgLifetime = fmt.Sprintf("%s %v", msgLifetimePrefix, v.maxLifetime)

	opts := []gojwt.ParserOption{
		gojwt.WithTimeFunc(v.now),
		gojwt.WithLeeway(leeway),
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
		s := newJWKS(cfg.JWKSURL, cfg.HTTPClient, cfg.Logger, v.now, cfg.JWKSRefresh, cfg.JWKSUnknownKIDLimit)
		s.refresh(ctx, "fetch")
		s.start()
		v.jwks = s
	}
	return v, nil
}

// Ready reports whether the Verifier has every key source it was
// configured with: always with Secret and PublicKeys alone; with a JWKSURL,
// once a JWK Set has loaded (it stays ready if later refreshes fail, as the
// keys in use are kept). detail is "" without a JWKSURL; with one it
// describes the set, e.g.
//
//	jwks: not loaded yet: GET https://idp.example/jwks: status 503 Service Unavailable; last attempt 2030-01-02T03:04:05Z
//	jwks: 3 keys, loaded 2030-01-02T03:04:05Z
//	jwks: 3 keys, loaded 2030-01-02T03:04:05Z; last refresh failed 2030-01-02T03:09:05Z: ...
//
// It is meant for a readiness probe and operators' logs, not for clients.
func (v *Verifier) Ready() (ready bool, detail string) {
	if v.jwks == nil {
		return true, ""
	}
	return v.jwks.status()
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
	msgCritical       = "critical header not supported"
	msgLifetimePrefix = "token lifetime exceeds" // + " " + the maximum, e.g. "24h0m0s"

	// msgKeysNotLoaded is the Message of the CodeUnavailable error; its Err
	// is the last JWKS fetch error.
	msgKeysNotLoaded = "signing keys not loaded yet"
)

func unauthorized(msg string) error {
	return &sessiond.Error{Code: sessiond.CodeUnauthorized, Message: msg}
}

// Verify checks token and returns its claims. ctx bounds only the wait for a
// JWKS refresh caused by an unknown kid. A refused token is a
// *sessiond.Error with CodeUnauthorized whose Message says why (see the
// package documentation); while the JWK Set has not loaded, a token that
// only its keys could verify is instead a *sessiond.Error with
// CodeUnavailable. Errors never contain the token.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	switch {
	case token == "":
		return nil, unauthorized(msgMissing)
	case len(token) > MaxTokenSize:
		return nil, unauthorized(msgTooLarge)
	}
	h, ok := peekHeader(token)
	if !ok {
		return nil, unauthorized(msgMalformed)
	}
	if h.crit {
		return nil, unauthorized(msgCritical)
	}
	var remote []key
	loaded := true
	if v.jwks != nil {
		remote, loaded = v.jwks.snapshot()
	}
	keys, byKID := v.candidates(h.kid, remote)
	if !byKID && h.kid != "" && v.jwks != nil && loaded {
		v.jwks.refreshUnknown(ctx)
		remote, _ = v.jwks.snapshot()
		keys, byKID = v.candidates(h.kid, remote)
	}
	tried := false
	for _, k := range keys {
		if k.kind.alg() != h.alg {
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
	if !loaded && jwksAlg(h.alg) {
		// A key of the set might have verified it: not the client's
		// fault. Ask for a fetch sooner than the backoff would, without
		// waiting for it (the rate limit of unknown kids applies).
		v.jwks.request()
		return nil, v.jwks.notLoaded()
	}
	switch {
	case tried:
		return nil, unauthorized(msgBadSignature)
	case h.kid != "" && !byKID:
		return nil, unauthorized(msgUnknownKey)
	}
	return nil, unauthorized(msgAlgorithm)
}

// jwksAlg reports whether a key from a JWK Set can have algorithm alg.
func jwksAlg(alg string) bool {
	switch alg {
	case kindRSA.alg(), kindECDSA.alg(), kindEd25519.alg():
		return true
	}
	return false
}

// candidates returns the keys to try, in order, for a token with the given
// kid, where remote are the JWKS keys: with a kid, the JWKS keys carrying
// that kid (byKID is true), or if none does, the keys without a kid (Secret
// and PublicKeys); without a kid, every key, Secret and PublicKeys first.
func (v *Verifier) candidates(kid string, remote []key) (keys []key, byKID bool) {
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
	// The time claims were type-checked by the parser's validation.
	exp, _ := mc.GetExpirationTime()
	iat, _ := mc.GetIssuedAt()
	if v.maxLifetime > 0 && exp != nil {
		from := v.now()
		if iat != nil {
			from = iat.Time
		}
		if exp.Sub(from) > v.maxLifetime {
			return nil, unauthorized(v.msgLifetime)
		}
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
	if exp != nil {
		c.ExpiresAt = exp.Time
	}
	if t, _ := mc.GetNotBefore(); t != nil {
		c.NotBefore = t.Time
	}
	if iat != nil {
		c.IssuedAt = iat.Time
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

// header is what Verify reads of a token's header before choosing keys.
type header struct {
	alg  string
	kid  string // "" if absent
	crit bool   // the header has a "crit" member, whatever its value
}

// peekHeader reads alg, kid and the presence of crit from the token's
// header, decoding it the way the jwt library does (a JSON object, so that
// duplicate or differently cased members resolve the same way). It reports
// false for anything that is not three dot-separated parts with a
// well-formed header.
func peekHeader(token string) (h header, ok bool) {
	enc, rest, ok1 := strings.Cut(token, ".")
	_, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") {
		return header{}, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(enc)
	if err != nil {
		return header{}, false
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return header{}, false
	}
	if h.alg, ok = m["alg"].(string); !ok {
		return header{}, false
	}
	if x, present := m["kid"]; present {
		if h.kid, ok = x.(string); !ok {
			return header{}, false
		}
	}
	// RFC 7515 section 4.1.11: a recipient must refuse a token whose crit
	// names an extension it does not understand, and this verifier
	// understands none.
	_, h.crit = m["crit"]
	return h, true
}

// checkSecret refuses HMAC secrets shorter than 256 bits.
func checkSecret(secret []byte) error {
	if len(secret) < minSecretLen {
		return sessiond.Errorf(sessiond.CodeInvalidArgument, "Secret",
			"is %d bytes; HS256 needs at least %d (e.g. openssl rand -base64 32)", len(secret), minSecretLen)
	}
	return nil
}
