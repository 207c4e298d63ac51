package wire_test

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/wire"
)

// closeCodes is every named close code with its reason text and whether a
// client reconnects after it.
var closeCodes = []struct {
	code      wire.CloseCode
	reason    string
	reconnect bool
}{
	{wire.CloseNormal, "normal closure", true},
	{wire.CloseGoingAway, "server shutting down", true},
	{wire.CloseUnsupportedData, "binary frames are not supported", false},
	{wire.CloseAbnormal, "abnormal closure", true},
	{wire.ClosePolicyViolation, "message rate exceeded", false},
	{wire.CloseMessageTooBig, "message too big", false},
	{wire.CloseInternalError, "internal error", true},
	{wire.CloseReconnect, "reconnect", true},
	{wire.CloseCredentialExpired, "credential expired", true},
	{wire.CloseHeartbeatTimeout, "heartbeat timeout", true},
	{wire.CloseWakeFailed, "wake failed", true},
	{wire.CloseSessionRevoked, "session revoked", false},
	{wire.CloseSessionExpired, "session expired", false},
	{wire.CloseReplaced, "replaced by a newer connection", false},
	{wire.CloseSessionEnded, "session ended", false},
	{wire.CloseUnauthorized, "unauthorized", false},
	{wire.CloseTooManyConnections, "too many connections", false},
	{wire.CloseBadRequest, "bad request", false},
}

func TestCloseCodes(t *testing.T) {
	for _, c := range closeCodes {
		if got := c.code.Reason(); got != c.reason {
			t.Errorf("%d: Reason %q, want %q", c.code, got, c.reason)
		}
		if got := c.code.Reconnect(); got != c.reconnect {
			t.Errorf("%d: Reconnect %v, want %v", c.code, got, c.reconnect)
		}
		if got, want := c.code.Error(), fmt.Sprintf("websocket closed with code %d (%s)", c.code, c.reason); got != want {
			t.Errorf("%d: Error %q, want %q", c.code, got, want)
		}
	}
	if got, want := wire.CloseCode(4321).Error(), "websocket closed with code 4321"; got != want {
		t.Errorf("an unnamed code: Error %q, want %q", got, want)
	}
	if got := wire.CloseCode(4321).Reason(); got != "" {
		t.Errorf("an unnamed code: Reason %q, want none", got)
	}
}

// TestCloseCodeReconnectRanges: 1000-1015 and 4000-4499 reconnect, except
// 1003, 1008 and 1009; everything else does not.
func TestCloseCodeReconnectRanges(t *testing.T) {
	for _, c := range []struct {
		code wire.CloseCode
		want bool
	}{
		{-1, false}, {0, false}, {999, false},
		{1000, true}, {1002, true}, {1003, false}, {1005, true}, {1006, true}, {1007, true},
		{1008, false}, {1009, false}, {1010, true}, {1015, true}, {1016, false},
		{2000, false}, {3000, false}, {3999, false},
		{4000, true}, {4250, true}, {4499, true},
		{4500, false}, {4750, false}, {4999, false},
		{5000, false}, {65535, false},
	} {
		if got := c.code.Reconnect(); got != c.want {
			t.Errorf("%d: Reconnect %v, want %v", c.code, got, c.want)
		}
	}
}

// TestCloseCodesDocumented checks the close code table of
// docs/protocol.md: every code the server sends has its row, every row
// has its constant, and the reconnect column is Reconnect.
func TestCloseCodesDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^\| (\d{4}) \| [^|]+ \| (yes|\*\*no\*\*) \|`)
	documented := map[wire.CloseCode]bool{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		n, _ := strconv.Atoi(m[1])
		code := wire.CloseCode(n)
		documented[code] = true
		if code.Reason() == "" {
			t.Errorf("docs/protocol.md documents close code %d, which has no constant", code)
		}
		if want := m[2] == "yes"; code.Reconnect() != want {
			t.Errorf("docs/protocol.md: close code %d reconnect %v; Reconnect says %v", code, want, code.Reconnect())
		}
	}
	for _, c := range closeCodes {
		if c.code != wire.CloseAbnormal && !documented[c.code] {
			t.Errorf("close code %d (%s) is not in the table of docs/protocol.md", c.code, c.reason)
		}
	}
}

func TestCloseCodeIsAnError(t *testing.T) {
	err := fmt.Errorf("stopped: %w", wire.CloseSessionRevoked)
	if !errors.Is(err, wire.CloseSessionRevoked) {
		t.Errorf("errors.Is(%v, CloseSessionRevoked) = false", err)
	}
	var code wire.CloseCode
	if !errors.As(err, &code) || code != wire.CloseSessionRevoked {
		t.Errorf("errors.As(%v) = %d, want %d", err, code, wire.CloseSessionRevoked)
	}
}

func TestCloseForReason(t *testing.T) {
	want := map[sessiond.EndReason]wire.CloseCode{
		sessiond.EndRevoked:      wire.CloseSessionRevoked,
		sessiond.EndExpired:      wire.CloseSessionExpired,
		sessiond.EndIdle:         wire.CloseSessionExpired,
		sessiond.EndGraceElapsed: wire.CloseSessionEnded,
		sessiond.EndRotatedReuse: wire.CloseSessionEnded,
		sessiond.EndEvicted:      wire.CloseSessionEnded,
		sessiond.EndShutdown:     wire.CloseSessionEnded,
	}
	for _, r := range sessiond.EndReasons {
		if got := wire.CloseForReason(r); got != want[r] {
			t.Errorf("CloseForReason(%s) = %d, want %d", r, got, want[r])
		}
	}
}

func TestCloseForError(t *testing.T) {
	for _, c := range []struct {
		err  error
		want wire.CloseCode
	}{
		{sessiond.ErrUnauthorized, wire.CloseUnauthorized},
		{sessiond.ErrSubjectMismatch, wire.CloseUnauthorized},
		{sessiond.ErrNotFound, wire.CloseUnauthorized},
		{sessiond.ErrDeviceMismatch, wire.CloseUnauthorized},
		{sessiond.ErrTokenReused, wire.CloseUnauthorized},
		{sessiond.Errorf(sessiond.CodeInvalidArgument, "token", "malformed"), wire.CloseUnauthorized},
		{sessiond.ErrExpired, wire.CloseSessionExpired},
		{sessiond.ErrEnded, wire.CloseSessionEnded},
		{sessiond.ErrTooManyConnections, wire.CloseTooManyConnections},
		{sessiond.ErrUnavailable, wire.CloseGoingAway},
		{sessiond.ErrRuntimeFailed, wire.CloseWakeFailed},
		{errors.New("disk on fire"), wire.CloseInternalError},
	} {
		if got := wire.CloseForError(c.err); got != c.want {
			t.Errorf("CloseForError(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}
