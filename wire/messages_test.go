package wire_test

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/wire"
)

// protocolJSON returns the JSON objects that docs/protocol.md shows, in
// json code blocks and in inline code (where a line break is a space, as
// Markdown renders it), compacted.
func protocolJSON(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, m := range regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		found = append(found, m[1])
	}
	for _, m := range regexp.MustCompile("`(\\{[^`]*\\})`").FindAllStringSubmatch(string(b), -1) {
		found = append(found, strings.ReplaceAll(m[1], "\n", " "))
	}
	out := map[string]bool{}
	for _, s := range found {
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(s)); err != nil {
			t.Errorf("docs/protocol.md shows JSON that does not parse: %s: %v", s, err)
			continue
		}
		out[buf.String()] = true
	}
	return out
}

// TestMessagesRoundTrip decodes each message as docs/protocol.md shows it
// into its type, refusing unknown fields, and encodes it back to the same
// JSON object.
func TestMessagesRoundTrip(t *testing.T) {
	shown := protocolJSON(t)
	expires := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		doc  string // as docs/protocol.md shows it
		want any    // a pointer to the value it decodes to
	}{
		{"connected", `{
  "type": "connected",
  "session_id": "06h0c3x1j2k4m5n6p7q8r9s0t1",
  "connection_id": "k2m4q7s5u2w3y5a7.06h0c3x1j2k4m5n6p7q8r9s0t1",
  "resumed": false,
  "state": "active",
  "heartbeat_interval_ms": 25000,
  "heartbeat_timeout_ms": 60000,
  "expires_at": "2026-11-22T10:00:00Z",
  "session_token": "sd_..."
}`, &wire.Connected{Type: wire.TypeConnected, SessionID: "06h0c3x1j2k4m5n6p7q8r9s0t1",
			ConnectionID: "k2m4q7s5u2w3y5a7.06h0c3x1j2k4m5n6p7q8r9s0t1", State: "active",
			HeartbeatIntervalMS: 25000, HeartbeatTimeoutMS: 60000, ExpiresAt: expires, SessionToken: "sd_..."}},
		{"refresh", `{"type": "refresh", "expires_at": "2026-11-22T10:00:00Z"}`,
			&wire.Refresh{Type: wire.TypeRefresh, ExpiresAt: expires}},
		{"refreshed", `{"type":"refreshed","expires_at":"2026-11-22T11:00:00Z"}`,
			&wire.Refreshed{Type: wire.TypeRefreshed, ExpiresAt: expires.Add(time.Hour)}},
		{"error", `{"type": "error", "code": "unknown_type", "message": "unknown message type \"hello\"", "re": "hello"}`,
			&wire.Error{Type: wire.TypeError, Code: wire.CodeUnknownType, Message: `unknown message type "hello"`, Re: "hello"}},
		{"pong", `{"type":"pong"}`, &wire.Envelope{Type: wire.TypePong}},
		{"ping", `{"type":"ping"}`, &wire.ClientMessage{Type: wire.TypePing}},
		{"client refresh", `{"type":"refresh","token":"<new jwt>"}`,
			&wire.ClientMessage{Type: wire.TypeRefresh, Token: "<new jwt>"}},
		{"attach", `{"type":"attach","session_token":"sd_..."}`,
			&wire.ClientMessage{Type: wire.TypeAttach, SessionToken: "sd_..."}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var doc bytes.Buffer
			if err := json.Compact(&doc, []byte(c.doc)); err != nil {
				t.Fatal(err)
			}
			if !shown[doc.String()] {
				t.Errorf("docs/protocol.md does not show %s", doc.String())
			}
			got := reflect.New(reflect.TypeOf(c.want).Elem()).Interface()
			dec := json.NewDecoder(strings.NewReader(c.doc))
			dec.DisallowUnknownFields()
			if err := dec.Decode(got); err != nil {
				t.Fatalf("decoding into %T: %v", got, err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("decoded %+v, want %+v", got, c.want)
			}
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			var again, want map[string]any
			if err := json.Unmarshal(b, &again); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(doc.Bytes(), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again, want) {
				t.Errorf("encoded %s, want %s", b, doc.String())
			}
		})
	}
}

// TestMessagesLeaveOutWhatIsNotSet: an ack without a credential expiry or
// a token, a refreshed without an expiry and an error that answers no type
// leave those keys out, as docs/protocol.md says.
func TestMessagesLeaveOutWhatIsNotSet(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{wire.Connected{Type: wire.TypeConnected, SessionID: "s", ConnectionID: "c", Resumed: true, State: "active",
			HeartbeatIntervalMS: 1, HeartbeatTimeoutMS: 2},
			`{"type":"connected","session_id":"s","connection_id":"c","resumed":true,"state":"active","heartbeat_interval_ms":1,"heartbeat_timeout_ms":2}`},
		{wire.Refreshed{Type: wire.TypeRefreshed, ExpiresAt: time.Time{}.UTC()}, `{"type":"refreshed"}`},
		{wire.Error{Type: wire.TypeError, Code: wire.CodeInvalidMessage, Message: "m"}, `{"type":"error","code":"invalid_message","message":"m"}`},
		{wire.Error{Type: wire.TypeError, Code: sessiond.CodeUnauthorized, Message: "m", Re: wire.TypeRefresh},
			`{"type":"error","code":"unauthorized","message":"m","re":"refresh"}`},
	} {
		b, err := json.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != c.want {
			t.Errorf("%T: got %s, want %s", c.v, b, c.want)
		}
	}
}
