package httpapi

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/strictjson"
)

// MaxBody is the largest request body accepted, in bytes.
const MaxBody = 64 << 10

// decodeJSON reads one JSON object from the body into dst. Invalid UTF-8,
// lone surrogate escapes, duplicate keys, unknown fields (also those that
// match a field only when case is ignored), trailing data, oversized bodies
// and type mismatches are invalid_argument errors that name what is wrong.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	return DecodeJSON(http.MaxBytesReader(w, r.Body, MaxBody), dst)
}

// DecodeJSON is decodeJSON on any reader; exported for the fuzz tests.
//
// encoding/json alone would guess at what an ambiguous body means: it
// replaces invalid UTF-8 and lone surrogates with U+FFFD ("bob\xff" and
// "bob\xfe" would both be the subject "bob\uFFFD"), keeps the last of two
// equal keys, and matches keys to fields without regard to case
// ({"subject":"a","SUBJECT":"b"} sets one field twice). Such bodies are
// refused before they are decoded.
func DecodeJSON(body io.Reader, dst any) error {
	b, err := io.ReadAll(body)
	if err != nil {
		return jsonError(err)
	}
	if len(bytes.Trim(b, " \t\r\n")) == 0 {
		return sessiond.Errorf(sessiond.CodeInvalidArgument, "body", "a JSON object is required")
	}
	if err := strictjson.Walk(b, reflect.TypeOf(dst), knownField); err != nil {
		return jsonError(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // knownField refused them already; in case it missed one
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	return nil
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// knownField is DecodeJSON's strictjson.Walk function: ctx is the
// reflect.Type that the object holding key decodes into (nil for one that
// takes anything), and the result is the type of key's value. It refuses a
// key that the struct does not have exactly, including one that
// encoding/json would match to a field by ignoring case.
func knownField(ctx any, key []byte) (any, error) {
	t, _ := ctx.(reflect.Type)
	for t != nil { // to the type of the object: the elements of a list
		if pt := reflect.PointerTo(t); pt.Implements(unmarshalerType) || pt.Implements(textUnmarshalerType) {
			return nil, nil // decodes itself
		}
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			t = t.Elem()
			continue
		case reflect.Map:
			return t.Elem(), nil
		case reflect.Struct:
			ft, exact := jsonField(t, key)
			if exact {
				return ft, nil
			}
			if ft != nil {
				return nil, fmt.Errorf("unknown field %q (names are case-sensitive)", key)
			}
			return nil, fmt.Errorf("unknown field %q", key)
		}
		return nil, nil
	}
	return nil, nil
}

// jsonField returns the type of the field of struct t that the JSON key
// name decodes into, and whether name is exactly the field's name: if it is
// not, the type is of a field that encoding/json would match by ignoring
// case, or nil.
func jsonField(t reflect.Type, name []byte) (reflect.Type, bool) {
	var folded reflect.Type
	var search func(t reflect.Type) reflect.Type
	search = func(t reflect.Type) reflect.Type {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			tag, _, _ = strings.Cut(tag, ",")
			if f.Anonymous && tag == "" { // an embedded struct's fields are the struct's
				et := f.Type
				if et.Kind() == reflect.Pointer {
					et = et.Elem()
				}
				if et.Kind() == reflect.Struct {
					if ft := search(et); ft != nil {
						return ft
					}
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if tag == "" {
				tag = f.Name
			}
			if tag == string(name) {
				return f.Type
			}
			if folded == nil && bytes.EqualFold([]byte(tag), name) {
				folded = f.Type
			}
		}
		return nil
	}
	if ft := search(t); ft != nil {
		return ft, true
	}
	return folded, false
}

func jsonError(err error) error {
	var (
		strict  *strictjson.Error
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
	case errors.As(err, &strict):
		field := strict.Path
		if field == "" {
			field = "body"
		}
		return sessiond.Errorf(invalid, field, "%s", strict.Msg)
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
