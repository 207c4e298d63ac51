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
// jwt library, is the test secret's.
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
	})
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
