package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/jwt"
)

// newVerifier builds the WebSocket credential verifier, or returns nil when
// no key is configured (the edge is then off).
func newVerifier(ctx context.Context, c JWTConfig, log *slog.Logger) (*jwt.Verifier, error) {
	if c.Secret == "" && len(c.PublicKeys) == 0 && c.JWKSURL == "" {
		return nil, nil
	}
	cfg := jwt.Config{
		JWKSURL: c.JWKSURL, JWKSRefresh: time.Duration(c.JWKSRefresh),
		Issuer: c.Issuer, Audience: c.Audience, Leeway: time.Duration(c.Leeway),
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
			return nil, fmt.Errorf("jwt.public_keys: %w", err)
		}
		cfg.PublicKeys = append(cfg.PublicKeys, b)
	}
	v, err := jwt.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("jwt: %w", err)
	}
	return v, nil
}

// endingHook POSTs each ending session to url; the session is recorded as
// ended once it answers (or the dispose timeout passes).
func endingHook(url string) func(context.Context, *sessiond.Session) error {
	client := &http.Client{}
	return func(ctx context.Context, s *sessiond.Session) error {
		body, err := json.Marshal(struct {
			Event   string            `json:"event"`
			Session *sessiond.Session `json:"session"`
		}{"ending", s})
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("ending hook answered %s", resp.Status)
		}
		return nil
	}
}
