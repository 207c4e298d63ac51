package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/jwt"
)

// newVerifier builds the WebSocket credential verifier, or returns nil when
// no key is configured (the edge is then off).
func newVerifier(ctx context.Context, c JWTConfig, log *slog.Logger) (*jwt.Verifier, error) {
	cfg, paths, err := verifierConfig(c, log)
	if err != nil || cfg == nil {
		return nil, err
	}
	v, err := jwt.New(ctx, *cfg)
	if err != nil {
		return nil, jwtError(err, paths)
	}
	return v, nil
}

// checkJWT is the check of the JWT material that serve makes before it
// opens anything (Config.check), and `sessiond config` with it: the key
// files read, then jwt.Config.Validate, which jwt.New runs too. So config
// fails exactly when serve would, with the same message. Nothing is
// fetched: the JWKS URL's form is checked, not its answer.
func checkJWT(c JWTConfig) error {
	cfg, paths, err := verifierConfig(c, nil)
	if err != nil || cfg == nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return jwtError(err, paths)
	}
	return nil
}

// jwtError names the configuration key (and the file) behind an error of
// jwt.New, whose fields are its Config's.
func jwtError(err error, paths []string) error {
	var se *sessiond.Error
	if !errors.As(err, &se) || se.Field == "" {
		return fmt.Errorf("jwt: %w", err)
	}
	msg := se.Message
	if se.Err != nil {
		msg += ": " + se.Err.Error()
	}
	var i int
	if _, scan := fmt.Sscanf(se.Field, "PublicKeys[%d]", &i); scan == nil && i >= 0 && i < len(paths) {
		return fmt.Errorf("jwt.public_keys: %s: %s", paths[i], msg)
	}
	key := map[string]string{"Secret": "jwt.secret", "Leeway": "jwt.leeway", "JWKSRefresh": "jwt.jwks_refresh", "JWKSURL": "jwt.jwks_url",
		"Audience": "jwt.audience", "AllowAnyAudience": "jwt.allow_any_audience", "MaxLifetime": "jwt.max_lifetime"}[se.Field]
	if key == "" {
		return fmt.Errorf("jwt: %w", err)
	}
	return fmt.Errorf("%s: %s", key, msg)
}

// verifierConfig reads the key files; nil means no key is configured.
// paths are the key files, in the order of the keys.
func verifierConfig(c JWTConfig, log *slog.Logger) (_ *jwt.Config, paths []string, _ error) {
	if c.Secret == "" && len(c.PublicKeys) == 0 && c.JWKSURL == "" {
		return nil, nil, nil
	}
	cfg := &jwt.Config{
		JWKSURL: c.JWKSURL, JWKSRefresh: time.Duration(c.JWKSRefresh),
		Issuer: c.Issuer, Audience: c.Audience, AllowAnyAudience: c.AllowAnyAudience,
		Leeway: time.Duration(c.Leeway), MaxLifetime: time.Duration(c.MaxLifetime),
		SubjectClaim: c.SubjectClaim, AllowNoExpiry: c.AllowNoExpiry, Logger: log,
	}
	if c.Secret != "" {
		cfg.Secret = []byte(c.Secret)
	}
	for _, path := range c.PublicKeys {
		path = strings.TrimSpace(path)
		if path == "" {
			continue
		}
		b, err := os.ReadFile(path) //nolint:gosec // G304: the operator names the key files
		if err != nil {
			return nil, nil, fmt.Errorf("jwt.public_keys: %w", err)
		}
		cfg.PublicKeys = append(cfg.PublicKeys, b)
		paths = append(paths, path)
	}
	return cfg, paths, nil
}
