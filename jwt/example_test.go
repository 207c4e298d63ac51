package jwt_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/jwt"
)

func Example() {
	secret := []byte("an example secret of at least 32 bytes")
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	v, err := jwt.New(context.Background(), jwt.Config{
		Secret: secret,                          // with PublicKeys or a JWKSURL, Audience is required
		Now:    func() time.Time { return now }, // tests only; time.Now by default
	})
	if err != nil {
		panic(err)
	}
	defer v.Close()

	token, err := jwt.Sign(secret, "alice", time.Hour, now)
	if err != nil {
		panic(err)
	}
	claims, err := v.Verify(context.Background(), token)
	if err != nil {
		panic(err)
	}
	fmt.Println(claims.Subject, claims.ExpiresAt.Format(time.RFC3339))

	_, err = v.Verify(context.Background(), token+"x")
	fmt.Println(errors.Is(err, sessiond.ErrUnauthorized), err)
	// Output:
	// alice 2030-01-01T13:00:00Z
	// true bad signature
}
