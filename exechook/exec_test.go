package exechook_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/exechook"
)

func call(action sessiond.RuntimeAction) sessiond.RuntimeCall {
	s := &sessiond.Session{ID: "06h0c3x1j2k4m5n6p7q8r9s0t1", Subject: "alice", Policy: "workspace",
		State: sessiond.StateWaking, Cycle: 2, Metadata: json.RawMessage(`{"image":"ubuntu"}`)}
	s.Device.ID = "laptop"
	return sessiond.RuntimeCall{Action: action, Session: s, Key: s.ID + ".2." + string(action)}
}

// script writes a shell script into a temporary directory.
func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hook.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o700); err != nil { //nolint:gosec // G306: it must run
		t.Fatal(err)
	}
	return path
}

func TestTheCommandGetsTheCallInItsEnvironmentAndOnStdin(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	t.Setenv("SESSIOND_API_KEY", "must-not-leak")
	t.Setenv("HOOK_EXTRA", "passed")
	hook := script(t, `env > "$1.env"; cat > "$1.stdin"`)
	rt := exechook.Runtime(exechook.Command{Argv: []string{hook, out}, Env: []string{"HOOK_EXTRA", "REGION=eu"}})
	if err := rt(t.Context(), call(sessiond.RuntimeWake)); err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(out + ".env")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for line := range strings.Lines(string(env)) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		got[k] = v
	}
	for k, v := range map[string]string{
		"SESSIOND_ACTION": "wake", "SESSIOND_KEY": "06h0c3x1j2k4m5n6p7q8r9s0t1.2.wake",
		"SESSIOND_SESSION_ID": "06h0c3x1j2k4m5n6p7q8r9s0t1", "SESSIOND_SUBJECT": "alice",
		"SESSIOND_POLICY": "workspace", "SESSIOND_STATE": "waking", "SESSIOND_CYCLE": "2",
		"SESSIOND_DEVICE_ID": "laptop", "SESSIOND_METADATA": `{"image":"ubuntu"}`,
		"HOOK_EXTRA": "passed", "REGION": "eu",
	} {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["SESSIOND_API_KEY"]; ok {
		t.Error("the server's own variables leaked into the command's environment")
	}
	stdin, err := os.ReadFile(out + ".stdin")
	if err != nil {
		t.Fatal(err)
	}
	var m sessiond.RuntimeMessage
	if err := json.Unmarshal(stdin, &m); err != nil {
		t.Fatalf("stdin %q: %v", stdin, err)
	}
	if m.Type != "session.wake" || m.Data.Key != "06h0c3x1j2k4m5n6p7q8r9s0t1.2.wake" || m.Data.Session == nil || m.Data.Session.Subject != "alice" {
		t.Fatalf("stdin: %+v", m)
	}
}

func TestAFailingCommandFailsTheCallWithItsOutput(t *testing.T) {
	hook := script(t, `echo "no capacity in eu-west" >&2; exit 3`)
	err := exechook.Runtime(exechook.Command{Argv: []string{hook}})(t.Context(), call(sessiond.RuntimeHibernate))
	var e *exechook.Error
	if !errors.As(err, &e) || e.ExitCode != 3 || e.Action != sessiond.RuntimeHibernate || !strings.Contains(err.Error(), "no capacity in eu-west") {
		t.Fatalf("err = %v, want exit status 3 with the command's stderr", err)
	}
}

// A command still running when the call's context ends is killed, and so
// is every process it started, even one that ignores SIGTERM and holds
// the output open.
func TestATimeoutKillsTheCommandAndItsChildren(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	hook := script(t, `trap '' TERM; sleep 300 & echo $! > "$1"; wait`)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	start := time.Now()
	err := exechook.Runtime(exechook.Command{Argv: []string{hook, pidFile}, KillGrace: 100 * time.Millisecond})(ctx, call(sessiond.RuntimeWake))
	var e *exechook.Error
	if !errors.As(err, &e) || e.ExitCode != -1 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want killed at the deadline", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the call returned %v after its deadline", took)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// The child was sent SIGKILL with its group; it is gone once the
	// kernel reaped it (its parent, the shell, is dead, so init reaps it).
	for i := 0; ; i++ {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			break
		}
		if i == 500 {
			t.Fatalf("the command's child %d still runs", pid)
		}
		time.Sleep(10 * time.Millisecond) // waiting on the kernel, not on a timeout of ours
	}
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		cmd  exechook.Command
		want string
	}{
		{exechook.Command{}, "empty"},
		{exechook.Command{Argv: []string{"no-such-program-sessiond"}}, "not found"},
		{exechook.Command{Argv: []string{"sh"}, Env: []string{"=x"}}, "NAME"},
	} {
		if err := c.cmd.Check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Check(%+v) = %v, want an error with %q", c.cmd, err, c.want)
		}
	}
	if err := (exechook.Command{Argv: []string{"sh", "-c", "true"}, Env: []string{"HOME", "A=b"}}).Check(); err != nil {
		t.Errorf("a good command: %v", err)
	}
}
