// Command sessiond runs the session lifecycle server and administers it.
//
//	sessiond serve                      run the server (embedded store in ./sessiond-data)
//	sessiond config                     print the effective configuration
//	sessiond status                     show a running server's state
//	sessiond sessions ls [--subject S] [--state X]
//	sessiond sessions show ID
//	sessiond sessions revoke ID
//	sessiond sessions revoke --subject S
//	sessiond version
//
// Every command takes --config, --addr, --data-dir, --api-key, --store,
// --log-format and --log-level, each with a SESSIOND_* environment twin.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

const usage = `sessiond: session lifecycle server

Usage:
  sessiond serve                          run the server
  sessiond config                         print the effective configuration
  sessiond status                         show a running server's state
  sessiond sessions ls [--subject S] [--state STATE] [--limit N] [--all] [--json]
  sessiond sessions show ID [--json]
  sessiond sessions revoke ID
  sessiond sessions revoke --subject S
  sessiond version

Common flags (each also read from its environment variable):
  --config FILE      SESSIOND_CONFIG      YAML config file; policies live there
  --addr HOST:PORT   SESSIOND_ADDR        listen address / server to talk to (127.0.0.1:7600)
  --data-dir DIR     SESSIOND_DATA_DIR    data directory (sessiond-data)
  --api-key KEY      SESSIOND_API_KEY     admin API key (default: generated, saved in DATA_DIR/api_key)
  --store KIND       SESSIOND_STORE       embedded (default) or memory
  --log-format F     SESSIOND_LOG_FORMAT  auto, text or json
  --log-level L      SESSIOND_LOG_LEVEL   debug, info, warn or error

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
	case "sessions":
		err = cmdSessions(ctx, args, stdout, getenv)
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
		fmt.Fprintln(stderr, "sessiond:", err)
		var se *sessiond.Error
		if errors.As(err, &se) && se.Code == sessiond.CodeInvalidArgument || isUsage(err) {
			return 2
		}
		return 1
	}
	return 0
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u)
}

// parse parses flags that may come before or after positional arguments
// and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
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
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usageError{"serve takes no arguments"}
	}
	cfg, err := cf.load(getenv)
	if err != nil {
		return err
	}
	s, err := openServer(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	return s.run(ctx)
}

func cmdConfig(args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	cf := newConfigFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := cf.load(getenv)
	if err != nil {
		return err
	}
	out, err := cfg.effective()
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

// adminClient builds a client for the configured server, with the
// configured API key or the one saved in the data directory.
func adminClient(cf *configFlags, getenv func(string) string) (*client.Client, error) {
	cfg, err := cf.load(getenv)
	if err != nil {
		return nil, err
	}
	key := cfg.APIKey
	if key == "" {
		b, err := os.ReadFile(cfg.apiKeyFile())
		if err != nil {
			return nil, fmt.Errorf("no API key: pass --api-key or SESSIOND_API_KEY, or run where %s is readable (%v)", cfg.apiKeyFile(), err)
		}
		key = strings.TrimSpace(string(b))
	}
	return client.New(cfg.Addr, key), nil
}

func cmdStatus(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	cf := newConfigFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args); err != nil {
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
		return usageError{"sessions: want ls, show or revoke"}
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
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	c, err := adminClient(cf, getenv)
	if err != nil {
		return err
	}
	switch sub {
	case "ls", "list":
		if len(pos) > 0 {
			return usageError{"sessions ls takes no arguments"}
		}
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
		printTable(stdout, sessions)
		if next != "" {
			fmt.Fprintf(stdout, "\nmore: --cursor %s (or --all)\n", next)
		}
		return nil
	case "show", "get":
		if len(pos) != 1 {
			return usageError{"sessions show takes one session id"}
		}
		s, err := c.Get(ctx, pos[0])
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(s)
		}
		printSession(stdout, s)
		return nil
	case "revoke", "rm":
		switch {
		case len(pos) == 1 && *subject == "":
			if err := c.Revoke(ctx, pos[0]); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "revoked %s\n", pos[0])
		case len(pos) == 0 && *subject != "":
			n, err := c.RevokeSubject(ctx, *subject)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "revoked %d sessions of %s\n", n, *subject)
		default:
			return usageError{"sessions revoke takes a session id or --subject S"}
		}
		return nil
	}
	return usageError{fmt.Sprintf("sessions: unknown subcommand %q (want ls, show or revoke)", sub)}
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

func printTable(w io.Writer, sessions []*sessiond.Session) {
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
	tw.Flush()
	if len(sessions) == 0 {
		fmt.Fprintln(w, "(no sessions)")
	}
}

func printSession(w io.Writer, s *sessiond.Session) {
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
	tw.Flush()
}
