// Command sessiond runs the session lifecycle server and administers it.
//
//	sessiond serve                      run the server (embedded store in ./sessiond-data)
//	sessiond config                     print the effective configuration
//	sessiond status                     show a running server's state
//	sessiond sessions ls [--subject S] [--state X]
//	sessiond sessions show ID
//	sessiond sessions revoke ID
//	sessiond sessions revoke --subject S
//	sessiond sessions hibernate ID
//	sessiond sessions wake ID
//	sessiond token --subject S [--ttl 1h]   a development JWT for /v1/connect
//	sessiond connect --subject S [--device D]  hold a WebSocket, printing what happens
//	sessiond store check                 verify every record of a stopped server's store
//	sessiond version
//
// Every command takes --config, --addr, --data-dir, --api-key, --store,
// --log-format and --log-level, each with a SESSIOND_* environment twin.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/jwt"
	"github.com/sessiond/sessiond/pebble"
)

func main() {
	// Signals first: SIGTERM and SIGINT stop every command at any point,
	// the server's start included. A second one kills at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

const usage = `sessiond: session lifecycle server

Usage:
  sessiond serve                          run the server
  sessiond config                         print the effective configuration
  sessiond status                         show a running server's state
  sessiond healthcheck                    exit 0 if the server is ready (GET /readyz), else 1: for containers
  sessiond sessions ls [--subject S] [--state STATE] [--limit N] [--all] [--json]
  sessiond sessions show ID [--json]
  sessiond sessions revoke ID
  sessiond sessions revoke --subject S
  sessiond sessions hibernate ID [--json]   put a session with no connections to sleep now
  sessiond sessions wake ID [--json]        wake a hibernated session now
  sessiond history ID | --subject S [--since 1h] [--until T] [--limit N] [--json]
                                          lifecycle history (a server run with --history)
  sessiond token --subject S [--ttl 1h]   print a development JWT (HS256, the configured --jwt-secret)
  sessiond connect --subject S [--device D]  hold a WebSocket to the session of device D (without
                                          --device: the subject's default device); print what happens
  sessiond connect --subject S --session-token T   ... or to a session created over REST
  sessiond store check [--data-dir DIR]   verify every record of the embedded store (server stopped);
                                          list corrupt and quarantined ones; exit 1 if any
  sessiond version

Common flags (each also read from its environment variable):
  --config FILE      SESSIOND_CONFIG      YAML config file; policies live there
  --addr HOST:PORT   SESSIOND_ADDR        listen address / server to talk to (127.0.0.1:7600)
  --data-dir DIR     SESSIOND_DATA_DIR    data directory (sessiond-data)
  --api-key KEY      SESSIOND_API_KEY     admin API key (default: generated, saved in DATA_DIR/api_key)
  --api-key-file F   SESSIOND_API_KEY_FILE  ... or a file holding it, kept out of ps
  --tls-cert FILE    SESSIOND_TLS_CERT    serve HTTPS: certificate (PEM); reloaded on change and SIGHUP
  --tls-key FILE     SESSIOND_TLS_KEY     ... and its key
  --insecure-http    SESSIOND_INSECURE_HTTP  plain HTTP on an address that is not loopback (behind a proxy)
  --trusted-proxies  SESSIOND_TRUSTED_PROXIES  CIDRs of proxies whose X-Forwarded-For is believed
  --store KIND       SESSIOND_STORE       embedded (default), memory, or a Redis URL for a cluster (docs/redis.md)
  --log-format F     SESSIOND_LOG_FORMAT  auto, text or json
  --log-level L      SESSIOND_LOG_LEVEL   debug, info, warn or error
  --min-free-space N SESSIOND_MIN_FREE_SPACE  free space the store keeps, e.g. 512MiB (256MiB; 0: off)
  --jwt-secret S     SESSIOND_JWT_SECRET  HS256 secret of WebSocket credentials (also --jwt-public-key,
                                          --jwt-jwks-url, --jwt-issuer, --jwt-audience, --jwt-subject-claim)
  (also --jwt-secret-file, --access-log=false, --ws-allowed-origins: sessiond serve -h lists every flag)

Docs: README.md and docs/ in the source tree.
`

// run is main without the process: testable end to end.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	var err error
	switch cmd {
	case "serve":
		err = cmdServe(ctx, args, stderr, getenv)
	case "config":
		err = cmdConfig(args, stdout, getenv)
	case "status":
		err = cmdStatus(ctx, args, stdout, getenv)
	case "healthcheck":
		err = cmdHealthcheck(ctx, args, stdout, getenv)
	case "sessions":
		err = cmdSessions(ctx, args, stdout, getenv)
	case "history":
		err = cmdHistory(ctx, args, stdout, getenv)
	case "token":
		err = cmdToken(args, stdout, getenv)
	case "connect":
		err = cmdConnect(ctx, args, stdout, getenv)
	case "store":
		err = cmdStore(ctx, args, stdout, getenv)
	case "version":
		fmt.Fprintln(stdout, "sessiond", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "sessiond: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var se *sessiond.Error
		if errors.As(err, &se) {
			// A server's answer: show its stable code too.
			fmt.Fprintf(stderr, "sessiond: %s: %s\n", se.Code, se.Error())
		} else {
			fmt.Fprintln(stderr, "sessiond:", err)
		}
		if isUsage(err) || se != nil && se.Code == sessiond.CodeInvalidArgument {
			return 2 // the command line was wrong, as the server saw it
		}
		return 1
	}
	return 0
}

// usageError is a mistake in the command line or the configuration: exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// loadConfig is configFlags.load with its errors as usage errors.
func loadConfig(cf *configFlags, getenv func(string) string) (Config, error) {
	cfg, err := cf.load(getenv)
	if err != nil {
		return cfg, usageError{err.Error()}
	}
	return cfg, nil
}

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u)
}

// parse parses flags that may come before or after positional arguments
// and returns the positional ones. -h prints the flags to out.
func parse(fs *flag.FlagSet, args []string, out io.Writer) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(out, "Usage of sessiond %s:\n", fs.Name())
				fs.SetOutput(out)
				fs.PrintDefaults()
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func cmdServe(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cf := newConfigFlags(fs)
	if pos, err := parse(fs, args, stderr); err != nil {
		return err
	} else if len(pos) > 0 {
		return usageError{"serve takes no arguments"}
	}
	cfg, err := loadConfig(cf, getenv)
	if err != nil {
		return err
	}
	privateUmask() // before anything is created: the data directory is the server user's alone
	// openServer checks cfg first, with the check config makes.
	s, err := openInterruptibly(ctx, cfg, stderr)
	if errors.Is(err, errInterrupted) {
		return nil // asked to stop: logged
	}
	if err != nil {
		return err
	}
	return s.run(ctx)
}

// startGrace is how long a start stopped by a signal may take to close
// what it opened before serve returns without it.
const startGrace = 2 * time.Second

// openInterruptibly is openServer, returning at most startGrace after ctx
// is done whatever step the start is in (openServer gives up at once where
// it can; a step that cannot be interrupted, a file write on a hung disk,
// is left to the process's exit).
func openInterruptibly(ctx context.Context, cfg Config, stderr io.Writer) (*server, error) {
	type opened struct {
		s   *server
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		s, err := openServer(ctx, cfg, stderr)
		ch <- opened{s, err}
	}()
	select {
	case o := <-ch:
		return o.s, o.err
	case <-ctx.Done():
	}
	t := time.NewTimer(startGrace)
	defer t.Stop()
	select {
	case o := <-ch:
		if o.err == nil { // done just as the signal came
			return nil, errors.Join(errInterrupted, o.s.close())
		}
		return nil, o.err
	case <-t.C:
		log, _ := newLogger(cfg, stderr)
		log.Warn("startup interrupted; stopped before serving, leaving a step that does not answer", "cause", context.Cause(ctx).Error())
		return nil, errInterrupted
	}
}

// cmdStore runs `sessiond store check`: it reads every record of the
// embedded store of a stopped server and lists those that do not decode
// and those quarantined.
func cmdStore(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "check" {
		return usageError{"store: want check"}
	}
	fs := flag.NewFlagSet("store check", flag.ContinueOnError)
	cf := newConfigFlags(fs)
	if pos, err := parse(fs, args[1:], stdout); err != nil {
		return err
	} else if len(pos) > 0 {
		return usageError{"store check takes no arguments"}
	}
	cfg, err := loadConfig(cf, getenv)
	if err != nil {
		return err
	}
	privateUmask()
	dir := filepath.Join(cfg.DataDir, "store")
	rep, err := pebble.Check(ctx, dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "store:       %s (format %s)\n", rep.Dir, rep.Format)
	fmt.Fprintf(stdout, "sessions:    %d records, all decode\n", rep.Sessions)
	fmt.Fprintf(stdout, "events:      %d records, all decode\n", rep.Events)
	list := func(title, note string, recs []pebble.Record) {
		fmt.Fprintf(stdout, "%-12s %d%s\n", title+":", len(recs), note)
		for _, r := range recs {
			fmt.Fprintf(stdout, "  %s  %d bytes  %s\n", describeRecord(r), r.Size, r.Error)
		}
	}
	list("corrupt", " (quarantined when the server next starts)", rep.Corrupt)
	list("quarantined", "", rep.Quarantined)
	if rep.Unknown > 0 {
		fmt.Fprintf(stdout, "unknown:     %d records under no known key prefix\n", rep.Unknown)
	}
	if rep.OK() {
		fmt.Fprintln(stdout, "ok")
		return nil
	}
	if rep.Format != rep.WantFormat {
		return fmt.Errorf("store check: %s: data format %q, this build reads %q", dir, rep.Format, rep.WantFormat)
	}
	return fmt.Errorf("store check: %s: %d corrupt, %d quarantined, %d unknown records",
		dir, len(rep.Corrupt), len(rep.Quarantined), rep.Unknown)
}

// describeRecord names a record by its key: a session's id, an event's
// sequence number.
func describeRecord(r pebble.Record) string {
	switch {
	case r.Kind == "session":
		return fmt.Sprintf("session %q", r.Key[1:])
	case r.Kind == "event" && len(r.Key) == 9:
		return fmt.Sprintf("event %d", binary.BigEndian.Uint64(r.Key[1:]))
	}
	return fmt.Sprintf("%s key %x", r.Kind, r.Key)
}

func cmdConfig(args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	cf := newConfigFlags(fs)
	if _, err := parse(fs, args, stdout); err != nil {
		return err
	}
	cfg, err := loadConfig(cf, getenv)
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
	_, err = stdout.Write(out)
	return err
}

// cmdToken prints a development credential for /v1/connect, signed with
// the configured HS256 secret.
func cmdToken(args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	cf := newConfigFlags(fs)
	subject := fs.String("subject", "", "the subject (sub claim); required")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	if pos, err := parse(fs, args, stdout); err != nil {
		return err
	} else if len(pos) > 0 || *subject == "" {
		return usageError{"token takes --subject S and optionally --ttl 1h"}
	}
	cfg, err := loadConfig(cf, getenv)
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
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// adminClient builds a client for the configured server, with the
// configured API key or the one saved in the data directory.
func adminClient(cf *configFlags, getenv func(string) string) (*client.Client, error) {
	cfg, err := loadConfig(cf, getenv)
	if err != nil {
		return nil, err
	}
	key := cfg.APIKey
	if key == "" {
		b, err := os.ReadFile(cfg.apiKeyFile()) //nolint:gosec // G304/G703: the operator names the data directory
		if err != nil {
			return nil, fmt.Errorf("no API key: pass --api-key or SESSIOND_API_KEY, or run where %s is readable (%v)", cfg.apiKeyFile(), err)
		}
		key = strings.TrimSpace(string(b))
	}
	base, hc, err := cfg.serverURL("http")
	if err != nil {
		return nil, err
	}
	c := client.New(base, key)
	if hc != nil {
		c.HTTP = hc
	}
	return c, nil
}

// serverURL is where the admin commands reach the configured server: addr
// as given if it has a scheme, else with scheme (http or ws) made secure
// (https, wss) when TLS is configured. With TLS, the client returned trusts
// the configured certificate; else it is nil, and the default one does.
func (cfg *Config) serverURL(scheme string) (string, *http.Client, error) {
	u := cfg.Addr
	if !strings.Contains(u, "://") {
		if cfg.TLS.on() {
			scheme += "s"
		}
		u = scheme + "://" + u
	}
	if !cfg.TLS.on() {
		return u, nil, nil
	}
	hc, err := cfg.clientTLS()
	if err != nil {
		return "", nil, err
	}
	return u, hc, nil
}

// cmdHealthcheck exits 0 once the server answers GET /readyz with 200,
// and 1 otherwise, within five seconds: a container's health check. It
// needs no API key.
func cmdHealthcheck(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	cf := newConfigFlags(fs)
	if _, err := parse(fs, args, stdout); err != nil {
		return err
	}
	cfg, err := loadConfig(cf, getenv)
	if err != nil {
		return err
	}
	base, hc, err := cfg.serverURL("http")
	if err != nil {
		return err
	}
	c := client.New(base, "")
	if hc != nil {
		c.HTTP = hc
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ready(ctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}

func cmdStatus(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	cf := newConfigFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args, stdout); err != nil {
		return err
	}
	c, err := adminClient(cf, getenv)
	if err != nil {
		return err
	}
	st, err := c.Stats(ctx)
	if err != nil {
		return err
	}
	ready := "ready"
	if err := c.Ready(ctx); err != nil {
		ready = "not ready (" + err.Error() + ")"
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(st)
	}
	fmt.Fprintf(stdout, "server:     %s, version %s, up %s\n", ready, st.Version, st.Uptime)
	fmt.Fprintf(stdout, "sessions:   %d (%d subjects with live sessions)\n", st.Total, st.Subjects)
	for _, s := range sessiond.States {
		if n := st.Sessions[s.String()]; n > 0 {
			fmt.Fprintf(stdout, "  %-12s %d\n", s.String()+":", n)
		}
	}
	fmt.Fprintf(stdout, "deadlines:  %d scheduled\n", st.Scheduled)
	return nil
}

func cmdSessions(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return usageError{"sessions: want ls, show, revoke, hibernate or wake"}
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("sessions "+sub, flag.ContinueOnError)
	cf := newConfigFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	subject := fs.String("subject", "", "subject")
	state := fs.String("state", "", "state filter (ls)")
	limit := fs.Int("limit", 100, "page size (ls)")
	cursor := fs.String("cursor", "", "resume a listing (ls)")
	all := fs.Bool("all", false, "follow cursors to the end (ls)")
	pos, err := parse(fs, args, stdout)
	if err != nil {
		return err
	}
	// Check the command line before anything needs the server or the key.
	switch {
	case (sub == "ls" || sub == "list") && len(pos) > 0:
		return usageError{"sessions ls takes no arguments"}
	case (sub == "show" || sub == "get") && len(pos) != 1:
		return usageError{"sessions show takes one session id"}
	case (sub == "hibernate" || sub == "wake") && len(pos) != 1:
		return usageError{"sessions " + sub + " takes one session id"}
	case (sub == "revoke" || sub == "rm") && (len(pos) == 1) == (*subject != "") || len(pos) > 1:
		return usageError{"sessions revoke takes a session id or --subject S"}
	}
	switch sub {
	case "ls", "list", "show", "get", "revoke", "rm", "hibernate", "wake":
	default:
		return usageError{fmt.Sprintf("sessions: unknown subcommand %q (want ls, show, revoke, hibernate or wake)", sub)}
	}
	c, err := adminClient(cf, getenv)
	if err != nil {
		return err
	}
	switch sub {
	case "ls", "list":
		opts := client.ListOptions{Subject: *subject, State: *state, Limit: *limit, Cursor: *cursor}
		var sessions []*sessiond.Session
		next := ""
		for {
			page, err := c.List(ctx, opts)
			if err != nil {
				return err
			}
			sessions = append(sessions, page.Sessions...)
			next = page.NextCursor
			if !*all || next == "" {
				break
			}
			opts.Cursor = next
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(client.ListResponse{Sessions: sessions, NextCursor: next})
		}
		if err := printTable(stdout, sessions); err != nil {
			return err
		}
		if next != "" {
			fmt.Fprintf(stdout, "\nmore: --cursor %s (or --all)\n", next)
		}
		return nil
	case "show", "get":
		s, err := c.Get(ctx, pos[0])
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(s)
		}
		return printSession(stdout, s)
	case "hibernate", "wake":
		// Both wait for the session's runtime, up to the policy's
		// wake_timeout.
		do := c.Hibernate
		if sub == "wake" {
			do = c.Wake
		}
		s, err := do(ctx, pos[0])
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(s)
		}
		fmt.Fprintf(stdout, "%s is %s\n", s.ID, s.State)
		return nil
	default: // revoke
		if *subject == "" {
			if err := c.Revoke(ctx, pos[0]); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "revoked %s\n", pos[0])
			return nil
		}
		n, err := c.RevokeSubject(ctx, *subject)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %d sessions of %s\n", n, *subject)
		return nil
	}
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t)
	if d < 0 {
		return "in " + (-d).Round(time.Second).String()
	}
	return d.Round(time.Second).String() + " ago"
}

func printTable(w io.Writer, sessions []*sessiond.Session) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSUBJECT\tSTATE\tPOLICY\tDEVICE\tCREATED\tLAST ACTIVE\tEXPIRES")
	for _, s := range sessions {
		state := s.State.String()
		if s.EndReason != "" {
			state += " (" + string(s.EndReason) + ")"
		}
		dev := s.Device.ID
		if dev == "" {
			dev = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Subject, state, s.Policy, dev,
			ago(s.CreatedAt), ago(s.LastActive), ago(s.ExpiresAt))
	}
	if len(sessions) == 0 {
		fmt.Fprintln(tw, "(no sessions)")
	}
	return tw.Flush()
}

func printSession(w io.Writer, s *sessiond.Session) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339) + " (" + ago(t) + ")"
	}
	row("id", s.ID)
	row("log id", sessiond.LogID(s.ID))
	row("subject", s.Subject)
	row("state", s.State.String())
	row("state since", ts(s.StateSince))
	row("end reason", string(s.EndReason))
	row("policy", s.Policy)
	row("created", ts(s.CreatedAt))
	row("last active", ts(s.LastActive))
	row("expires", ts(s.ExpiresAt))
	if s.IdleTimeout > 0 {
		row("idle timeout", s.IdleTimeout.String())
	}
	row("rotated", ts(s.RotatedAt))
	row("ended", ts(s.EndedAt))
	row("generation", fmt.Sprint(s.Generation))
	if s.Cycle > 0 {
		row("hibernations", fmt.Sprint(s.Cycle))
	}
	row("version", fmt.Sprint(s.Version))
	d := s.Device
	var dev []string
	for _, kv := range [][2]string{{"id", d.ID}, {"type", d.Type}, {"name", d.Name}, {"ip", d.IP}, {"user agent", d.UserAgent}} {
		if kv[1] != "" {
			dev = append(dev, kv[0]+"="+kv[1])
		}
	}
	sort.Strings(dev)
	row("device", strings.Join(dev, " "))
	if len(s.Metadata) > 0 {
		row("metadata", string(s.Metadata))
	}
	return tw.Flush()
}
