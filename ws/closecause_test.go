package ws

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/lxzan/gws"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/wire"
)

// gwsCode stands for gws's own close codes (its unexported StatusCode),
// which closeCause reads through their Uint16 method.
type gwsCode uint16

func (c gwsCode) Uint16() uint16 { return uint16(c) }
func (c gwsCode) Error() string  { return fmt.Sprint("gws: ", uint16(c)) }

// closeCause makes only causes the engine takes: whatever a client sends
// or a socket dies of, the detach is not refused (and retried forever).
func TestCloseCauses(t *testing.T) {
	for _, tc := range []struct {
		name string
		sent wire.CloseCode
		err  error
		want sessiond.CloseCause
	}{
		{"client 1000", 0, &gws.CloseError{Code: 1000}, sessiond.CloseCause{Reason: sessiond.ClosedByClient, Code: 1000}},
		{"client 4999", 0, &gws.CloseError{Code: 4999}, sessiond.CloseCause{Reason: sessiond.ClosedByClient, Code: 4999}},
		{"client without a status", 0, &gws.CloseError{}, sessiond.CloseCause{Reason: sessiond.ClosedByClient}},
		{"client with a code out of range", 0, &gws.CloseError{Code: 5000}, sessiond.CloseCause{Reason: sessiond.ClosedByClient}},
		{"gws over the read limit", 0, gwsCode(1009), sessiond.CloseCause{Reason: sessiond.ClosedProtocolError, Code: 1009}},
		{"gws with a code out of range", 0, gwsCode(7), sessiond.CloseCause{Reason: sessiond.ClosedLost, Code: 1006}},
		{"EOF", 0, io.EOF, sessiond.CloseCause{Reason: sessiond.ClosedLost, Code: 1006}},
		{"no error", 0, nil, sessiond.CloseCause{Reason: sessiond.ClosedLost, Code: 1006}},
		{"wrapped client close", 0, fmt.Errorf("read: %w", &gws.CloseError{Code: 1001}), sessiond.CloseCause{Reason: sessiond.ClosedByClient, Code: 1001}},
		{"sent wins", wire.CloseHeartbeatTimeout, &gws.CloseError{Code: 1000}, sessiond.CloseCause{Reason: sessiond.ClosedHeartbeatTimeout, Code: 4002}},
		{"sent internal error", wire.CloseInternalError, errors.New("x"), sessiond.CloseCause{Reason: sessiond.ClosedByServer, Code: 1011}},
		{"sent reconnect", wire.CloseReconnect, nil, sessiond.CloseCause{Reason: sessiond.ClosedByServer, Code: 4000}},
		{"sent revoked", wire.CloseSessionRevoked, nil, sessiond.CloseCause{Reason: sessiond.ClosedSessionEnded, Code: 4500}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := closeCause(tc.sent, tc.err); got != tc.want {
				t.Fatalf("closeCause(%d, %v) = %+v, want %+v", tc.sent, tc.err, got, tc.want)
			}
		})
	}
	// Every code the server sends maps to a reason the engine knows.
	for code := wire.CloseCode(1000); code <= 4999; code++ {
		if code.Reason() == "" {
			continue
		}
		if r := closeReason(code); !r.Valid() {
			t.Errorf("close code %d maps to %q, not a close reason", code, r)
		}
	}
}
