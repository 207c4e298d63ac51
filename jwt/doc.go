// Package jwt verifies the JSON Web Tokens that clients present at the
// WebSocket edge. The engine never parses JWTs: the edge calls Verify, takes
// the subject from the Claims, and refuses the upgrade with 401 on an error.
//
//	v, err := jwt.New(ctx, jwt.Config{
//		JWKSURL:  "https://idp.example.com/.well-known/jwks.json",
//		Issuer:   "https://idp.example.com/",
//		Audience: "sessiond",
//		Leeway:   30 * time.Second,
//	})
//	if err != nil { ... }
//	defer v.Close()
//
//	claims, err := v.Verify(r.Context(), bearer)
//	if err != nil {
//		// *sessiond.Error, CodeUnauthorized; its Message is safe to return.
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
// chosen key are refused.
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
//     with "unknown key id".
//   - A token without a kid is tried against every key whose algorithm is
//     the token's: Secret and PublicKeys in configured order, then the JWKS
//     keys in the set's order. The first that verifies wins.
//
// Once a key verifies the signature, a failed claim check is final (other
// keys are not tried).
//
// # JWKS
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
// New fetches the set and fails if it cannot. One goroutine then refreshes
// it every Config.JWKSRefresh (5m by default) and on demand for unknown
// kids; a failed refresh is logged and the keys in use are kept. Close stops
// and waits for that goroutine.
//
// # Claims
//
// exp, nbf and iat are checked against Config.Now with Config.Leeway: an
// expired token, a token not yet valid and one issued in the future are
// refused. A token without exp is refused unless Config.AllowNoExpiry is set
// (the zero value refuses). Issuer and Audience are checked when configured.
// The subject comes from Config.SubjectClaim ("sub" by default) and must be a
// non-empty string.
//
// # Errors
//
// Every failure of Verify is a *sessiond.Error with Code
// sessiond.CodeUnauthorized (errors.Is(err, sessiond.ErrUnauthorized)). Its
// Message is one of the following, which are stable: the edge returns them in
// the 401 body. Neither errors nor logs ever contain the token.
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
//	invalid claims                 a registered claim has the wrong JSON type
//	wrong issuer                   iss is not Config.Issuer
//	wrong audience                 aud does not contain Config.Audience
//	no subject claim "sub"         the subject claim is missing, empty or not a string
//
// # Development tokens
//
// Sign makes an HS256 token with sub, iat and exp, for `sessiond token` and
// for tests.
package jwt
