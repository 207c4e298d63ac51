package webhook

import (
	"context"
	"encoding/json"
	"time"

	"github.com/sessiond/sessiond"
)

// Runtime returns a sessiond.Runtime that posts each call to s, as a
// sessiond.RuntimeMessage whose webhook-id is the call's key: the same on
// every retry and on a call another node took over, a new one each
// hibernation cycle. The transition completes once an attempt is answered
// 2xx, and fails when every attempt failed or the call's context ended
// (the policy's wake_timeout) first.
func Runtime(s *Sender) sessiond.Runtime {
	return func(ctx context.Context, call sessiond.RuntimeCall) error {
		body, err := json.Marshal(call.Message(s.now()))
		if err != nil {
			return err
		}
		return s.Send(ctx, Message{ID: call.Key, Body: body})
	}
}

// EndingBody is the JSON body of the ending hook (sessiond.Config's
// EndingHooks, as the server configures it with ending_hook_url):
//
//	{"type":"session.ending","timestamp":"...","event":"ending","session":{...}}
//
// Its webhook-id is "<session id>.ending".
type EndingBody struct {
	Type      string            `json:"type"`
	Timestamp time.Time         `json:"timestamp"`
	Event     string            `json:"event"`
	Session   *sessiond.Session `json:"session"`
}

// EndingHook returns an ending hook that posts each ending session to s.
// The engine bounds it with its dispose timeout: the retries happen
// within it.
func EndingHook(s *Sender) func(context.Context, *sessiond.Session) error {
	return func(ctx context.Context, sess *sessiond.Session) error {
		body, err := json.Marshal(EndingBody{Type: "session.ending", Timestamp: s.now().UTC(), Event: "ending", Session: sess})
		if err != nil {
			return err
		}
		return s.Send(ctx, Message{ID: sess.ID + ".ending", Body: body})
	}
}
