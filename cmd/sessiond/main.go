// Command sessiond runs the session lifecycle server and administers it:
// `sessiond serve` runs it, the other commands check its configuration and
// call a running server. `sessiond help` lists them; `sessiond help
// COMMAND` describes one and its flags, each with its SESSIOND_*
// environment twin. The table of commands is commandTable (commands.go).
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
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/pebble"
	"github.com/sessiond/sessiond/wire"
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

// run is main without the process: testable end to end.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText())
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprint(stdout, usageText())
		return 0
	case "-version", "--version":
		args = append([]string{"version"}, args[1:]...)
	}
	cmd, rest, err := lookup(commandTable(), args)
	if err == nil {
		err = execute(ctx, cmd, rest, stdout, stderr, getenv)
	}
	if err == nil {
		return 0
	}
	var se *sessiond.Error
	var unreachable *unreachableError
	switch {
	case errors.As(err, &unreachable):
		// Said in words: the wrapping (the request, the dial) adds nothing.
		fmt.Fprintln(stderr, "sessiond:", unreachable)
	case errors.As(err, &se):
		// A server's answer: show its stable code too.
		fmt.Fprintf(stderr, "sessiond: %s: %s\n", se.Code, se.Error())
	default:
		fmt.Fprintln(stderr, "sessiond:", err)
	}
	if isUsage(err) || se != nil && se.Code == sessiond.CodeInvalidArgument {
		return 2 // the command line was wrong, as the server saw it
	}
	return 1
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
// and returns the positional ones. It returns flag.ErrHelp for -h and
// --help, and flag errors with the flag named as the usage text writes
// it (--name).
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errors.New(flagMessage(err.Error()))
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// flagMessage is a message of package flag, which names flags with one
// dash, with two.
func flagMessage(msg string) string {
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return "unknown flag --" + strings.TrimPrefix(name, "-")
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return "--" + strings.TrimPrefix(name, "-") + " needs a value"
	}
	if before, after, ok := strings.Cut(msg, " for flag -"); ok {
		return before + " for --" + strings.TrimPrefix(after, "-")
	}
	return msg
}

func cmdServe(*flag.FlagSet) action {
	return func(ctx context.Context, in *input) error {
		cfg, err := in.config()
		if err != nil {
			return err
		}
		privateUmask() // before anything is created: the data directory is the server user's alone
		// openServer checks cfg first, with the check config makes.
		s, err := openInterruptibly(ctx, cfg, in.stderr)
		if errors.Is(err, errInterrupted) {
			return nil // asked to stop: logged
		}
		if err != nil {
			return err
		}
		return s.run(ctx)
	}
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

// cmdStoreCheck is `sessiond store check`: it reads every record of the
// embedded store of a stopped server and lists those that do not decode
// and those quarantined.
func cmdStoreCheck(*flag.FlagSet) action {
	return func(ctx context.Context, in *input) error {
		cfg, err := in.config()
		if err != nil {
			return err
		}
		return storeCheck(ctx, cfg, in.stdout)
	}
}

func storeCheck(ctx context.Context, cfg Config, stdout io.Writer) error {
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

// adminClient builds a client for the configured server, with the
// configured API key or the one saved in the data directory.
func adminClient(in *input) (*client.Client, error) {
	cfg, err := in.config()
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
	c.HTTP = hc
	return c, nil
}

// serverURL is where the admin commands reach the configured server: addr
// as given if it has a scheme, else with scheme (http or ws) made secure
// (https, wss) when TLS is configured. The client returned trusts the
// configured certificate with TLS, and says in words why a server does
// not answer (reachTransport).
func (cfg *Config) serverURL(scheme string) (string, *http.Client, error) {
	u := cfg.Addr
	if !strings.Contains(u, "://") {
		if cfg.TLS.on() {
			scheme += "s"
		}
		u = scheme + "://" + u
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: http.DefaultTransport}
	if cfg.TLS.on() {
		var err error
		if hc, err = cfg.clientTLS(); err != nil {
			return "", nil, err
		}
	}
	hc.Transport = reachTransport{next: hc.Transport, base: u}
	return u, hc, nil
}

// cmdHealthcheck exits 0 once the server answers GET /readyz with 200,
// and 1 otherwise, within five seconds: a container's health check. It
// needs no API key.
func cmdHealthcheck(*flag.FlagSet) action {
	return func(ctx context.Context, in *input) error {
		cfg, err := in.config()
		if err != nil {
			return err
		}
		base, hc, err := cfg.serverURL("http")
		if err != nil {
			return err
		}
		c := client.New(base, "")
		c.HTTP = hc
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := c.Ready(ctx); err != nil {
			return err
		}
		fmt.Fprintln(in.stdout, "ready")
		return nil
	}
}

func cmdStatus(fs *flag.FlagSet) action {
	asJSON := fs.Bool("json", false, "print JSON")
	return func(ctx context.Context, in *input) error {
		return status(ctx, in, *asJSON)
	}
}

func status(ctx context.Context, in *input, asJSON bool) error {
	stdout := in.stdout
	c, err := adminClient(in)
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
	if asJSON {
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

func cmdNodes(fs *flag.FlagSet) action {
	asJSON := jsonFlag(fs)
	return func(ctx context.Context, in *input) error {
		c, err := adminClient(in)
		if err != nil {
			return err
		}
		nodes, err := c.Nodes(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(in.stdout).Encode(wire.NodesResponse{Nodes: nodes})
		}
		return printNodes(in.stdout, nodes)
	}
}

func printNodes(w io.Writer, nodes []client.Node) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE	LEASE	CONNECTIONS")
	for _, n := range nodes {
		name, lease, conns := n.Node, "none", strconv.Itoa(n.Connections)
		if n.Self {
			name += " *"
		}
		if n.Until != nil {
			lease = "ends " + ago(*n.Until)
			if n.Dead {
				lease = "dead: its connections are being released, claim ends " + ago(*n.Until)
			}
		}
		if n.ConnectionsMore {
			conns += "+"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, lease, conns)
	}
	return tw.Flush()
}

// jsonFlag is the --json flag of the commands that print JSON on request.
func jsonFlag(fs *flag.FlagSet) *bool { return fs.Bool("json", false, "print JSON") }

func cmdSessionsList(fs *flag.FlagSet) action {
	asJSON := jsonFlag(fs)
	subject := fs.String("subject", "", "only the sessions of `SUBJECT`")
	state := fs.String("state", "", "only the sessions in `STATE`: "+stateNames())
	limit := fs.Int("limit", 100, "at most `N` sessions a page")
	cursor := fs.String("cursor", "", "the page after the one that ended with `CURSOR`")
	all := fs.Bool("all", false, "follow the cursors to the end: every page")
	return func(ctx context.Context, in *input) error {
		c, err := adminClient(in)
		if err != nil {
			return err
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
			return json.NewEncoder(in.stdout).Encode(client.ListResponse{Sessions: sessions, NextCursor: next})
		}
		if err := printTable(in.stdout, sessions); err != nil {
			return err
		}
		if next != "" {
			fmt.Fprintf(in.stdout, "\nmore: --cursor %s (or --all)\n", next)
		}
		return nil
	}
}

// stateNames lists the session states: "active, disconnected, ...".
func stateNames() string {
	names := make([]string, len(sessiond.States))
	for i, s := range sessiond.States {
		names[i] = s.String()
	}
	return strings.Join(names, ", ")
}

// oneID is the check of the commands that take one session id.
func oneID(in *input) error {
	if len(in.args) != 1 {
		return usageError{in.cmd.name + " takes one session id"}
	}
	return nil
}

func cmdSessionsShow(fs *flag.FlagSet) action {
	asJSON := jsonFlag(fs)
	return func(ctx context.Context, in *input) error {
		if err := oneID(in); err != nil {
			return err
		}
		c, err := adminClient(in)
		if err != nil {
			return err
		}
		s, err := c.Get(ctx, in.args[0])
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(in.stdout).Encode(s)
		}
		return printSession(in.stdout, s)
	}
}

func cmdSessionsRevoke(fs *flag.FlagSet) action {
	subject := fs.String("subject", "", "revoke every live session of `SUBJECT` instead")
	return func(ctx context.Context, in *input) error {
		if (len(in.args) == 1) == (*subject != "") || len(in.args) > 1 {
			return usageError{"sessions revoke takes a session id or --subject S"}
		}
		c, err := adminClient(in)
		if err != nil {
			return err
		}
		if *subject == "" {
			if err := c.Revoke(ctx, in.args[0]); err != nil {
				return err
			}
			fmt.Fprintf(in.stdout, "revoked %s\n", in.args[0])
			return nil
		}
		n, err := c.RevokeSubject(ctx, *subject)
		if err != nil {
			return err
		}
		fmt.Fprintf(in.stdout, "revoked %d sessions of %s\n", n, *subject)
		return nil
	}
}

func cmdSessionsHibernate(fs *flag.FlagSet) action {
	return hibernateOrWake(fs, (*client.Client).Hibernate)
}

func cmdSessionsWake(fs *flag.FlagSet) action {
	return hibernateOrWake(fs, (*client.Client).Wake)
}

// hibernateOrWake is sessions hibernate and sessions wake: both wait for
// the session's runtime, up to the policy's wake_timeout.
func hibernateOrWake(fs *flag.FlagSet, do func(*client.Client, context.Context, string) (*sessiond.Session, error)) action {
	asJSON := jsonFlag(fs)
	return func(ctx context.Context, in *input) error {
		if err := oneID(in); err != nil {
			return err
		}
		c, err := adminClient(in)
		if err != nil {
			return err
		}
		s, err := do(c, ctx, in.args[0])
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(in.stdout).Encode(s)
		}
		fmt.Fprintf(in.stdout, "%s is %s\n", s.ID, s.State)
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
