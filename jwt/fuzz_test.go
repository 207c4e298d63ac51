package jwt

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
)

// FuzzVerify checks that Verify never panics on arbitrary input and accepts
// only tokens whose HS256 signature, recomputed here independently of the
// jwt library, is the test secret's, whose header has no crit member and
// whose lifetime is within DefaultMaxLifetime.
func FuzzVerify(f *testing.F) {
	valid := hs256(f, nil)
	parts := strings.Split(valid, ".")
	seeds := []string{
		valid,
		sign(f, gojwt.SigningMethodHS256, testSecret, "kid-1", claims(nil)),
		hs256(f, map[string]any{"exp": t0.Add(-24 * time.Hour).Unix()}),
		hs256(f, map[string]any{"sub": ""}),
		sign(f, gojwt.SigningMethodNone, gojwt.UnsafeAllowNoneSignatureType, "", claims(nil)),
		sign(f, gojwt.SigningMethodHS256, []byte(strings.Repeat("w", 32)), "", claims(nil)),
		parts[0] + "." + parts[1] + ".",
		parts[0] + "." + parts[1],
		parts[0] + "." + parts[1] + "." + parts[2] + "=",
		parts[0] + ".." + parts[2],
		strings.ToUpper(valid),
		valid[:len(valid)-1],
		valid + "A",
		"..",
		"",
		"e30.e30.e30",
		rawToken(`{"alg":"HS256","alg":"none"}`, `{"sub":"a"}`, nil),
		rawToken(`{"alg":"HS256","kid":{"x":1}}`, `{"sub":"a"}`, nil),
		rawToken(`{"alg":"HS256"}`, `{"sub":"a","exp":1e400}`, nil),
		rawToken(`{"alg":"HS256"}`, `{"sub":"a","exp":"NaN","aud":[1,2]}`, nil),
		critSigned(f, `["exp"]`),
		critSigned(f, `null`),
		hs256(f, map[string]any{"exp": t0.Add(25 * time.Hour).Unix()}),
		hs256(f, map[string]any{"iat": nil, "exp": t0.Add(25 * time.Hour).Unix()}),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	v := newVerifier(f, Config{Secret: testSecret})
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(context.Background(), token)
		if err != nil {
			if c != nil {
				t.Fatal("claims returned with an error")
			}
			return
		}
		if !signedWithTestSecret(token) {
			t.Fatalf("verified a token not signed with the test secret: %q", token)
		}
		if c.Subject == "" {
			t.Fatal("verified with an empty subject")
		}
		if headerHas(token, "crit") {
			t.Fatalf("verified a token with a crit header: %q", token)
		}
		from := c.IssuedAt
		if from.IsZero() {
			from = t0
		}
		if !c.ExpiresAt.IsZero() && c.ExpiresAt.Sub(from) > DefaultMaxLifetime {
			t.Fatalf("verified a token living %v: %q", c.ExpiresAt.Sub(from), token)
		}
	})
}

// critSigned is a token with a crit header member of JSON value crit,
// correctly signed with the test secret.
func critSigned(tb testing.TB, crit string) string {
	tb.Helper()
	enc := base64.RawURLEncoding
	payload, err := json.Marshal(claims(nil))
	if err != nil {
		tb.Fatal(err)
	}
	input := enc.EncodeToString([]byte(`{"alg":"HS256","crit":`+crit+`}`)) + "." + enc.EncodeToString(payload)
	m := hmac.New(sha256.New, testSecret)
	m.Write([]byte(input))
	return input + "." + enc.EncodeToString(m.Sum(nil))
}

// headerHas reports whether token's header is a JSON object with member
// name.
func headerHas(token, name string) bool {
	h, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.Strict().DecodeString(h)
	if err != nil {
		return false
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return false
	}
	_, ok := m[name]
	return ok
}

// signedWithTestSecret reports whether token's header says HS256 and its
// signature is the HMAC-SHA256 of its signing input under testSecret.
func signedWithTestSecret(token string) bool {
	p := strings.Split(token, ".")
	if len(p) != 3 {
		return false
	}
	enc := base64.RawURLEncoding.Strict()
	hb, err := enc.DecodeString(p[0])
	if err != nil {
		return false
	}
	var h map[string]any
	if json.Unmarshal(hb, &h) != nil || h["alg"] != "HS256" {
		return false
	}
	sig, err := enc.DecodeString(p[2])
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, testSecret)
	m.Write([]byte(p[0] + "." + p[1]))
	return hmac.Equal(sig, m.Sum(nil))
}
