package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sessiond/sessiond/docs"
	"github.com/sessiond/sessiond/redis"
)

// cmdConfig prints the effective configuration, checked as serve checks
// it.
func cmdConfig(*flag.FlagSet) action {
	return func(_ context.Context, in *input) error {
		cfg, err := in.config()
		if err != nil {
			return err
		}
		if err := cfg.check(); err != nil {
			return usageError{err.Error()}
		}
		out, err := cfg.effective()
		if err != nil {
			return err
		}
		_, err = in.stdout.Write(out)
		return err
	}
}

// cmdConfigCheck checks the configuration as serve does before it starts,
// and says what it checked.
func cmdConfigCheck(*flag.FlagSet) action {
	return func(_ context.Context, in *input) error {
		cfg, err := in.config() // the file, every value, the policies, the hooks: validate
		if err != nil {
			return err
		}
		if err := cfg.check(); err != nil { // the address, the key, the TLS and JWT material, the history URL
			return usageError{err.Error()}
		}
		tracing, err := tracingFromEnv(os.Getenv) // the OTEL_* variables, as serve reads them
		if err != nil {
			return usageError{"tracing: " + err.Error()}
		}
		return cfg.writeChecked(in.stdout, tracing)
	}
}

// writeChecked says what config check found, a line a subject.
func (cfg *Config) writeChecked(w io.Writer, tracing tracingSettings) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s:\t%s\n", k, fmt.Sprintf(format, args...)) }

	if cfg.file != "" {
		row("config file", "%s: every key known, every value valid", cfg.file)
	} else {
		row("config file", "none: the defaults, the environment and the flags")
	}

	switch {
	case cfg.TLS.on():
		row("listen", "%s, HTTPS: %s", cfg.Addr, describeCert(cfg.TLS.Cert, cfg.TLS.Key))
	case isLoopback(cfg.Addr):
		row("listen", "%s, plain HTTP on loopback", cfg.Addr)
	default:
		row("listen", "%s, plain HTTP behind a TLS-terminating proxy (insecure_http)", cfg.Addr)
	}
	if len(cfg.TrustedProxies) > 0 {
		row("trusted proxies", "%s", strings.Join(cfg.TrustedProxies, ", "))
	}
	if cfg.DebugAddr != "" {
		row("profiler", "%s (loopback)", cfg.DebugAddr)
	}

	switch {
	case cfg.APIKeyFile != "":
		row("api key", "from %s, %d bytes", cfg.APIKeyFile, len(cfg.APIKey))
	case cfg.APIKey != "":
		row("api key", "set, %d bytes", len(cfg.APIKey))
	default:
		if _, err := os.Stat(cfg.apiKeyFile()); err == nil {
			row("api key", "the one saved in %s", cfg.apiKeyFile())
		} else {
			row("api key", "generated on first start into %s", cfg.apiKeyFile())
		}
	}

	switch {
	case cfg.Store == "memory":
		row("store", "memory: sessions are lost on restart")
	case cfg.redisStore():
		if o, err := redis.ParseURL(cfg.Store); err == nil { // validate parsed it
			row("store", "%s (the URL parsed; not dialled)", o.String())
		}
	default:
		free := "no free space kept"
		if cfg.MinFreeSpace > 0 {
			free = "writes refused below " + cfg.MinFreeSpace.String() + " free"
		}
		row("store", "embedded, in %s; %s", filepath.Join(cfg.DataDir, "store"), free)
	}

	policies, def, err := cfg.policies()
	if err != nil {
		return err
	}
	names := make([]string, len(policies))
	for i, p := range policies {
		names[i] = p.Name
	}
	row("policies", "%s; default %s; sessions a WebSocket creates: %s", strings.Join(names, ", "), def, cfg.ConnectPolicy)
	for _, p := range policies {
		if p.HibernateAfter > 0 && !cfg.Hooks.Runtime.on() {
			row("note", "policy %s hibernates sessions, but no runtime hook is configured (hooks.runtime): "+
				"hibernating and waking will change only the sessions' state", p.Name)
		}
	}

	row("jwt", "%s", describeJWT(cfg.JWT))

	if cfg.EndingHookURL != "" {
		row("ending hook", "%s, %s", cfg.EndingHookURL, signed(cfg.EndingHookSecret))
	}
	switch r := cfg.Hooks.Runtime; {
	case r.URL != "":
		row("runtime hook", "%s, %s", r.URL, signed(r.Secret))
	case len(r.Command) > 0:
		path, _ := exec.LookPath(r.Command[0]) // validate found it
		row("runtime hook", "the command %s (%s)", strings.Join(r.Command, " "), path)
	}
	if cfg.History != "" {
		row("history", "%s (the URL parsed; not connected to)", redactDSN(cfg.History))
	} else {
		row("history", "off")
	}
	if tracing.on {
		row("tracing", "OTLP %s to %s (not connected to)", tracing.protocol, tracing.endpoint)
	} else {
		row("tracing", "off (no OTEL_* variable asks for it)")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, "ok: serve accepts this configuration")
	return err
}

func signed(secret string) string {
	if secret == "" {
		return "unsigned"
	}
	return "signed"
}

// describeCert names a certificate check has loaded: its subject and
// when it expires.
func describeCert(certFile, keyFile string) string {
	c, err := loadKeyPair(certFile, keyFile)
	if err != nil || len(c.Certificate) == 0 {
		return certFile
	}
	leaf := c.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return certFile
		}
	}
	name := leaf.Subject.CommonName
	if len(leaf.DNSNames) > 0 {
		name = strings.Join(leaf.DNSNames, ", ")
	}
	expiry := "expires " + leaf.NotAfter.UTC().Format(time.RFC3339)
	if time.Now().After(leaf.NotAfter) {
		expiry = "EXPIRED " + leaf.NotAfter.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%s (%s, %s) with key %s", certFile, name, expiry, keyFile)
}

// describeJWT says which credentials the WebSocket edge accepts.
func describeJWT(j JWTConfig) string {
	var keys []string
	if j.Secret != "" {
		keys = append(keys, "the HS256 secret")
	}
	if n := len(j.PublicKeys); n > 0 {
		keys = append(keys, fmt.Sprintf("%d public key file(s): %s", n, strings.Join(j.PublicKeys, ", ")))
	}
	if j.JWKSURL != "" {
		keys = append(keys, "the JWKS at "+j.JWKSURL+" (the URL checked; not fetched)")
	}
	if len(keys) == 0 {
		return "no key: the WebSocket edge is off"
	}
	out := "credentials verified with " + strings.Join(keys, ", ")
	if j.Issuer != "" {
		out += "; issuer " + j.Issuer
	}
	switch {
	case j.Audience != "":
		out += "; audience " + j.Audience
	case j.AllowAnyAudience:
		out += "; any audience"
	}
	return out
}

// cmdConfigInit writes the example configuration to start from.
func cmdConfigInit(set *flag.FlagSet) action {
	out := set.String("out", "sessiond.yaml", "write to `FILE`; - writes to standard output")
	force := set.Bool("force", false, "overwrite the file if it exists")
	return func(_ context.Context, in *input) error {
		if len(in.args) > 0 {
			return usageError{"config init takes no arguments (--out FILE names the file)"}
		}
		if *out == "-" {
			_, err := io.WriteString(in.stdout, docs.ExampleConfig)
			return err
		}
		if err := writeNew(*out, docs.ExampleConfig, *force); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("config init: %s exists: --force overwrites it", *out)
			}
			return fmt.Errorf("config init: %w", err)
		}
		fmt.Fprintf(in.stdout, "wrote %s; check it with: sessiond config check --config %s\n", *out, *out)
		return nil
	}
}

// writeNew writes a file readable by its owner alone (it will hold
// secrets), failing with fs.ErrExist if it exists unless overwrite.
func writeNew(path, content string, overwrite bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if overwrite {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600) //nolint:gosec // G304: the operator names the file
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, content); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
