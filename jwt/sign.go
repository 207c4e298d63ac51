package jwt

import (
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/sessiond/sessiond"
)

// Sign returns an HS256 token for subject with the claims sub, iat (now)
// and exp (now+ttl), for development and tests (`sessiond token --subject
// alice --ttl 1h`). secret must be at least 32 bytes and ttl positive.
// Times are whole seconds, as JWT NumericDates are.
func Sign(secret []byte, subject string, ttl time.Duration, now time.Time) (string, error) {
	if err := checkSecret(secret); err != nil {
		return "", err
	}
	if subject == "" {
		return "", sessiond.Errorf(sessiond.CodeInvalidArgument, "subject", "is required")
	}
	if ttl <= 0 {
		return "", sessiond.Errorf(sessiond.CodeInvalidArgument, "ttl", "must be positive (got %v)", ttl)
	}
	claims := gojwt.RegisteredClaims{
		Subject:   subject,
		IssuedAt:  gojwt.NewNumericDate(now),
		ExpiresAt: gojwt.NewNumericDate(now.Add(ttl)),
	}
	return gojwt.NewWithClaims(gojwt.SigningMethodHS256, claims).SignedString(secret)
}
