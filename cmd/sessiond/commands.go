package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// command is one command of the CLI. The table of them, commandTable, is
// the one place each command is described: dispatch (run), the usage
// text, `sessiond help` and `COMMAND --help`, and the completion scripts
// all read it.
type command struct {
	name    string   // the words that run it: "sessions ls"
	aliases []string // other last words that run it, not shown: "list"
	// args is what follows the name in the usage text: positional
	// arguments, and flags that are required or exclude each other
	// ("ID | --subject S"). The optional flags are listed by help.
	args string
	// noArgs: it takes no positional arguments, and execute refuses them.
	noArgs  bool
	summary string // one line, lower case, no period
	help    string // paragraphs help prints after the summary; may be ""
	// config are the configuration flags the command takes, by name
	// (flagEnv); its SESSIOND_* environment variables are read whatever
	// it takes.
	config []string
	// flags registers the command's own flags on fs and returns what runs
	// the command once its command line is parsed. nil for a group that
	// only holds subcommands.
	flags func(fs *flag.FlagSet) action
	subs  []*command
}

// action runs a command with its command line parsed.
type action func(ctx context.Context, in *input) error

// input is what a command runs with.
type input struct {
	cmd    *command
	args   []string // the positional arguments
	cf     *configFlags
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// config loads the effective configuration from the command's flags, the
// environment and the config file.
func (in *input) config() (Config, error) { return loadConfig(in.cf, in.getenv) }

// The configuration flags of the commands that use only some.
var (
	// adminConfig: the commands that call a running server's admin API
	// reach it at addr (over HTTPS, trusting tls.cert, when TLS is
	// configured; tls.key goes with it) with the API key, or the one
	// saved in data_dir.
	adminConfig = []string{"config", "addr", "data-dir", "api-key", "api-key-file", "tls-cert", "tls-key"}
	// healthConfig: healthcheck calls /readyz, which needs no key.
	healthConfig = []string{"config", "addr", "tls-cert", "tls-key"}
	// signConfig: token signs with the HS256 secret.
	signConfig = []string{"config", "jwt-secret", "jwt-secret-file"}
	// verifyConfig: token check verifies as the WebSocket edge does,
	// with every setting of jwt: that has a flag.
	verifyConfig = []string{"config", "jwt-secret", "jwt-secret-file", "jwt-public-key", "jwt-jwks-url", "jwt-issuer",
		"jwt-audience", "jwt-subject-claim", "jwt-leeway", "jwt-max-lifetime", "jwt-allow-any-audience"}
	// connectConfig: connect signs its credentials with the HS256
	// secret and dials addr (wss, trusting tls.cert, with TLS).
	connectConfig = []string{"config", "addr", "jwt-secret", "jwt-secret-file", "tls-cert", "tls-key"}
)

// commandTable is every command, in the order the usage text lists them.
func commandTable() []*command {
	all := configFlagNames()
	return []*command{
		{name: "serve", noArgs: true, summary: "run the server", config: all, flags: cmdServe, help: `
Serves REST and the WebSocket edge on --addr (plain HTTP on loopback, HTTPS
with --tls-cert and --tls-key), the sessions in the embedded store in
--data-dir unless --store says otherwise. On first start it generates an
admin API key and saves it in DATA_DIR/api_key. The web console is at
/console (--console=false turns it off). SIGTERM or SIGINT stops it
gracefully; the sessions are kept. Tracing (OpenTelemetry, OTLP) is off
unless the standard OTEL_* variables ask for it (docs/operations.md,
"Tracing").`},
		{name: "config", summary: "print the effective configuration", config: all, flags: cmdConfig, help: `
Prints, as YAML, what serve would run with: the config file, the
environment and the flags merged, every default filled in, secrets
hidden. It checks the configuration as serve does first, and fails as
serve would (exit 2).`,
			subs: []*command{
				{name: "config check", noArgs: true, summary: "check the configuration as serve does, without serving", config: all, flags: cmdConfigCheck, help: `
Checks everything serve checks before it starts: the config file's keys and
values, the policies, the listen address, the API key, the TLS certificate
and key, the JWT material (the secret, the public key files, the JWKS
URL's form: it is not fetched), the hooks, the history's PostgreSQL URL
(not connected to), the OTEL_* variables of tracing. It prints what it
checked, or serve's message and exits 2.`},
				{name: "config init", summary: "write a commented config file to start from", flags: cmdConfigInit, help: `
Writes the example configuration (docs/sessiond.example.yaml in the source
tree): every key, with its default where it has one, commented. It refuses
to overwrite a file unless --force. Then: sessiond config check --config
FILE.`},
			}},
		{name: "status", noArgs: true, summary: "show a running server's state", config: adminConfig, flags: cmdStatus, help: `
Prints whether the server is ready, its version and uptime, and its
sessions by state.`},
		{name: "nodes", noArgs: true, summary: "list the nodes sharing a running server's store", config: adminConfig, flags: cmdNodes, help: `
Lists every node with a lease in the store (one on the embedded store, each
node of a cluster on Redis) and every node that holds connections without
one: its lease's end, whether another node has claimed it (dead), and the
WebSocket connections it holds (counted up to 1000). The node that answered
is marked with *.`},
		{name: "healthcheck", noArgs: true, summary: "exit 0 if the server is ready, else 1 (for containers)", config: healthConfig, flags: cmdHealthcheck, help: `
Asks the server's GET /readyz, which needs no API key, and gives up after
five seconds: a container's health check.`},
		{name: "sessions", summary: "list, show, revoke, hibernate and wake a running server's sessions", subs: []*command{
			{name: "sessions ls", noArgs: true, aliases: []string{"list"}, summary: "list sessions, a page at a time", config: adminConfig, flags: cmdSessionsList, help: `
Lists the sessions, live and ended (ended ones stay for the retention),
filtered by subject and state. A page that has more after it ends with
the cursor of the next; --all follows them to the end.`},
			{name: "sessions show", aliases: []string{"get"}, args: "ID", summary: "show a session", config: adminConfig, flags: cmdSessionsShow, help: `
Prints every field of the session, its hashed log id (as the server's logs
show it) among them.`},
			{name: "sessions revoke", aliases: []string{"rm"}, args: "ID | --subject S", summary: "end a session, or every live session of a subject", config: adminConfig, flags: cmdSessionsRevoke, help: `
Ends the session (reason revoked): its token stops working and its sockets
close with code 4500. Revoking an ended session succeeds and changes
nothing.`},
			{name: "sessions hibernate", args: "ID", summary: "put a session with no connections to sleep now", config: adminConfig, flags: cmdSessionsHibernate, help: `
Waits for the session's runtime (hooks.runtime) to hibernate it, up to its
policy's wake_timeout (docs/hibernation.md).`},
			{name: "sessions wake", args: "ID", summary: "wake a hibernated session now", config: adminConfig, flags: cmdSessionsWake, help: `
Waits for the session's runtime (hooks.runtime) to wake it, up to its
policy's wake_timeout (docs/hibernation.md).`},
		}},
		{name: "history", args: "ID | --subject S", summary: "lifecycle history (of a server run with --history)", config: adminConfig, flags: cmdHistory, help: `
Prints the lifecycle events of a session, or of every session of a subject,
oldest first, from the PostgreSQL history of a server started with
--history (docs/history.md).`},
		{name: "token", args: "--subject S", summary: "print a development JWT, signed with the HS256 secret", config: signConfig, flags: cmdToken, help: `
Signs a credential for the WebSocket edge with the configured HS256 secret
(--jwt-secret, or jwt.secret in the config file): for development and
tests, where no identity provider issues them.`,
			subs: []*command{
				{name: "token check", args: "TOKEN", summary: "verify a JWT as the WebSocket edge does", config: verifyConfig, flags: cmdTokenCheck, help: `
Verifies TOKEN with the configured keys and rules (secret, public keys,
JWKS, issuer, audience, leeway, max lifetime, subject claim), exactly as
the WebSocket edge does, and prints its claims. A refused token exits 1
with the reason (token expired, bad signature, wrong audience...); its
claims are printed all the same, marked unverified.`},
			}},
		{name: "connect", args: "--subject S [--device D | --session-token T]", summary: "hold a WebSocket to a session, printing what happens", config: connectConfig, flags: cmdConnect, help: `
Connects to the session of device D (without --device: the subject's
default device), created by the first connection, or to a session created
over REST (--session-token). It signs its credentials with the HS256
secret, prints each state change and message, reconnects (resuming the
session) when the server allows it, and stops on Ctrl-C or a terminal
close code (exit 1).`},
		{name: "store", summary: "the embedded store of a stopped server", subs: []*command{
			{name: "store check", noArgs: true, summary: "verify every record of a stopped server's store", config: []string{"config", "data-dir"}, flags: cmdStoreCheck, help: `
Reads every record of the embedded store in DATA_DIR/store, with the
server stopped, and lists those that do not decode (quarantined when the
server next starts) and those already quarantined. Exit 1 if any.`},
		}},
		{name: "version", noArgs: true, summary: "print the version and VCS revision of this build", flags: cmdVersion},
		{name: "completion", args: "bash | zsh", summary: "print a shell completion script", flags: cmdCompletion, help: `
Completes the commands, subcommands and each command's flags. For bash:
    source <(sessiond completion bash)
or save it as /etc/bash_completion.d/sessiond. For zsh, save it as
_sessiond in a directory of $fpath, or: source <(sessiond completion zsh)
after compinit.`},
		{name: "help", args: "[COMMAND]", summary: "describe a command and its flags", flags: cmdHelp},
	}
}

// lastWord is the word that runs c after its parent's.
func (c *command) lastWord() string {
	f := strings.Fields(c.name)
	return f[len(f)-1]
}

// is reports whether word runs c after its parent's.
func (c *command) is(word string) bool {
	return word == c.lastWord() || slices.Contains(c.aliases, word)
}

// sub is the subcommand word runs, or nil.
func (c *command) sub(word string) *command {
	for _, s := range c.subs {
		if s.is(word) {
			return s
		}
	}
	return nil
}

// subNames lists the subcommands' names: "ls, show, revoke, hibernate or wake".
func (c *command) subNames() string {
	names := make([]string, len(c.subs))
	for i, s := range c.subs {
		names[i] = s.lastWord()
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// lookup finds the command that words name, and returns it with the words
// after its name.
func lookup(table []*command, words []string) (*command, []string, error) {
	var cmd *command
	for _, c := range table {
		if c.is(words[0]) {
			cmd = c
		}
	}
	if cmd == nil {
		return nil, nil, usageError{fmt.Sprintf("unknown command %q (sessiond help lists them)", words[0])}
	}
	rest := words[1:]
	for len(rest) > 0 {
		s := cmd.sub(rest[0])
		if s == nil {
			break
		}
		cmd, rest = s, rest[1:]
	}
	return cmd, rest, nil
}

// walk calls f on every command of the table, each before its subcommands.
func walk(table []*command, f func(*command)) {
	for _, c := range table {
		f(c)
		walk(c.subs, f)
	}
}

// flagSet is the command's flag set: its own flags, then its
// configuration flags. act is nil for a group without an action of its own.
func (c *command) flagSet() (fs *flag.FlagSet, cf *configFlags, act action) {
	fs = flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if c.flags != nil {
		act = c.flags(fs)
	}
	return fs, newConfigFlags(fs, c.config), act
}

// execute parses the command line of cmd (the words after its name) and
// runs it; --help (-h) prints its help to stdout instead.
func execute(ctx context.Context, cmd *command, words []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs, cf, act := cmd.flagSet()
	if act == nil && len(words) > 0 && !strings.HasPrefix(words[0], "-") {
		return usageError{fmt.Sprintf("%s: unknown subcommand %q (want %s)", cmd.name, words[0], cmd.subNames())}
	}
	pos, err := parse(fs, words)
	switch {
	case errors.Is(err, flag.ErrHelp):
		writeHelp(stdout, cmd, fs)
		return nil
	case err != nil:
		return usageError{fmt.Sprintf("%s: %v (sessiond help %s lists its flags)", cmd.name, err, cmd.name)}
	case act == nil && len(pos) == 0:
		return usageError{fmt.Sprintf("%s: want a subcommand: %s (sessiond help %s)", cmd.name, cmd.subNames(), cmd.name)}
	case cmd.noArgs && len(pos) > 0:
		return usageError{cmd.name + " takes no arguments"}
	case len(cmd.subs) > 0 && len(pos) > 0:
		// A group takes no arguments of its own: this is a subcommand
		// mistyped (lookup took the right ones).
		return usageError{fmt.Sprintf("%s: unknown subcommand %q (want %s)", cmd.name, pos[0], cmd.subNames())}
	}
	return act(ctx, &input{cmd: cmd, args: pos, cf: cf, stdout: stdout, stderr: stderr, getenv: getenv})
}
