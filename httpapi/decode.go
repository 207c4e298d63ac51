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
	"sync"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/strictjson"
	"github.com/sessiond/sessiond/wire"
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

// decodeValidate reads a validation's body. Nearly every one is exactly
// {"token":"sd_..."}: that form is read without the general decoder (a
// validation is the server's hot path); any other body, which may carry a
// device or be wrong, goes through decodeJSON's checks.
func decodeValidate(w http.ResponseWriter, r *http.Request, dst *wire.ValidateRequest) error {
	buf := bodyPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 4<<10 {
			buf.Reset()
			bodyPool.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxBody)); err != nil {
		return jsonError(err)
	}
	if t, ok := tokenOnly(buf.Bytes()); ok {
		dst.Token = t
		return nil
	}
	return DecodeJSON(bytes.NewReader(buf.Bytes()), dst)
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// tokenOnly returns the token of a body that is exactly {"token":"T"},
// around it at most whitespace, T being made of the characters a token
// has (tokenChar): nothing in it to unescape, no other key, nothing
// ambiguous.
func tokenOnly(b []byte) (string, bool) {
	const pre, post = `{"token":"`, `"}`
	b = bytes.TrimSpace(b)
	if len(b) <= len(pre)+len(post) || !bytes.HasPrefix(b, []byte(pre)) || !bytes.HasSuffix(b, []byte(post)) {
		return "", false
	}
	t := b[len(pre) : len(b)-len(post)]
	for _, c := range t {
		if !tokenChar(c) {
			return "", false
		}
	}
	return string(t), true
}

// tokenChar reports whether c may appear in a session token: base64url,
// and the characters of the session id it carries (. : ~).
func tokenChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '-' || c == '.' || c == ':' || c == '~'
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
	if t := bytes.Trim(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		// null, a list, a string: encoding/json would take null for {}.
		return sessiond.Errorf(sessiond.CodeInvalidArgument, "body", "a JSON object is required")
	}
	if err := strictjson.Walk(b, reflect.TypeOf(dst), knownField); err != nil {
		return jsonError(err)
	}
	// Walk checked the syntax, that there is one value and nothing after
	// it, and every key against dst's fields: what is left is the types.
	if err := json.Unmarshal(b, dst); err != nil {
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

// createRequest checks the durations of a create request's body and
// converts it to the engine's request.
func createRequest(c *wire.CreateRequest) (sessiond.CreateRequest, error) {
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
