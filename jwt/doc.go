// Package jwt verifies the JSON Web Tokens that clients present at the
// WebSocket edge. The engine never parses JWTs: the edge calls Verify, takes
// the subject from the Claims, and refuses the upgrade with 401 on an
// unauthorized error (503 on an unavailable one).
//
//	v, err := jwt.New(ctx, jwt.Config{
//		JWKSURL:  "https://idp.example.com/.well-known/jwks.json",
//		Issuer:   "https://idp.example.com/",
//		Audience: "sessiond", // required with JWKSURL or PublicKeys
//	})
//	if err != nil { ... } // a configuration error only
//	defer v.Close()
//
//	claims, err := v.Verify(r.Context(), bearer)
//	if err != nil {
//		// *sessiond.Error: CodeUnauthorized (401), or CodeUnavailable (503)
//		// while the JWK Set has not loaded. Its Message is safe to return.
//	}
//	subject := claims.Subject
//
// # Keys and algorithms
//
// A Verifier holds any mix of an HMAC secret (Config.Secret), PEM public
// keys (Config.PublicKeys) and a JWKS URL (Config.JWKSURL). The algorithm is
// fixed by the key's type, never by the token: a secret verifies HS256 only,
// an RSA key RS256 only, an ECDSA P-256 key ES256 only, an Ed25519 key EdDSA
// only. Each key type has its own parser restricted with
// jwt.WithValidMethods to that one algorithm, so "alg": "none", HS256 tokens
// keyed with an RSA public key, and any header alg that does not match the
// chosen key are refused. A header with a "crit" member is refused whatever
// it lists (RFC 7515 section 4.1.11: this verifier understands no
// extension).
//
// # Audience
//
// The keys of an identity provider (PublicKeys, JWKSURL) sign tokens for
// every service it serves; only aud tells the tokens meant for this server
// apart. So with either of them New requires Config.Audience, unless
// Config.AllowAnyAudience is set to accept tokens whatever their aud
// (setting both is an error). With only Secret, a key this server alone
// holds, Audience is optional.
//
// # Choosing the key
//
// Keys from Secret and PublicKeys have no kid; keys from the JWK Set carry
// the kid the set gives them.
//
//   - A token with a kid is tried against the JWKS keys with that kid. If
//     none has it, the JWK Set is refreshed (at most once per
//     Config.JWKSUnknownKIDLimit, 10s by default) and looked up again; if
//     still none has it, the kid-less keys (Secret, PublicKeys) are tried,
//     and with no such key of the token's algorithm the token is refused
//     with "unknown key id". (Before the set has first loaded, the kid-less
//     keys are tried at once; see JWKS.)
//   - A token without a kid is tried against every key whose algorithm is
//     the token's: Secret and PublicKeys in configured order, then the JWKS
//     keys in the set's order. The first that verifies wins.
//
// Once a key verifies the signature, a failed claim check is final (other
// keys are not tried).
//
// # JWKS
//
// JWKSURL must be https. http is accepted only when the host is loopback:
// "localhost" or a literal loopback address (127.0.0.0/8, ::1); other names
// are not resolved to find out. A redirect is followed only to the same
// host (any port, http to https allowed), never from https to http, and at
// most 5 times. Config.HTTPClient is copied to add this policy (its own
// CheckRedirect, if any, is consulted after it); the caller's client is not
// modified.
//
// The JWK Set is fetched and parsed here rather than with
// github.com/MicahParks/keyfunc/v3 (v3.9.0) or its github.com/MicahParks/jwkset.
// keyfunc's unknown-kid refresh is rate-limited by golang.org/x/time/rate on
// the wall clock and its refresh goroutine stops when a context is cancelled
// but cannot be waited for, so neither the rate limit nor "no goroutine
// outlives Close" could be tested deterministically; it also verifies kid-less
// tokens against every key in a jwt.VerificationKeySet instead of pinning the
// algorithm per key. Using jwkset alone would still leave the refresher to
// write and add two modules for what is about eighty lines of standard
// library code (RSA, EC P-256 and OKP Ed25519 keys; others are skipped).
//
// New fetches the set once (bounded by its ctx and by the client's Timeout,
// or 10s if it has none) and starts one goroutine, the refresher; Close stops and
// waits for it. New fails only on configuration errors: an identity provider
// that is down at start does not stop the server. Until a set has loaded:
//
//   - the refresher retries with exponential backoff: the wait starts at 1s
//     and doubles after each failed attempt, capped at Config.JWKSRefresh;
//     each wait is shortened by up to half at random (jitter), so that
//     servers restarted together do not retry in step;
//   - a token that only a key of the set could verify (alg RS256, ES256 or
//     EdDSA, and no Secret or PublicKeys key verifies it) is refused with
//     CodeUnavailable, not CodeUnauthorized: its Message is "signing keys
//     not loaded yet" and its Err the last fetch error, so that Error()
//     reads "signing keys not loaded yet: <last fetch error>". It also asks
//     the refresher for a fetch now, under the same rate limit as unknown
//     kids, and does not wait for it. Tokens that Secret or PublicKeys
//     verify, and tokens no JWKS key could verify (HS256, "none"), are
//     judged as usual;
//   - Ready reports false, with the last fetch error and its time.
//
// Once loaded, the set is refreshed every Config.JWKSRefresh (5m by
// default) and on demand for unknown kids; a failed refresh is logged, the
// keys in use are kept, and Ready stays true (its detail names the failure).
//
// # Claims
//
// exp, nbf and iat are checked against Config.Now with Config.Leeway (30s
// by default; a negative Leeway means none): an expired token, a token not
// yet valid and one issued in the future are refused. A token without exp is
// refused unless Config.AllowNoExpiry is set (the zero value refuses). A
// token whose lifetime, exp - iat (exp - now if it has no iat), exceeds
// Config.MaxLifetime (24h by default; a negative value means no limit) is
// refused; no leeway applies to that measure, and a token without exp is
// left to AllowNoExpiry. Issuer and Audience are checked when configured.
// The subject comes from Config.SubjectClaim ("sub" by default) and must be
// a non-empty string.
//
// # Errors
//
// A token refused is a *sessiond.Error with Code sessiond.CodeUnauthorized
// (errors.Is(err, sessiond.ErrUnauthorized)). Its Message is one of the
// following, which are stable: the edge returns them in the 401 body.
// Neither errors nor logs ever contain the token.
//
//	missing token                  the token is empty
//	token too large                longer than MaxTokenSize (16 KiB)
//	malformed token                not three base64url parts of JSON
//	signing algorithm not allowed  no configured key verifies the header's alg
//	unknown key id                 kid matches no key, even after a JWKS refresh
//	bad signature                  no candidate key verifies the signature
//	token expired                  exp is past (beyond Leeway)
//	token not yet valid            nbf is in the future (beyond Leeway)
//	token issued in the future     iat is in the future (beyond Leeway)
//	token has no expiry            no exp, and AllowNoExpiry is off
//	token lifetime exceeds <max>   exp - iat is over MaxLifetime, e.g. "token lifetime exceeds 24h0m0s"
//	critical header not supported  the header has a crit member
//	invalid claims                 a registered claim has the wrong JSON type
//	wrong issuer                   iss is not Config.Issuer
//	wrong audience                 aud does not contain Config.Audience
//	no subject claim "sub"         the subject claim is missing, empty or not a string
//
// The one other failure is the CodeUnavailable error described under JWKS
// (errors.Is(err, sessiond.ErrUnavailable)), Message "signing keys not
// loaded yet": the token was not judged, and the client may retry. Only its
// Message is meant for clients; its Err (the fetch error) is for logs.
//
// # Readiness
//
// Ready reports whether the Verifier has every key source it was configured
// with, and a detail for operators, e.g. "jwks: not loaded yet: GET
// https://idp.example.com/jwks: status 503 Service Unavailable; last attempt
// 2030-01-02T03:04:05Z". A readiness probe (/readyz) can report it.
//
// # Development tokens
//
// Sign makes an HS256 token with sub, iat and exp, for `sessiond token` and
// for tests.
package jwt
