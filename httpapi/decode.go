package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
)

// MaxBody is the largest request body accepted, in bytes.
const MaxBody = 64 << 10

// decodeJSON reads one JSON object from the body into dst. Unknown fields,
// trailing data, oversized bodies and type mismatches are invalid_argument
// errors that name what is wrong.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	return DecodeJSON(http.MaxBytesReader(w, r.Body, MaxBody), dst)
}

// DecodeJSON is decodeJSON on any reader; exported for the fuzz tests.
func DecodeJSON(body io.Reader, dst any) error {
	b, err := io.ReadAll(body)
	if err != nil {
		return jsonError(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			return unknownField(b, reflect.TypeOf(dst))
		}
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return jsonError(err)
		}
		return sessiond.Errorf(sessiond.CodeInvalidArgument, "body", "must hold one JSON object and nothing after it")
	}
	return nil
}

// unknownField finds the first key in body that t does not have, and names
// it by its path ("device.colour"). It runs only when decoding failed.
func unknownField(body []byte, t reflect.Type) error {
	field, key := "body", ""
	var walk func(dec *json.Decoder, t reflect.Type, path string) bool
	walk = func(dec *json.Decoder, t reflect.Type, path string) bool {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch tok {
		case json.Delim('{'):
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return false
				}
				name, _ := k.(string)
				ft, ok := jsonField(t, name)
				if !ok {
					field, key = strings.TrimPrefix(path+"."+name, "."), name
					if name == "" {
						field = strings.TrimPrefix(path, ".")
						if field == "" {
							field = "body"
						}
					}
					return true
				}
				if walk(dec, ft, path+"."+name) {
					return true
				}
			}
			_, _ = dec.Token() // '}'
		case json.Delim('['):
			for dec.More() {
				if walk(dec, nil, path) {
					return true
				}
			}
			_, _ = dec.Token() // ']'
		}
		return false
	}
	walk(json.NewDecoder(bytes.NewReader(body)), t, "")
	return sessiond.Errorf(sessiond.CodeInvalidArgument, field, "unknown field %q", key)
}

// jsonField returns the type of the struct field that the JSON key name
// decodes into (matching as encoding/json does, without regard to case).
// Anything that is not a struct takes any key.
func jsonField(t reflect.Type, name string) (reflect.Type, bool) {
	if t == nil || t.Kind() != reflect.Struct {
		return nil, true
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		if strings.EqualFold(tag, name) {
			return f.Type, true
		}
	}
	return nil, false
}

func jsonError(err error) error {
	var (
		syntax  *json.SyntaxError
		typ     *json.UnmarshalTypeError
		tooBig  *http.MaxBytesError
		invalid = sessiond.CodeInvalidArgument
	)
	switch {
	case errors.Is(err, io.EOF):
		return sessiond.Errorf(invalid, "body", "a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return sessiond.Errorf(invalid, "body", "truncated JSON")
	case errors.As(err, &tooBig):
		return sessiond.Errorf(invalid, "body", "larger than %d bytes", tooBig.Limit)
	case errors.As(err, &syntax):
		return sessiond.Errorf(invalid, "body", "malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return sessiond.Errorf(invalid, "body", "must be a JSON object")
		}
		return sessiond.Errorf(invalid, typ.Field, "must be a JSON %s", jsonKind(typ.Type.Kind().String()))
	}
	var se *sessiond.Error
	if errors.As(err, &se) {
		return se
	}
	return sessiond.Errorf(invalid, "body", "%v", err)
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "string"
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array"
	case "bool":
		return "boolean"
	}
	return "number"
}

// parseDuration parses a Go duration string ("90s", "1h30m") for field; ""
// is zero.
func parseDuration(field, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, sessiond.Errorf(sessiond.CodeInvalidArgument, field, "not a duration like \"90s\" or \"1h30m\" (%q)", v)
	}
	if d < 0 {
		return 0, sessiond.Errorf(sessiond.CodeInvalidArgument, field, "must not be negative")
	}
	return d, nil
}

// CreateRequest is the body of POST /v1/sessions.
type CreateRequest struct {
	ID          string           `json:"id,omitempty"`
	Subject     string           `json:"subject"`
	Device      *sessiond.Device `json:"device,omitempty"`
	Metadata    json.RawMessage  `json:"metadata,omitempty"`
	Policy      string           `json:"policy,omitempty"`
	TTL         string           `json:"ttl,omitempty"`
	IdleTimeout string           `json:"idle_timeout,omitempty"`
}

// toEngine checks the durations and converts the request.
func (c *CreateRequest) toEngine() (sessiond.CreateRequest, error) {
	ttl, err := parseDuration("ttl", c.TTL)
	if err != nil {
		return sessiond.CreateRequest{}, err
	}
	idle, err := parseDuration("idle_timeout", c.IdleTimeout)
	if err != nil {
		return sessiond.CreateRequest{}, err
	}
	req := sessiond.CreateRequest{
		ID: c.ID, Subject: c.Subject, Metadata: c.Metadata, Policy: c.Policy,
		Override: sessiond.Overrides{TTL: ttl, IdleTimeout: idle},
	}
	if c.Device != nil {
		req.Device = *c.Device
	}
	return req, nil
}

// CreateResponse is the body of a 201 from POST /v1/sessions.
type CreateResponse struct {
	ID      string            `json:"id"`
	Token   string            `json:"token"`
	Session *sessiond.Session `json:"session"`
	Evicted []string          `json:"evicted,omitempty"`
}

// ValidateRequest is the body of POST /v1/sessions/validate.
type ValidateRequest struct {
	Token  string           `json:"token"`
	Device *sessiond.Device `json:"device,omitempty"`
}

// ValidateResponse is the body of a 200 from validate and rotate. Token is
// set when the call issued a new token; the client must use it from now on.
type ValidateResponse struct {
	Session *sessiond.Session `json:"session"`
	Token   string            `json:"token,omitempty"`
}

// AppendJSON encodes the response as encoding/json would, directly: it is
// the answer to every validation.
func (r ValidateResponse) AppendJSON(b []byte) []byte {
	b = append(b, `{"session":`...)
	b = r.Session.AppendJSON(b)
	if r.Token != "" { // tokens are base64url: nothing to escape
		b = append(b, `,"token":"`...)
		b = append(b, r.Token...)
		b = append(b, '"')
	}
	return append(b, '}')
}

// ListResponse is the body of session lists.
type ListResponse struct {
	Sessions   []*sessiond.Session `json:"sessions"`
	NextCursor string              `json:"next_cursor,omitempty"`
}

// RevokeSubjectResponse is the body of DELETE /v1/subjects/{subject}/sessions.
type RevokeSubjectResponse struct {
	Revoked int `json:"revoked"`
}

// StatsResponse is the body of GET /v1/stats.
type StatsResponse struct {
	Sessions    map[string]int  `json:"sessions"` // by state
	Total       int             `json:"total"`
	Subjects    int             `json:"subjects"` // with a live session
	Connections ConnectionStats `json:"connections"`
	Scheduled   int             `json:"scheduled"` // deadlines held by this node
	Uptime      string          `json:"uptime"`
	Version     string          `json:"version"`
	// WebSocket holds this node's WebSocket counts (ws.Stats) when the
	// edge is on.
	WebSocket any `json:"websocket,omitempty"`
}

// ConnectionStats count the live sessions' connections.
type ConnectionStats struct {
	Total  int            `json:"total"`
	ByKind map[string]int `json:"by_kind"`
}

// ConnectionRequest is the body of POST /v1/sessions/{id}/connections.
type ConnectionRequest struct {
	Kind      string `json:"kind"`
	ClientIP  string `json:"client_ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

// ConnectionResponse is the body of a 201 from POST
// /v1/sessions/{id}/connections and of a 200 from a heartbeat.
type ConnectionResponse struct {
	Connection sessiond.Connection `json:"connection"`
	// HeartbeatInterval is how often to send heartbeats; the connection is
	// lost after HeartbeatTimeout without one.
	HeartbeatInterval string `json:"heartbeat_interval"`
	HeartbeatTimeout  string `json:"heartbeat_timeout"`
}

// ConnectionsResponse is the body of GET /v1/sessions/{id}/connections.
type ConnectionsResponse struct {
	Connections []sessiond.Connection `json:"connections"`
}

// appender is a body that encodes itself without reflection.
type appender interface{ AppendJSON([]byte) []byte }

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b []byte
	if a, ok := v.(appender); ok {
		b = a.AppendJSON(make([]byte, 0, 512))
	} else {
		var err error
		if b, err = json.Marshal(v); err != nil {
			status = http.StatusInternalServerError
			b = fmt.Appendf(nil, `{"error":{"code":"internal","message":%q}}`, err.Error())
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n')) //nolint:gosec // G705: JSON, served as application/json; a client that left is not ours to handle
}
