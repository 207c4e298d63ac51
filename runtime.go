package sessiond

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// RuntimeAction is what a session's runtime is asked to do.
type RuntimeAction string

// Runtime actions.
const (
	// RuntimeHibernate: put the session's workspace to sleep (scale it to
	// zero). The session is hibernated once the runtime says it is done.
	RuntimeHibernate RuntimeAction = "hibernate"
	// RuntimeWake: bring it back. The session's waiting connections are
	// told it is ready once the runtime says it is done.
	RuntimeWake RuntimeAction = "wake"
	// RuntimeDispose: the session ended; whatever the runtime keeps for it
	// can go. Sent for sessions whose policy hibernates, or that ever
	// hibernated, while they end, like an ending hook.
	RuntimeDispose RuntimeAction = "dispose"
)

// RuntimeCall is one call of a session's runtime.
type RuntimeCall struct {
	Action  RuntimeAction
	Session *Session // as stored when the transition began; do not modify
	// Key identifies the transition: "<session id>.<cycle>.<action>"
	// (Session.Cycle). Every attempt of one transition carries the same
	// key, also when another node takes over the call from a node that
	// died, so a runtime can use it as an idempotency key; the next
	// hibernation has a new one.
	Key string
}

// RuntimeMessage is a runtime call as the server's runtimes send it, in
// JSON: the body of a runtime webhook, the standard input of a runtime
// command.
//
//	{"type":"session.wake","timestamp":"...","data":{"action":"wake",
//	 "key":"<session id>.<cycle>.wake","session":{...}}}
type RuntimeMessage struct {
	Type      string          `json:"type"` // "session." and the action
	Timestamp time.Time       `json:"timestamp"`
	Data      RuntimeCallData `json:"data"`
}

// RuntimeCallData is what a runtime call is about.
type RuntimeCallData struct {
	Action  RuntimeAction `json:"action"` // hibernate, wake or dispose
	Key     string        `json:"key"`
	Session *Session      `json:"session"` // as it was when the transition began
}

// Message returns the call as a RuntimeMessage sent at now.
func (c RuntimeCall) Message(now time.Time) RuntimeMessage {
	return RuntimeMessage{
		Type: "session." + string(c.Action), Timestamp: now.UTC(),
		Data: RuntimeCallData{Action: c.Action, Key: c.Key, Session: c.Session},
	}
}

// Runtime carries out what hibernating and waking a session mean to the
// application, which owns them: say, stopping and starting a container.
// A transition completes only when its call returns nil. A call returns
// an error to fail the transition, and must return once ctx is done
// (the policy's wake_timeout has passed, or the engine is closing).
// Calls for different sessions run concurrently; calls for one session
// do not, on one node.
//
// The server offers two kinds (signed webhooks and commands, configured
// under hooks.runtime); a library user may pass any function.
type Runtime func(ctx context.Context, call RuntimeCall) error

// runtimeKey is a transition's idempotency key.
func runtimeKey(s *Session, a RuntimeAction) string {
	return s.ID + "." + strconv.FormatUint(s.Cycle, 10) + "." + string(a)
}

// errRuntimeTimeout is the cause of a runtime call's context canceled by
// the wake timeout.
var errRuntimeTimeout = errors.New("the runtime did not answer within the policy's wake_timeout")
