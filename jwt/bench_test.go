package jwt

import (
	"context"
	"testing"

	gojwt "github.com/golang-jwt/jwt/v5"
)

func BenchmarkVerifyHS256(b *testing.B) {
	v := newVerifier(b, Config{Secret: testSecret, Issuer: "https://idp.example", Audience: "sessiond"})
	tok := hs256(b, map[string]any{"iss": "https://idp.example", "aud": "sessiond", "jti": "abc"})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyRS256(b *testing.B) {
	v := newVerifier(b, Config{Audience: testAudience, PublicKeys: [][]byte{pemPKIX(b, rsaKey1().Public())}})
	tok := sign(b, gojwt.SigningMethodRS256, rsaKey1(), "", claims(nil))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyES256(b *testing.B) {
	v := newVerifier(b, Config{Audience: testAudience, PublicKeys: [][]byte{pemPKIX(b, ecKey().Public())}})
	tok := sign(b, gojwt.SigningMethodES256, ecKey(), "", claims(nil))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
