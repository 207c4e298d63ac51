// Package exechook runs a command as a session's runtime (sessiond.Runtime):
// what hibernating, waking and disposing of a session mean to the
// application, written as a program of its own (a shell script that scales
// a deployment, say).
//
// Each call runs the command once. Exit status 0 completes the transition;
// any other status, or a command still running when the call's context
// ends (the policy's wake_timeout), fails it: the command and every process
// it started (its process group, on Unix) are killed. The command gets the
// call in its environment and, as JSON, on its standard input:
//
//	SESSIOND_ACTION      hibernate, wake or dispose
//	SESSIOND_KEY         the transition's idempotency key, "<id>.<cycle>.<action>"
//	SESSIOND_SESSION_ID  the session's id
//	SESSIOND_SUBJECT     its subject
//	SESSIOND_POLICY      its policy
//	SESSIOND_STATE       its state when the transition began (hibernating, waking, ending)
//	SESSIOND_CYCLE       how many times it hibernated before
//	SESSIOND_DEVICE_ID   its device's id, if it has one
//	SESSIOND_METADATA    its metadata, a JSON object
//
// standard input: the call as a sessiond.RuntimeMessage, the body a runtime
// webhook gets.
//
// The command's environment is those variables, PATH, HOME, LANG and TZ
// from the server's own, and what Command.Env adds: the server's other
// variables (its API key among them) are not passed on.
package exechook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
)

// Command is the program to run.
type Command struct {
	// Argv is the program and its arguments; the program is looked up in
	// PATH if it has no slash.
	Argv []string
	// Env adds to the command's environment: "NAME=value" sets a
	// variable, "NAME" passes the server's own value on.
	Env []string
	// Dir is the directory it runs in: the server's if empty.
	Dir string
	// KillGrace is how long the command's output is waited for once it
	// has been killed (or has exited while its children hold its output
	// open): 0 means one second.
	KillGrace time.Duration
}

// passed are the server's variables every command gets.
var passed = []string{"PATH", "HOME", "LANG", "TZ"}

// maxOutput is how much of the command's standard error an error quotes.
const maxOutput = 4 << 10

// Check reports what is wrong with a command, before any call runs it.
func (c Command) Check() error {
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return errors.New("exechook: the command is empty")
	}
	if _, err := exec.LookPath(c.Argv[0]); err != nil {
		return fmt.Errorf("exechook: %w", err)
	}
	for _, e := range c.Env {
		name, _, _ := strings.Cut(e, "=")
		if name == "" || strings.ContainsAny(name, " \t\n\x00") {
			return fmt.Errorf("exechook: env %q is not NAME or NAME=value", e)
		}
	}
	return nil
}

// Runtime returns a sessiond.Runtime that runs c once per call.
func Runtime(c Command) sessiond.Runtime {
	return func(ctx context.Context, call sessiond.RuntimeCall) error {
		return c.run(ctx, call)
	}
}

// Error is a command that did not succeed.
type Error struct {
	Action sessiond.RuntimeAction
	// ExitCode is the command's exit status; -1 if it was killed or did
	// not start.
	ExitCode int
	Stderr   string // the end of its standard error
	Err      error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("exechook: %s: ", e.Action)
	switch {
	case e.ExitCode >= 0:
		msg += fmt.Sprintf("exit status %d", e.ExitCode)
	default:
		msg += e.Err.Error()
	}
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

func (c Command) run(ctx context.Context, call sessiond.RuntimeCall) error {
	if len(c.Argv) == 0 {
		return &Error{Action: call.Action, ExitCode: -1, Err: errors.New("the command is empty")}
	}
	stdin, err := json.Marshal(call.Message(time.Now()))
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...) //nolint:gosec // G204: the operator configures the command
	cmd.Dir = c.Dir
	cmd.Env = c.environ(call)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr tailBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	inGroup(cmd) // Cancel kills the group
	cmd.WaitDelay = c.KillGrace
	if cmd.WaitDelay <= 0 {
		cmd.WaitDelay = time.Second
	}
	err = cmd.Run()
	if err == nil {
		return nil
	}
	e := &Error{Action: call.Action, ExitCode: -1, Stderr: strings.TrimSpace(stderr.String()), Err: err}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		e.Err = fmt.Errorf("killed: %w", context.Cause(ctx))
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		e.ExitCode = exit.ExitCode()
	}
	return e
}

// environ is the command's environment for one call.
func (c Command) environ(call sessiond.RuntimeCall) []string {
	var env []string
	for _, name := range passed {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	for _, e := range c.Env {
		if strings.Contains(e, "=") {
			env = append(env, e)
		} else if v, ok := os.LookupEnv(e); ok {
			env = append(env, e+"="+v)
		}
	}
	s := call.Session
	meta := []byte("{}")
	if len(s.Metadata) > 0 {
		meta = s.Metadata
	}
	return append(env,
		"SESSIOND_ACTION="+string(call.Action),
		"SESSIOND_KEY="+call.Key,
		"SESSIOND_SESSION_ID="+s.ID,
		"SESSIOND_SUBJECT="+s.Subject,
		"SESSIOND_POLICY="+s.Policy,
		"SESSIOND_STATE="+s.State.String(),
		"SESSIOND_CYCLE="+strconv.FormatUint(s.Cycle, 10),
		"SESSIOND_DEVICE_ID="+s.Device.ID,
		"SESSIOND_METADATA="+string(meta),
	)
}

// tailBuffer keeps the last maxOutput bytes written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > maxOutput {
		t.b = append(t.b[:0], t.b[len(t.b)-maxOutput:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }
