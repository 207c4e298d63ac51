package jwt

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/sessiond/sessiond"
)

func TestNewRejectsBadConfig(t *testing.T) {
	rsaPriv := x509.MarshalPKCS1PrivateKey(rsaKey1())
	for _, tc := range []struct {
		name      string
		cfg       Config
		field     string
		msgSubstr string
	}{
		{"no key", Config{}, "", "no verification key"},
		{"short secret", Config{Secret: []byte("too-short")}, "Secret", "is 9 bytes; HS256 needs at least 32"},
		{"31-byte secret", Config{Secret: bytes.Repeat([]byte("x"), 31)}, "Secret", "needs at least 32"},
		{"not PEM", Config{Audience: testAudience, PublicKeys: [][]byte{pemPKIX(t, rsaKey1().Public()), []byte("hello")}}, "PublicKeys[1]", "no PEM block found"},
		{"private key", Config{Audience: testAudience, PublicKeys: [][]byte{pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: rsaPriv})}}, "PublicKeys[0]", "give the public key"},
		{"garbage in block", Config{Audience: testAudience, PublicKeys: [][]byte{pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")})}}, "PublicKeys[0]", "parsing PUBLIC KEY"},
		{"two blocks", Config{Audience: testAudience, PublicKeys: [][]byte{append(pemPKIX(t, rsaKey1().Public()), pemPKIX(t, ecKey().Public())...)}}, "PublicKeys[0]", "more than one PEM block"},
		{"P-384", Config{Audience: testAudience, PublicKeys: [][]byte{pemPKIX(t, p384Key(t))}}, "PublicKeys[0]", "only P-256"},
		{"RSA 1024", Config{Audience: testAudience, PublicKeys: [][]byte{pemPKIX(t, rsa1024Key(t))}}, "PublicKeys[0]", "RSA key is 1024 bits"},
		{"negative JWKSRefresh", Config{Secret: testSecret, JWKSRefresh: -time.Second}, "JWKSRefresh", "must not be negative"},
		{"bad JWKS URL", Config{Audience: testAudience, JWKSURL: "file:///etc/passwd"}, "JWKSURL", "must be an https URL"},
		{"plain http JWKS URL off loopback", Config{Audience: testAudience, JWKSURL: "http://idp.example/jwks.json"}, "JWKSURL", "http is allowed only on loopback"},
		{"JWKS URL without Audience", Config{JWKSURL: "https://idp.example/jwks.json"}, "Audience", "is required with PublicKeys or JWKSURL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Validate, which fetches nothing, refuses what New refuses,
			// with the same error.
			verr := tc.cfg.Validate()
			v, err := New(context.Background(), tc.cfg)
			if err == nil {
				v.Close()
				t.Fatal("New succeeded")
			}
			if verr == nil || verr.Error() != err.Error() {
				t.Fatalf("Validate: %v; want New's error %q", verr, err)
			}
			var e *sessiond.Error
			if !errors.As(err, &e) || e.Code != sessiond.CodeInvalidArgument || e.Field != tc.field {
				t.Fatalf("err = %#v, want CodeInvalidArgument on field %q", err, tc.field)
			}
			if !strings.Contains(err.Error(), tc.msgSubstr) {
				t.Fatalf("err = %q, want it to contain %q", err, tc.msgSubstr)
			}
		})
	}
}

func TestAlgorithms(t *testing.T) {
	rsaPub := &rsaKey1().PublicKey
	for _, tc := range []struct {
		name   string
		cfg    Config
		method gojwt.SigningMethod
		key    any
	}{
		{"HS256", Config{Secret: testSecret}, gojwt.SigningMethodHS256, testSecret},
		{"RS256 PKIX", Config{Audience: testAudience, PublicKeys: [][]byte{pemPKIX(t, rsaPub)}}, gojwt.SigningMethodRS256, rsaKey1()},
		{"RS256 PKCS1", Config{Audience: testAudience, PublicKeys: [][]byte{pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(rsaPub)})}}, gojwt.SigningMethodRS256, rsaKey1()},
		{"RS256 certificate", Config{Audience: testAudience, PublicKeys: [][]byte{pemCert(t, rsaPub, rsaKey1())}}, gojwt.SigningMethodRS256, rsaKey1()},
		{"ES256", Config{Audience: testAudience, PublicKeys: [][]byte{pemPKIX(t, ecKey().Public())}}, gojwt.SigningMethodES256, ecKey()},
		{"EdDSA", Config{Audience: testAudience, PublicKeys: [][]byte{pemPKIX(t, edKey().Public())}}, gojwt.SigningMethodEdDSA, edKey()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(t, tc.cfg)
			c, err := v.Verify(context.Background(), sign(t, tc.method, tc.key, "", claims(nil)))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Subject != "alice" {
				t.Fatalf("Subject = %q, want alice", c.Subject)
			}
		})
	}
}

func TestAlgNoneRefused(t *testing.T) {
	v := newVerifier(t, Config{Audience: testAudience, Secret: testSecret, PublicKeys: [][]byte{pemPKIX(t, rsaKey1().Public())}})
	none := sign(t, gojwt.SigningMethodNone, gojwt.UnsafeAllowNoneSignatureType, "", claims(nil))
	_, err := v.Verify(context.Background(), none)
	wantRefused(t, err, msgAlgorithm, none)
	// Case variants and a none token with a signature are refused too.
	for _, alg := range []string{"none", "None", "NONE"} {
		tok := rawToken(`{"alg":"`+alg+`","typ":"JWT"}`, `{"sub":"alice","exp":1999999999}`, []byte("x"))
		_, err := v.Verify(context.Background(), tok)
		wantRefused(t, err, msgAlgorithm, tok)
	}
}

func TestHSRSConfusionRefused(t *testing.T) {
	pub := &rsaKey1().PublicKey
	pemBytes := pemPKIX(t, pub)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	v := newVerifier(t, Config{Audience: testAudience, PublicKeys: [][]byte{pemBytes}})
	for name, hmacKey := range map[string][]byte{"PEM": pemBytes, "DER": der, "PKCS1": x509.MarshalPKCS1PublicKey(pub)} {
		t.Run(name, func(t *testing.T) {
			tok := sign(t, gojwt.SigningMethodHS256, hmacKey, "", claims(nil))
			_, err := v.Verify(context.Background(), tok)
			wantRefused(t, err, msgAlgorithm, tok)
		})
	}
}

func TestAlgKeyMismatchRefused(t *testing.T) {
	// An RS256 header where the key found is an EC key: selected by kid
	// (from a JWKS) and without kid (a static key).
	srv := newJWKSServer(t, jwkOf(t, "ec", ecKey().Public()))
	v := newVerifier(t, Config{Audience: testAudience, JWKSURL: srv.URL, PublicKeys: [][]byte{pemPKIX(t, edKey().Public())}})
	for _, kid := range []string{"ec", ""} {
		tok := sign(t, gojwt.SigningMethodRS256, rsaKey1(), kid, claims(nil))
		_, err := v.Verify(context.Background(), tok)
		wantRefused(t, err, msgAlgorithm, tok)
	}
	// An ES256 header naming the Ed25519 key's type is refused too.
	tok := sign(t, gojwt.SigningMethodES256, ecKey(), "", claims(nil))
	v2 := newVerifier(t, Config{Audience: testAudience, PublicKeys: [][]byte{pemPKIX(t, edKey().Public())}})
	_, err := v2.Verify(context.Background(), tok)
	wantRefused(t, err, msgAlgorithm, tok)
}

// TestParserPinnedPerKeyType checks the second line of defence: even when
// Verify's own alg filter is bypassed, the parser used for a key accepts
// only that key type's algorithm (jwt.WithValidMethods).
func TestParserPinnedPerKeyType(t *testing.T) {
	pub := &rsaKey1().PublicKey
	pemBytes := pemPKIX(t, pub)
	v := newVerifier(t, Config{Audience: testAudience, Secret: testSecret, PublicKeys: [][]byte{pemBytes, pemPKIX(t, ecKey().Public())}})
	rsaK, ecK, hmacK := v.static[1], v.static[2], v.static[0]
	for _, tc := range []struct {
		name string
		k    key
		tok  string
	}{
		{"HS256 token, RSA key", rsaK, sign(t, gojwt.SigningMethodHS256, pemBytes, "", claims(nil))},
		{"RS256 token, EC key", ecK, sign(t, gojwt.SigningMethodRS256, rsaKey1(), "", claims(nil))},
		{"ES256 token, HMAC key", hmacK, sign(t, gojwt.SigningMethodES256, ecKey(), "", claims(nil))},
		{"none token, HMAC key", hmacK, sign(t, gojwt.SigningMethodNone, gojwt.UnsafeAllowNoneSignatureType, "", claims(nil))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.verifyWith(tc.k, tc.tok)
			if !errors.Is(err, gojwt.ErrTokenSignatureInvalid) || !strings.Contains(err.Error(), "signing method") {
				t.Fatalf("verifyWith = %v, want the parser to refuse the signing method", err)
			}
		})
	}
}

func TestKidSelection(t *testing.T) {
	srv := newJWKSServer(t, jwkOf(t, "k1", rsaKey1().Public()), jwkOf(t, "k2", rsaKey2().Public()))
	v := newVerifier(t, Config{Audience: testAudience, JWKSURL: srv.URL, Secret: testSecret})
	ctx := context.Background()

	t.Run("kid selects the key", func(t *testing.T) {
		for kid, priv := range map[string]any{"k1": rsaKey1(), "k2": rsaKey2()} {
			c, err := v.Verify(ctx, sign(t, gojwt.SigningMethodRS256, priv, kid, claims(nil)))
			if err != nil {
				t.Fatalf("kid %s: %v", kid, err)
			}
			if c.KeyID != kid {
				t.Fatalf("KeyID = %q, want %q", c.KeyID, kid)
			}
		}
	})
	t.Run("kid is not a hint", func(t *testing.T) {
		// Signed by k2's key but naming k1: only k1 is tried.
		tok := sign(t, gojwt.SigningMethodRS256, rsaKey2(), "k1", claims(nil))
		_, err := v.Verify(ctx, tok)
		wantRefused(t, err, msgBadSignature, tok)
	})
	t.Run("no kid tries every key of the type", func(t *testing.T) {
		c, err := v.Verify(ctx, sign(t, gojwt.SigningMethodRS256, rsaKey2(), "", claims(nil)))
		if err != nil {
			t.Fatal(err)
		}
		if c.KeyID != "k2" {
			t.Fatalf("KeyID = %q, want k2", c.KeyID)
		}
		if _, err := v.Verify(ctx, hs256(t, nil)); err != nil {
			t.Fatalf("HS256 without kid: %v", err)
		}
	})
	t.Run("unknown kid falls back to kid-less keys", func(t *testing.T) {
		c, err := v.Verify(ctx, sign(t, gojwt.SigningMethodHS256, testSecret, "some-kid", claims(nil)))
		if err != nil {
			t.Fatal(err)
		}
		if c.KeyID != "" {
			t.Fatalf("KeyID = %q, want \"\"", c.KeyID)
		}
	})
	t.Run("unknown kid without a kid-less key of the type", func(t *testing.T) {
		tok := sign(t, gojwt.SigningMethodRS256, rsaKey1(), "k9", claims(nil))
		_, err := v.Verify(ctx, tok)
		wantRefused(t, err, msgUnknownKey, tok)
	})
	t.Run("several static keys without kid", func(t *testing.T) {
		v := newVerifier(t, Config{Audience: testAudience, PublicKeys: [][]byte{pemPKIX(t, rsaKey1().Public()), pemPKIX(t, ecKey().Public()), pemPKIX(t, rsaKey2().Public())}})
		for _, priv := range []any{rsaKey1(), rsaKey2()} {
			if _, err := v.Verify(ctx, sign(t, gojwt.SigningMethodRS256, priv, "", claims(nil))); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := v.Verify(ctx, sign(t, gojwt.SigningMethodES256, ecKey(), "", claims(nil))); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTimeClaims(t *testing.T) {
	leeway := 30 * time.Second
	at := func(d time.Duration) int64 { return t0.Add(d).Unix() }
	for _, tc := range []struct {
		name    string
		extra   map[string]any
		allowNo bool
		want    string // "" for accepted
	}{
		{"valid", nil, false, ""},
		{"expired", map[string]any{"exp": at(-time.Minute)}, false, msgExpired},
		{"expired within leeway", map[string]any{"exp": at(-10 * time.Second)}, false, ""},
		{"expires now", map[string]any{"exp": at(-leeway)}, false, msgExpired},
		{"nbf in the future", map[string]any{"nbf": at(time.Minute)}, false, msgNotYetValid},
		{"nbf within leeway", map[string]any{"nbf": at(10 * time.Second)}, false, ""},
		{"nbf past", map[string]any{"nbf": at(-time.Minute)}, false, ""},
		{"iat in the future", map[string]any{"iat": at(time.Minute)}, false, msgIssuedInFuture},
		{"iat within leeway", map[string]any{"iat": at(10 * time.Second)}, false, ""},
		{"no exp", map[string]any{"exp": nil}, false, msgNoExpiry},
		{"no exp allowed", map[string]any{"exp": nil}, true, ""},
		{"exp not a number", map[string]any{"exp": "tomorrow"}, false, msgInvalidClaims},
		{"expired and not yet valid", map[string]any{"exp": at(-time.Hour), "nbf": at(time.Hour)}, false, msgExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(t, Config{Secret: testSecret, Leeway: leeway, AllowNoExpiry: tc.allowNo})
			tok := hs256(t, tc.extra)
			_, err := v.Verify(context.Background(), tok)
			wantVerdict(t, err, tc.want, tok)
		})
	}
}

func TestTimeFromInjectedClock(t *testing.T) {
	clk := newClock(t0)
	v := newVerifier(t, Config{Secret: testSecret, Now: clk.Now})
	tok := hs256(t, nil) // exp t0+1h
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour + DefaultLeeway)
	_, err := v.Verify(context.Background(), tok)
	wantRefused(t, err, msgExpired, tok)
}

func TestIssuerAudience(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret, Issuer: "https://idp.example", Audience: "sessiond"})
	for _, tc := range []struct {
		name  string
		extra map[string]any
		want  string
	}{
		{"both right, aud string", map[string]any{"iss": "https://idp.example", "aud": "sessiond"}, ""},
		{"both right, aud list", map[string]any{"iss": "https://idp.example", "aud": []string{"other", "sessiond"}}, ""},
		{"wrong issuer", map[string]any{"iss": "https://evil.example", "aud": "sessiond"}, msgWrongIssuer},
		{"no issuer", map[string]any{"aud": "sessiond"}, msgWrongIssuer},
		{"wrong audience", map[string]any{"iss": "https://idp.example", "aud": "other"}, msgWrongAudience},
		{"wrong audience list", map[string]any{"iss": "https://idp.example", "aud": []string{"a", "b"}}, msgWrongAudience},
		{"no audience", map[string]any{"iss": "https://idp.example", "aud": nil}, msgWrongAudience},
		{"audience a number", map[string]any{"iss": "https://idp.example", "aud": 7}, msgWrongAudience},
		{"audience list with a number", map[string]any{"iss": "https://idp.example", "aud": []any{"sessiond", 7}}, msgInvalidClaims},
		{"issuer not a string", map[string]any{"iss": 7, "aud": "sessiond"}, msgInvalidClaims},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := hs256(t, tc.extra)
			c, err := v.Verify(context.Background(), tok)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Issuer != "https://idp.example" || !slices.Contains(c.Audience, "sessiond") {
					t.Fatalf("claims = %+v", c)
				}
				return
			}
			wantRefused(t, err, tc.want, tok)
		})
	}
}

func TestSubjectClaim(t *testing.T) {
	ctx := context.Background()
	def := newVerifier(t, Config{Secret: testSecret})
	for _, tc := range []struct {
		name  string
		extra map[string]any
	}{
		{"missing", map[string]any{"sub": nil}},
		{"empty", map[string]any{"sub": ""}},
		{"not a string", map[string]any{"sub": 42}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := hs256(t, tc.extra)
			_, err := def.Verify(ctx, tok)
			wantRefused(t, err, `no subject claim "sub"`, tok)
		})
	}

	email := newVerifier(t, Config{Secret: testSecret, SubjectClaim: "email"})
	t.Run("custom claim", func(t *testing.T) {
		c, err := email.Verify(ctx, hs256(t, map[string]any{"email": "alice@example.com"}))
		if err != nil {
			t.Fatal(err)
		}
		if c.Subject != "alice@example.com" {
			t.Fatalf("Subject = %q, want alice@example.com", c.Subject)
		}
		if c.Raw["sub"] != "alice" {
			t.Fatalf("Raw[sub] = %v", c.Raw["sub"])
		}
	})
	t.Run("custom claim missing", func(t *testing.T) {
		tok := hs256(t, nil) // has sub, not email
		_, err := email.Verify(ctx, tok)
		wantRefused(t, err, `no subject claim "email"`, tok)
	})
}

func TestMalformed(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret})
	good := hs256(t, nil)
	parts := strings.Split(good, ".")
	mac := func(signingInput string) []byte {
		h := hmac.New(sha256.New, testSecret)
		h.Write([]byte(signingInput))
		return h.Sum(nil)
	}
	// A correctly signed token whose claims are not a JSON object.
	enc := base64.RawURLEncoding.EncodeToString
	hdr := enc([]byte(`{"alg":"HS256","typ":"JWT"}`))
	badClaims := hdr + "." + enc([]byte(`["alice"]`))
	badClaims += "." + enc(mac(badClaims))

	for _, tc := range []struct {
		name, tok, want string
	}{
		{"empty", "", msgMissing},
		{"one part", "abc", msgMalformed},
		{"two parts", parts[0] + "." + parts[1], msgMalformed},
		{"four parts", good + ".x", msgMalformed},
		{"bad base64 header", "!!!." + parts[1] + "." + parts[2], msgMalformed},
		{"padded header", parts[0] + "=." + parts[1] + "." + parts[2], msgMalformed},
		{"header not JSON", enc([]byte("alg=HS256")) + "." + parts[1] + "." + parts[2], msgMalformed},
		{"header without alg", enc([]byte(`{"typ":"JWT"}`)) + "." + parts[1] + "." + parts[2], msgMalformed},
		{"alg not a string", enc([]byte(`{"alg":1}`)) + "." + parts[1] + "." + parts[2], msgMalformed},
		{"kid not a string", enc([]byte(`{"alg":"HS256","kid":3}`)) + "." + parts[1] + "." + parts[2], msgMalformed},
		{"bad base64 claims", parts[0] + ".%%%." + parts[2], msgMalformed},
		{"claims not JSON", parts[0] + "." + enc([]byte("{sub")) + "." + parts[2], msgMalformed},
		{"claims not an object", badClaims, msgMalformed},
		{"bad base64 signature", parts[0] + "." + parts[1] + ".***", msgMalformed},
		{"unknown alg", enc([]byte(`{"alg":"HS999"}`)) + "." + parts[1] + "." + parts[2], msgAlgorithm},
		{"too large", strings.Repeat("a", MaxTokenSize+1), msgTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tc.tok)
			wantRefused(t, err, tc.want, tc.tok)
		})
	}
}

func TestBadSignature(t *testing.T) {
	ctx := context.Background()
	v := newVerifier(t, Config{Audience: testAudience, Secret: testSecret, PublicKeys: [][]byte{pemPKIX(t, rsaKey1().Public()), pemPKIX(t, ecKey().Public()), pemPKIX(t, edKey().Public())}})
	good := hs256(t, nil)
	parts := strings.Split(good, ".")
	forged := claims(map[string]any{"sub": "mallory"})
	otherSecret := bytes.Repeat([]byte("k"), 32)
	for _, tc := range []struct{ name, tok string }{
		{"other secret", sign(t, gojwt.SigningMethodHS256, otherSecret, "", claims(nil))},
		{"tampered claims", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"mallory","exp":1999999999}`)) + "." + parts[2]},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(hs256(t, forged), ".")[2]},
		{"empty signature", parts[0] + "." + parts[1] + "."},
		{"RS256 other key", sign(t, gojwt.SigningMethodRS256, rsaKey2(), "", claims(nil))},
		{"EdDSA other key", sign(t, gojwt.SigningMethodEdDSA, otherEd(t), "", claims(nil))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(ctx, tc.tok)
			wantRefused(t, err, msgBadSignature, tc.tok)
		})
	}
}

func TestClaimsFields(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret})
	c, err := v.Verify(context.Background(), hs256(t, map[string]any{
		"nbf": t0.Add(-2 * time.Minute).Unix(), "jti": "id-1", "iss": "me", "aud": "you", "role": "admin",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "alice" || c.ID != "id-1" || c.Issuer != "me" || !slices.Equal(c.Audience, []string{"you"}) {
		t.Fatalf("claims = %+v", c)
	}
	if !c.ExpiresAt.Equal(t0.Add(time.Hour)) || !c.IssuedAt.Equal(t0.Add(-time.Minute)) || !c.NotBefore.Equal(t0.Add(-2*time.Minute)) {
		t.Fatalf("times = exp %v iat %v nbf %v", c.ExpiresAt, c.IssuedAt, c.NotBefore)
	}
	if c.Raw["role"] != "admin" {
		t.Fatalf("Raw = %v", c.Raw)
	}
	// No exp: ExpiresAt is zero.
	v2 := newVerifier(t, Config{Secret: testSecret, AllowNoExpiry: true})
	c, err = v2.Verify(context.Background(), hs256(t, map[string]any{"exp": nil}))
	if err != nil || !c.ExpiresAt.IsZero() {
		t.Fatalf("Verify = %+v, %v; want zero ExpiresAt", c, err)
	}
}

func TestTokenNeverInErrorsOrLogs(t *testing.T) {
	var logs bytes.Buffer
	srv := newJWKSServer(t, jwkOf(t, "k1", rsaKey1().Public()))
	v := newVerifier(t, Config{
		Secret: testSecret, JWKSURL: srv.URL, Issuer: "iss", Audience: "aud",
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	srv.setRaw(500, []byte("down")) // make the unknown-kid refresh fail and log
	toks := []string{
		hs256(t, map[string]any{"exp": t0.Add(-time.Hour).Unix()}),
		hs256(t, map[string]any{"iss": "x"}),
		sign(t, gojwt.SigningMethodRS256, rsaKey2(), "unknown", claims(nil)),
		sign(t, gojwt.SigningMethodHS256, bytes.Repeat([]byte("z"), 32), "", claims(nil)),
		hs256(t, nil)[:50],
	}
	for _, tok := range toks {
		_, err := v.Verify(context.Background(), tok)
		if err == nil {
			t.Fatal("verified")
		}
		parts := strings.Split(tok, ".")
		for _, p := range append(parts, tok) {
			if len(p) > 8 && (strings.Contains(err.Error(), p) || strings.Contains(logs.String(), p)) {
				t.Fatalf("token part appears in error %q or logs", err)
			}
		}
	}
	if !strings.Contains(logs.String(), "refresh") {
		t.Fatalf("expected a logged refresh failure, logs: %s", logs.String())
	}
}

func TestSign(t *testing.T) {
	tok, err := Sign(testSecret, "alice", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, Config{Secret: testSecret})
	c, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "alice" || !c.IssuedAt.Equal(t0) || !c.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("claims = %+v", c)
	}
	for _, tc := range []struct {
		name    string
		secret  []byte
		subject string
		ttl     time.Duration
		field   string
	}{
		{"short secret", []byte("short"), "alice", time.Hour, "Secret"},
		{"no subject", testSecret, "", time.Hour, "subject"},
		{"zero ttl", testSecret, "alice", 0, "ttl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Sign(tc.secret, tc.subject, tc.ttl, t0)
			var e *sessiond.Error
			if !errors.As(err, &e) || e.Code != sessiond.CodeInvalidArgument || e.Field != tc.field {
				t.Fatalf("Sign err = %v, want invalid_argument on %s", err, tc.field)
			}
		})
	}
}

func TestAudienceRequiredWithIdentityProviderKeys(t *testing.T) {
	rsaPEM := pemPKIX(t, rsaKey1().Public())
	t.Run("refused without Audience", func(t *testing.T) {
		srv := newJWKSServer(t, jwkOf(t, "k1", rsaKey1().Public()))
		for name, cfg := range map[string]Config{
			"PublicKeys":          {PublicKeys: [][]byte{rsaPEM}},
			"JWKSURL":             {JWKSURL: srv.URL},
			"Secret and JWKSURL":  {Secret: testSecret, JWKSURL: srv.URL},
			"Secret and PEM keys": {Secret: testSecret, PublicKeys: [][]byte{rsaPEM}},
		} {
			t.Run(name, func(t *testing.T) {
				v, err := New(context.Background(), cfg)
				if err == nil {
					v.Close()
					t.Fatal("New succeeded")
				}
				wantConfigError(t, err, "Audience", "is required with PublicKeys or JWKSURL")
				if !strings.Contains(err.Error(), "AllowAnyAudience") {
					t.Fatalf("err = %q, want it to name the AllowAnyAudience waiver", err)
				}
			})
		}
		if n := srv.requests.Load(); n != 0 {
			t.Fatalf("the JWKS was fetched %d times for a refused configuration", n)
		}
	})
	t.Run("Audience and AllowAnyAudience contradict", func(t *testing.T) {
		_, err := New(context.Background(), Config{PublicKeys: [][]byte{rsaPEM}, Audience: "sessiond", AllowAnyAudience: true})
		wantConfigError(t, err, "AllowAnyAudience", `contradicts Audience "sessiond"`)
	})
	t.Run("Secret alone needs no Audience", func(t *testing.T) {
		v := newVerifier(t, Config{Secret: testSecret})
		for _, aud := range []any{nil, "some-other-service"} {
			if _, err := v.Verify(context.Background(), hs256(t, map[string]any{"aud": aud})); err != nil {
				t.Fatalf("aud %v: %v", aud, err)
			}
		}
	})
	t.Run("AllowAnyAudience accepts any aud", func(t *testing.T) {
		v := newVerifier(t, Config{PublicKeys: [][]byte{rsaPEM}, AllowAnyAudience: true})
		for _, aud := range []any{nil, "some-other-service", []string{"a", "b"}} {
			tok := sign(t, gojwt.SigningMethodRS256, rsaKey1(), "", claims(map[string]any{"aud": aud}))
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Fatalf("aud %v: %v", aud, err)
			}
		}
	})
	t.Run("Audience is enforced on public-key tokens", func(t *testing.T) {
		v := newVerifier(t, Config{PublicKeys: [][]byte{rsaPEM}, Audience: "sessiond"})
		for _, aud := range []any{nil, "some-other-service"} {
			tok := sign(t, gojwt.SigningMethodRS256, rsaKey1(), "", claims(map[string]any{"aud": aud}))
			_, err := v.Verify(context.Background(), tok)
			wantRefused(t, err, msgWrongAudience, tok)
		}
	})
}

func TestLeewayDefaultAndNone(t *testing.T) {
	at := func(d time.Duration) int64 { return t0.Add(d).Unix() }
	skewed := map[string]struct {
		extra map[string]any
		none  string // the refusal without leeway
	}{
		"exp 10s ago":        {map[string]any{"exp": at(-10 * time.Second)}, msgExpired},
		"nbf in 10s":         {map[string]any{"nbf": at(10 * time.Second)}, msgNotYetValid},
		"iat in 10s":         {map[string]any{"iat": at(10 * time.Second)}, msgIssuedInFuture},
		"all skewed by 29s":  {map[string]any{"exp": at(-29 * time.Second), "nbf": at(29 * time.Second), "iat": at(29 * time.Second)}, msgExpired},
		"exp 29s ago, nbf 0": {map[string]any{"exp": at(-29 * time.Second), "nbf": at(0)}, msgExpired},
	}
	zero := newVerifier(t, Config{Secret: testSecret})                          // Leeway 0: DefaultLeeway
	none := newVerifier(t, Config{Secret: testSecret, Leeway: -1})              // negative: none
	long := newVerifier(t, Config{Secret: testSecret, Leeway: 2 * time.Minute}) // set: as given
	for name, tc := range skewed {
		t.Run(name, func(t *testing.T) {
			tok := hs256(t, tc.extra)
			if _, err := zero.Verify(context.Background(), tok); err != nil {
				t.Fatalf("zero Leeway (DefaultLeeway): %v", err)
			}
			_, err := none.Verify(context.Background(), tok)
			wantRefused(t, err, tc.none, tok)
		})
	}
	// Beyond the default: refused with the zero value, accepted by a larger
	// Leeway.
	for _, tc := range []struct {
		name  string
		extra map[string]any
		want  string
	}{
		{"exp 31s ago", map[string]any{"exp": at(-31 * time.Second)}, msgExpired},
		{"nbf in 31s", map[string]any{"nbf": at(31 * time.Second)}, msgNotYetValid},
		{"iat in 31s", map[string]any{"iat": at(31 * time.Second)}, msgIssuedInFuture},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := hs256(t, tc.extra)
			_, err := zero.Verify(context.Background(), tok)
			wantRefused(t, err, tc.want, tok)
			if _, err := long.Verify(context.Background(), tok); err != nil {
				t.Fatalf("Leeway 2m: %v", err)
			}
		})
	}
}

func TestMaxLifetime(t *testing.T) {
	at := func(d time.Duration) int64 { return t0.Add(d).Unix() }
	const day = 24 * time.Hour
	for _, tc := range []struct {
		name    string
		max     time.Duration
		allowNo bool
		extra   map[string]any
		want    string // "" for accepted
	}{
		{"default: exactly 24h", 0, false, map[string]any{"iat": at(-time.Hour), "exp": at(day - time.Hour)}, ""},
		{"default: 24h and 1s", 0, false, map[string]any{"iat": at(-time.Hour), "exp": at(day - time.Hour + time.Second)}, "token lifetime exceeds 24h0m0s"},
		{"default: a year", 0, false, map[string]any{"exp": at(365 * day)}, "token lifetime exceeds 24h0m0s"},
		{"default: measured from iat, not now", 0, false, map[string]any{"iat": at(-2 * time.Hour), "exp": at(23 * time.Hour)}, "token lifetime exceeds 24h0m0s"},
		{"default: no iat, exp in 24h", 0, false, map[string]any{"iat": nil, "exp": at(day)}, ""},
		{"default: no iat, exp in 24h and 1s", 0, false, map[string]any{"iat": nil, "exp": at(day + time.Second)}, "token lifetime exceeds 24h0m0s"},
		{"1h: 59m", time.Hour, false, map[string]any{"iat": at(-time.Minute), "exp": at(58 * time.Minute)}, ""},
		{"1h: 61m", time.Hour, false, nil, "token lifetime exceeds 1h0m0s"},
		{"no limit: a year", -1, false, map[string]any{"exp": at(365 * day)}, ""},
		{"no exp, allowed", 0, true, map[string]any{"exp": nil}, ""},
		{"no exp, refused", 0, false, map[string]any{"exp": nil}, msgNoExpiry},
		{"long and expired", 0, false, map[string]any{"iat": at(-400 * day), "exp": at(-time.Hour)}, msgExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(t, Config{Secret: testSecret, MaxLifetime: tc.max, AllowNoExpiry: tc.allowNo})
			tok := hs256(t, tc.extra)
			_, err := v.Verify(context.Background(), tok)
			wantVerdict(t, err, tc.want, tok)
		})
	}
	t.Run("checked after the signature", func(t *testing.T) {
		v := newVerifier(t, Config{Secret: testSecret})
		tok := sign(t, gojwt.SigningMethodHS256, bytes.Repeat([]byte("k"), 32), "", claims(map[string]any{"exp": at(365 * day)}))
		_, err := v.Verify(context.Background(), tok)
		wantRefused(t, err, msgBadSignature, tok)
	})
}

func TestCriticalHeaderRefused(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret, PublicKeys: [][]byte{pemPKIX(t, edKey().Public())}, Audience: testAudience})
	withHeader := func(m gojwt.SigningMethod, key any, name string, value any) string {
		tok := gojwt.NewWithClaims(m, claims(nil))
		if name != "" {
			tok.Header[name] = value
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// Without crit, the same tokens verify: the refusal is crit's alone.
	for _, m := range []struct {
		method gojwt.SigningMethod
		key    any
	}{{gojwt.SigningMethodHS256, testSecret}, {gojwt.SigningMethodEdDSA, edKey()}} {
		if _, err := v.Verify(context.Background(), withHeader(m.method, m.key, "", nil)); err != nil {
			t.Fatalf("%s without crit: %v", m.method.Alg(), err)
		}
		for name, crit := range map[string]any{
			"known claim name": []string{"exp"},
			"b64 extension":    []string{"b64"},
			"empty list":       []string{},
			"not a list":       "exp",
			"null":             nil,
		} {
			t.Run(m.method.Alg()+" "+name, func(t *testing.T) {
				tok := withHeader(m.method, m.key, "crit", crit)
				_, err := v.Verify(context.Background(), tok)
				wantRefused(t, err, msgCritical, tok)
			})
		}
	}
}
