package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/jwt"
)

// cmdToken prints a development credential for /v1/connect, signed with
// the configured HS256 secret.
func cmdToken(fs *flag.FlagSet) action {
	subject := fs.String("subject", "", "the `SUBJECT` (the sub claim); required")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of the credential")
	return func(_ context.Context, in *input) error {
		if len(in.args) > 0 || *subject == "" {
			return usageError{"token takes --subject S and optionally --ttl 1h"}
		}
		cfg, err := in.config()
		if err != nil {
			return err
		}
		if cfg.JWT.Secret == "" {
			return usageError{"token needs the HS256 secret: --jwt-secret or SESSIOND_JWT_SECRET (or jwt.secret in the config file)"}
		}
		tok, err := jwt.Sign([]byte(cfg.JWT.Secret), *subject, *ttl, time.Now())
		if err != nil {
			return usageError{err.Error()}
		}
		_, err = fmt.Fprintln(in.stdout, tok)
		return err
	}
}

// cmdTokenCheck verifies a credential with the configured keys, as the
// WebSocket edge does (newVerifier builds the edge's verifier), and
// prints its claims: verified, or unverified beside the reason it is
// refused.
func cmdTokenCheck(*flag.FlagSet) action {
	return func(ctx context.Context, in *input) error {
		if len(in.args) != 1 {
			return usageError{"token check takes one token"}
		}
		token := strings.TrimSpace(in.args[0])
		cfg, err := in.config()
		if err != nil {
			return err
		}
		if err := checkJWT(cfg.JWT); err != nil {
			return usageError{err.Error()}
		}
		v, err := newVerifier(ctx, cfg.JWT, nil)
		if err != nil {
			return usageError{err.Error()}
		}
		if v == nil {
			return usageError{"token check needs the keys the WebSocket edge verifies with: " +
				"--jwt-secret, --jwt-public-key or --jwt-jwks-url (SESSIOND_JWT_*, or jwt: in the config file)"}
		}
		defer v.Close()
		claims, verr := v.Verify(ctx, token)
		hdr, payload, decoded := decodeJWT(token)
		if verr == nil {
			fmt.Fprintln(in.stdout, "valid: the WebSocket edge accepts it")
		} else if decoded {
			fmt.Fprintln(in.stdout, "refused; its claims, unverified:")
		}
		if decoded {
			if err := printClaims(in.stdout, hdr, payload, claims, cfg.JWT.SubjectClaim); err != nil {
				return err
			}
		}
		if verr != nil {
			var se *sessiond.Error
			if errors.As(verr, &se) && se.Code == sessiond.CodeUnauthorized {
				return fmt.Errorf("token refused: %s", se.Message)
			}
			return fmt.Errorf("token not verified: %v", verr) // the JWKS has not loaded: said, not a server's answer
		}
		return nil
	}
}

// decodeJWT decodes a token's header and claims without verifying them.
func decodeJWT(token string) (header, claims map[string]any, ok bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, nil, false
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[i], "="))
		if err != nil || json.Unmarshal(b, dst) != nil {
			return nil, nil, false
		}
	}
	return header, claims, true
}

// printClaims prints the claims a person checks: the subject (from
// subjectClaim), issuer, audience, times, id, and the key. verified, if
// not nil, are the claims as the verifier read them.
func printClaims(w io.Writer, header, claims map[string]any, verified *jwt.Claims, subjectClaim string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "  %s:\t%s\n", k, v) }
	str := func(v any) string {
		switch v := v.(type) {
		case nil:
			return "(none)"
		case string:
			return v
		case []any:
			parts := make([]string, len(v))
			for i, p := range v {
				parts[i] = fmt.Sprint(p)
			}
			return strings.Join(parts, ", ")
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	when := func(v any) string {
		f, ok := v.(float64)
		if !ok {
			return str(v)
		}
		if math.IsNaN(f) || math.Abs(f) > 1e11 {
			return fmt.Sprint(f)
		}
		t := time.Unix(int64(f), 0).UTC()
		return t.Format(time.RFC3339) + " (" + ago(t) + ")"
	}
	sub := fmt.Sprintf("subject (%s)", subjectClaim)
	row(sub, str(claims[subjectClaim]))
	row("issuer", str(claims["iss"]))
	row("audience", str(claims["aud"]))
	row("expires", when(claims["exp"]))
	row("issued at", when(claims["iat"]))
	if nbf, ok := claims["nbf"]; ok {
		row("not before", when(nbf))
	}
	if jti, ok := claims["jti"]; ok {
		row("id (jti)", str(jti))
	}
	key := str(header["alg"])
	if kid, ok := header["kid"]; ok {
		key += ", kid " + str(kid)
	}
	if verified != nil {
		switch {
		case verified.KeyID != "":
			key += ", verified with that key of the JWKS"
		case header["alg"] == "HS256":
			key += ", verified with the secret"
		default:
			key += ", verified with a configured public key"
		}
	}
	row("key", key)
	return tw.Flush()
}
