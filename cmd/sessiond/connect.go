package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/jwt"
)

// cmdConnect holds a WebSocket to a session, like wscat: it prints each
// state change and each message from the server until interrupted or
// stopped for good. It signs its own credential with the configured HS256
// secret, renewing it for every reconnect and refresh.
func cmdConnect(fs *flag.FlagSet) action {
	subject := fs.String("subject", "", "connect as `SUBJECT`; required")
	device := fs.String("device", "", "find or create the subject's session for device `ID` (none: the default device)")
	sessionToken := fs.String("session-token", "", "attach to the session of `TOKEN` instead (from POST /v1/sessions)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of each credential signed")
	return func(ctx context.Context, in *input) error {
		if len(in.args) > 0 || *subject == "" || (*device != "" && *sessionToken != "") {
			return usageError{"connect takes --subject S and at most one of --device ID or --session-token T"}
		}
		return connect(ctx, in, *subject, *device, *sessionToken, *ttl)
	}
}

func connect(ctx context.Context, in *input, subject, device, sessionToken string, ttl time.Duration) error {
	stdout := in.stdout
	cfg, err := in.config()
	if err != nil {
		return err
	}
	if cfg.JWT.Secret == "" {
		return usageError{"connect signs its credentials with the HS256 secret: --jwt-secret or SESSIOND_JWT_SECRET"}
	}
	secret := []byte(cfg.JWT.Secret)
	say := func(format string, args ...any) {
		fmt.Fprintf(stdout, time.Now().Format("15:04:05 ")+format+"\n", args...)
	}
	url, hc, err := cfg.serverURL("ws")
	if err != nil {
		return err
	}
	c, err := client.DialWS(ctx, client.WSConfig{
		URL: url, HTTPClient: hc,
		Token: func(context.Context) (string, error) {
			return jwt.Sign(secret, subject, ttl, time.Now())
		},
		DeviceID: device, SessionToken: sessionToken,
		OnState: func(ev client.WSEvent) {
			switch ev.State {
			case client.WSConnected:
				say("connected: session %s, connection %s, resumed %v", ev.SessionID, ev.ConnectionID, ev.Resumed)
			case client.WSDisconnected:
				say("disconnected: close code %d (%s)", ev.Code, ev.Reason)
			case client.WSReconnecting:
				if ev.Err != nil {
					say("reconnecting in %v (attempt %d): %v", ev.Wait.Round(time.Millisecond), ev.Attempt, reason(ev.Err))
				} else {
					say("reconnecting in %v (attempt %d)", ev.Wait.Round(time.Millisecond), ev.Attempt)
				}
			case client.WSStopped:
				say("stopped: %v", ev.Err)
			}
		},
	})
	if err != nil {
		return err
	}
	if tok := c.SessionToken(); tok != "" {
		say("session token (shown once): %s", tok)
	}
	for {
		select {
		case msg, ok := <-c.Messages():
			if !ok {
				<-c.Done()
				if err := c.Err(); !errors.Is(err, client.ErrClosed) {
					return err
				}
				return nil
			}
			say("message: %s", msg)
		case <-ctx.Done():
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return c.Close(cctx)
		}
	}
}
