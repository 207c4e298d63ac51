package httpapi

// These tests keep docs/openapi.yaml in agreement with the server: its
// routes, their security, the error codes and statuses, and the wire form of
// the bodies. When one fails, fix whichever side is wrong; the message names
// what differs.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/sessiondtest"
	"github.com/sessiond/sessiond/wire"
)

const oaFile = "../docs/openapi.yaml"

// statusOf is the table from error code to HTTP status (wire/errors.go).
var statusOf = wire.Statuses()

// oaMethods are the operation keys of an OpenAPI path item.
var oaMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// oaDoc is the parsed document, as plain maps, slices and scalars.
type oaDoc struct {
	root map[string]any
}

// oaOp is one operation: the path item it is in and the operation itself.
type oaOp struct {
	key      string // "METHOD /path", as in Routes()
	path     string
	pathItem map[string]any
	op       map[string]any
}

func oaLoad(t *testing.T) *oaDoc {
	t.Helper()
	b, err := os.ReadFile(oaFile)
	if err != nil {
		t.Fatalf("reading the API document: %v", err)
	}
	var raw any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatalf("%s is not valid YAML: %v", oaFile, err)
	}
	root, ok := oaNormalize(raw).(map[string]any)
	if !ok {
		t.Fatalf("%s: the document is not a YAML mapping", oaFile)
	}
	if v, _ := root["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("%s: openapi is %q, want 3.1.x", oaFile, v)
	}
	return &oaDoc{root: root}
}

// oaNormalize turns every mapping into a map[string]any (YAML keys such as
// 200 may decode as ints).
func oaNormalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = oaNormalize(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[fmt.Sprint(k)] = oaNormalize(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = oaNormalize(e)
		}
		return out
	}
	return v
}

// get walks keys from v; nil if any step is missing.
func oaGet(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// resolve follows $ref (local references only) until it reaches an object
// without one, and returns it with the name of the last component it
// passed through ("" if v had no $ref).
func (d *oaDoc) resolve(t *testing.T, v any) (map[string]any, string) {
	t.Helper()
	name := ""
	for range 16 {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, name
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, name
		}
		ptr, ok := strings.CutPrefix(ref, "#/")
		if !ok {
			t.Fatalf("%s: $ref %q is not a local reference", oaFile, ref)
		}
		var keys []string
		for _, k := range strings.Split(ptr, "/") {
			keys = append(keys, strings.NewReplacer("~1", "/", "~0", "~").Replace(k))
		}
		name = keys[len(keys)-1]
		if v = oaGet(d.root, keys...); v == nil {
			t.Fatalf("%s: $ref %q points at nothing", oaFile, ref)
		}
	}
	t.Fatalf("%s: $ref chain too long (a cycle?) near %q", oaFile, name)
	return nil, ""
}

// schema returns components.schemas[name].
func (d *oaDoc) schema(t *testing.T, name string) map[string]any {
	t.Helper()
	s, _ := oaGet(d.root, "components", "schemas", name).(map[string]any)
	if s == nil {
		t.Fatalf("%s: components.schemas.%s is missing", oaFile, name)
	}
	s, _ = d.resolve(t, s)
	return s
}

// ops returns every operation of the document by "METHOD /path".
func (d *oaDoc) ops(t *testing.T) map[string]oaOp {
	t.Helper()
	paths, _ := d.root["paths"].(map[string]any)
	if len(paths) == 0 {
		t.Fatalf("%s: no paths", oaFile)
	}
	out := map[string]oaOp{}
	for path, item := range paths {
		pi, _ := d.resolve(t, item)
		for _, m := range oaMethods {
			if op, ok := pi[m].(map[string]any); ok {
				key := strings.ToUpper(m) + " " + path
				out[key] = oaOp{key: key, path: path, pathItem: pi, op: op}
			}
		}
	}
	return out
}

// oaDiff returns what is only in a and only in b, sorted.
func oaDiff(a, b []string) (onlyA, onlyB []string) {
	inA, inB := map[string]bool{}, map[string]bool{}
	for _, v := range a {
		inA[v] = true
	}
	for _, v := range b {
		inB[v] = true
	}
	for v := range inA {
		if !inB[v] {
			onlyA = append(onlyA, v)
		}
	}
	for v := range inB {
		if !inA[v] {
			onlyB = append(onlyB, v)
		}
	}
	slices.Sort(onlyA)
	slices.Sort(onlyB)
	return onlyA, onlyB
}

// oaSameSet fails the test with both differences if got and want differ as
// sets. what names the thing compared, gotName and wantName the two sides.
func oaSameSet(t *testing.T, what, gotName string, got []string, wantName string, want []string) {
	t.Helper()
	onlyGot, onlyWant := oaDiff(got, want)
	if len(onlyGot) > 0 {
		t.Errorf("%s: in %s but not in %s: %s", what, gotName, wantName, strings.Join(onlyGot, ", "))
	}
	if len(onlyWant) > 0 {
		t.Errorf("%s: in %s but not in %s: %s", what, wantName, gotName, strings.Join(onlyWant, ", "))
	}
}

func oaStrings(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, e := range list {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

// enum returns the enum of the schema v (after $ref).
func (d *oaDoc) enum(t *testing.T, where string, v any) []string {
	t.Helper()
	s, _ := d.resolve(t, v)
	if s == nil || s["enum"] == nil {
		t.Fatalf("%s: %s has no enum", oaFile, where)
	}
	return oaStrings(s["enum"])
}

func oaRouteKeys() []string {
	var keys []string
	for _, rt := range Routes() {
		keys = append(keys, rt.Method+" "+rt.Path)
	}
	return keys
}

// TestOpenAPIRoutes checks that the document has exactly the routes the
// server serves.
func TestOpenAPIRoutes(t *testing.T) {
	d := oaLoad(t)
	documented := slices.Collect(maps.Keys(d.ops(t)))
	onlyServed, onlyDocumented := oaDiff(oaRouteKeys(), documented)
	for _, r := range onlyServed {
		t.Errorf("route %q is served (httpapi.Routes) but not documented in %s", r, oaFile)
	}
	for _, r := range onlyDocumented {
		t.Errorf("route %q is documented in %s but not served (httpapi.Routes)", r, oaFile)
	}
}

// TestOpenAPISecurity checks that admin routes, and only they, need the API
// key as a bearer token.
func TestOpenAPISecurity(t *testing.T) {
	d := oaLoad(t)
	ops := d.ops(t)
	schemes, _ := oaGet(d.root, "components", "securitySchemes").(map[string]any)
	isBearer := func(name string) bool {
		s, _ := d.resolve(t, schemes[name])
		typ, _ := s["type"].(string)
		scheme, _ := s["scheme"].(string)
		return typ == "http" && strings.EqualFold(scheme, "bearer")
	}
	for _, rt := range Routes() {
		key := rt.Method + " " + rt.Path
		op, ok := ops[key]
		if !ok {
			continue // TestOpenAPIRoutes reports it
		}
		sec, ok := op.op["security"]
		if !ok {
			sec = d.root["security"] // the document's default applies
		}
		reqs, _ := sec.([]any)
		_, has401 := oaResponses(op)["401"]
		if !rt.Admin {
			if len(reqs) != 0 {
				t.Errorf("%s needs no API key, but the document requires %v (want security: [])", key, sec)
			}
			if has401 {
				t.Errorf("%s needs no API key, but the document lists a 401 response", key)
			}
			continue
		}
		if len(reqs) != 1 {
			t.Errorf("%s needs the API key: want exactly one security requirement (the bearer scheme), document has %v", key, sec)
			continue
		}
		req, _ := reqs[0].(map[string]any)
		if len(req) != 1 {
			t.Errorf("%s needs the API key: want one bearer scheme in its security requirement, document has %v", key, req)
			continue
		}
		for name, scopes := range req {
			if !isBearer(name) {
				t.Errorf("%s: security scheme %q is not components.securitySchemes.%s with type http, scheme bearer", key, name, name)
			}
			if len(oaStrings(scopes)) != 0 {
				t.Errorf("%s: security scheme %q lists scopes %v; bearer schemes take none", key, name, scopes)
			}
		}
		if !has401 {
			t.Errorf("%s needs the API key, but the document lists no 401 response for it", key)
		}
	}
}

// TestOpenAPIPathParameters checks that each {wildcard} of a path is a
// documented, required path parameter, and that no other path parameter is
// documented.
func TestOpenAPIPathParameters(t *testing.T) {
	d := oaLoad(t)
	wildcard := regexp.MustCompile(`\{([^}]+)\}`)
	for key, op := range d.ops(t) {
		var inPath []string
		for _, m := range wildcard.FindAllStringSubmatch(op.path, -1) {
			inPath = append(inPath, m[1])
		}
		var documented []string
		params := append(slices.Clone(oaList(op.pathItem["parameters"])), oaList(op.op["parameters"])...)
		for _, p := range params {
			pm, _ := d.resolve(t, p)
			if pm["in"] != "path" {
				continue
			}
			name := fmt.Sprint(pm["name"])
			documented = append(documented, name)
			if pm["required"] != true {
				t.Errorf("%s: path parameter %q must have required: true", key, name)
			}
		}
		oaSameSet(t, key+" path parameters", "the path", inPath, "its documented parameters", documented)
	}
}

func oaList(v any) []any {
	l, _ := v.([]any)
	return l
}

func oaResponses(op oaOp) map[string]any {
	r, _ := op.op["responses"].(map[string]any)
	return r
}

// oaStatuses is every status some code maps to.
func oaStatuses() map[int][]sessiond.Code {
	out := map[int][]sessiond.Code{}
	for code, status := range statusOf {
		out[status] = append(out[status], code)
	}
	return out
}

// TestOpenAPIErrorCodes checks the error code enum and the table of codes in
// the description against statusOf, and that every documented error
// response has a status some code maps to, the Error body, and examples
// whose code maps to that status.
func TestOpenAPIErrorCodes(t *testing.T) {
	d := oaLoad(t)
	var codes []string
	for c := range statusOf {
		codes = append(codes, string(c))
	}

	detail, _ := d.resolve(t, oaGet(d.schema(t, "Error"), "properties", "error"))
	if detail == nil {
		t.Fatalf("%s: components.schemas.Error has no properties.error", oaFile)
	}
	enum := d.enum(t, "Error.error.code", oaGet(detail, "properties", "code"))
	oaSameSet(t, "error codes", "the document's code enum", enum, "statusOf (wire/errors.go)", codes)

	// The table in info.description: one row "| `code` | status | ... |" per code.
	desc, _ := oaGet(d.root, "info", "description").(string)
	row := regexp.MustCompile("(?m)^\\|\\s*`([a-z_]+)`\\s*\\|\\s*(\\d{3})\\s*\\|")
	table := map[string]int{}
	for _, m := range row.FindAllStringSubmatch(desc, -1) {
		table[m[1]], _ = strconv.Atoi(m[2])
	}
	oaSameSet(t, "the code table in info.description", "the table", slices.Collect(maps.Keys(table)), "statusOf (wire/errors.go)", codes)
	for code, status := range statusOf {
		if got, ok := table[string(code)]; ok && got != status {
			t.Errorf("the code table in info.description gives %s status %d; statusOf maps it to %d", code, got, status)
		}
	}

	statuses := oaStatuses()
	checkError := func(where string, status int, resp any) {
		r, _ := d.resolve(t, resp)
		media, _ := oaGet(r, "content", "application/json").(map[string]any)
		if media == nil {
			t.Errorf("%s: error response %d has no application/json content", where, status)
			return
		}
		if _, name := d.resolve(t, media["schema"]); name != "Error" {
			t.Errorf("%s: error response %d: schema is %v, want $ref to #/components/schemas/Error", where, status, media["schema"])
		}
		if ex, ok := media["example"]; ok {
			code := sessiond.Code(fmt.Sprint(oaGet(ex, "error", "code")))
			if got, known := statusOf[code]; !known {
				t.Errorf("%s: error response %d: example code %q is not in statusOf", where, status, code)
			} else if got != status {
				t.Errorf("%s: error response %d: example code %q maps to %d, not %d", where, status, code, got, status)
			}
		}
	}
	for key, op := range d.ops(t) {
		success := false
		for s, resp := range oaResponses(op) {
			status, err := strconv.Atoi(s)
			if err != nil {
				t.Errorf("%s: response key %q is not a status code (ranges such as 4XX hide which errors can occur)", key, s)
				continue
			}
			if status < 400 {
				success = success || status < 300
				continue
			}
			if _, ok := statuses[status]; !ok {
				t.Errorf("%s: documents error status %d, but no code in statusOf maps to it", key, status)
			}
			checkError(key, status, resp)
		}
		if !success {
			t.Errorf("%s: documents no 2xx response", key)
		}
	}
	// Shared responses, also those operations do not reference (405, 404).
	responses, _ := oaGet(d.root, "components", "responses").(map[string]any)
	for name, resp := range responses {
		ex := oaGet(resp, "content", "application/json", "example", "error", "code")
		if ex == nil {
			continue
		}
		if _, known := statusOf[sessiond.Code(fmt.Sprint(ex))]; !known {
			t.Errorf("components.responses.%s: example code %q is not in statusOf", name, ex)
		}
	}
}

// oaFullSession has every field set, so that MarshalJSON writes every key.
func oaFullSession() *sessiond.Session {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	return &sessiond.Session{
		ID: "s1", Subject: "u1",
		Device:   sessiond.Device{ID: "d", Type: "browser", Name: "n", IP: "203.0.113.7", UserAgent: "ua"},
		Metadata: json.RawMessage(`{"a":1}`), Policy: "web",
		State: sessiond.StateEnded, EndReason: sessiond.EndRevoked,
		CreatedAt: now, LastActive: now, ExpiresAt: now.Add(time.Hour), IdleTimeout: time.Minute,
		RotatedAt: now, EndedAt: now, Version: 3, Generation: 1,
		TokenHash: sessiond.TokenHash{1}, PrevTokenHash: sessiond.TokenHash{2}, PrevTokenUntil: now,
		DisconnectedAt: now, StateSince: now, Cycle: 2,
		ConnCount: 1, RetiredTokens: []sessiond.TokenHash{{3}}, // token hashes never leave the process
	}
}

// oaFullConnection has every field set.
func oaFullConnection() sessiond.Connection {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	return sessiond.Connection{ID: "abcdefghijklmnop.s1", Kind: "websocket", Node: "node-1", ClientIP: "203.0.113.7",
		UserAgent: "ua", ConnectedAt: now, LastHeartbeat: now.Add(time.Second)}
}

// oaFullStats has every field set. TestOpenAPIWebSocketStatsSchema
// (connections_test.go) checks the WebSocketStats schema of its WebSocket.
func oaFullStats() wire.StatsResponse {
	return wire.StatsResponse{Sessions: map[string]int{"active": 1}, Total: 1, Subjects: 1,
		Connections: wire.ConnectionStats{Total: 1, ByKind: map[string]int{"vnc": 1}}, Scheduled: 1,
		Uptime: "1s", Version: "v", WebSocket: &wire.WebSocketStats{Open: 1}}
}

// oaFullEvent has every field set.
func oaFullEvent() sessiond.Event {
	return sessiond.Event{Partition: 3, Seq: 1, Type: sessiond.EventResumed, SessionID: "s1", Subject: "u1", Time: time.Now(),
		State: sessiond.StateActive, Reason: sessiond.EndRevoked, Version: 2, Generation: 1,
		Connection: "c2", Replaced: []string{"c1"}, Conn: oaFullConnDetail()}
}

// oaFullConnDetail has every field set: a closed connection.
func oaFullConnDetail() *sessiond.ConnDetail {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	return &sessiond.ConnDetail{Kind: "websocket", Node: "node-1", ClientIP: "203.0.113.7", UserAgent: "ua", OpenedAt: now,
		ClosedAt: now.Add(time.Minute), CloseCode: 1000, CloseReason: sessiond.ClosedByClient}
}

// TestOpenAPIFullValuesAreFull keeps the builders above honest: a field
// added to Session, Event, Connection or StatsResponse must be set there,
// so that the schema checks see its JSON key.
func TestOpenAPIFullValuesAreFull(t *testing.T) {
	for name, v := range map[string]any{"Session": *oaFullSession(), "Event": oaFullEvent(), "ConnDetail": *oaFullConnDetail(),
		"Connection": oaFullConnection(), "StatsResponse": oaFullStats()} {
		rv := reflect.ValueOf(v)
		for i := range rv.NumField() {
			if rv.Field(i).IsZero() {
				t.Errorf("%s.%s is zero in the full %s the schema checks use: set it (and document its JSON key)", name, rv.Type().Field(i).Name, name)
			}
		}
	}
}

// oaJSON marshals v and returns it decoded as a JSON object.
func oaJSON(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshaling %T: %v", v, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%T does not marshal to a JSON object: %s", v, b)
	}
	return m
}

// checkSchema compares the properties of schema name with the keys of the
// JSON object v marshals to (which must have every field set), and the JSON
// type of each value with the property's type.
func (d *oaDoc) checkSchema(t *testing.T, name string, v any) {
	t.Helper()
	s := d.schema(t, name)
	props, _ := s["properties"].(map[string]any)
	obj := oaJSON(t, v)
	oaSameSet(t, "schema "+name+" properties", "the document", slices.Collect(maps.Keys(props)), fmt.Sprintf("the JSON of %T", v), slices.Collect(maps.Keys(obj)))
	for _, r := range oaStrings(s["required"]) {
		if _, ok := props[r]; !ok {
			t.Errorf("schema %s: required property %q is not among its properties", name, r)
		}
	}
	for key, val := range obj {
		ps, _ := d.resolve(t, props[key])
		if ps == nil {
			continue
		}
		types := oaStrings(ps["type"])
		if typ, ok := ps["type"].(string); ok {
			types = []string{typ}
		}
		if len(types) == 0 {
			continue
		}
		if got := oaJSONType(val); !slices.Contains(types, got) && (got != "integer" || !slices.Contains(types, "number")) {
			t.Errorf("schema %s: property %q is documented as %v, but %T writes a JSON %s (%v)", name, key, types, v, got, val)
		}
	}
}

func oaJSONType(v any) string {
	switch v := v.(type) {
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64:
		if v == float64(int64(v)) {
			return "integer"
		}
		return "number"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// TestOpenAPISessionSchema checks the Session schema against
// (*sessiond.Session).MarshalJSON, and its state and end_reason enums
// against sessiond.States and sessiond.EndReasons.
func TestOpenAPISessionSchema(t *testing.T) {
	d := oaLoad(t)
	d.checkSchema(t, "Session", oaFullSession())

	// required: the keys even a bare session has.
	bare := oaJSON(t, &sessiond.Session{ID: "s1", Subject: "u1", Policy: "p", State: sessiond.StateActive})
	oaSameSet(t, "schema Session required", "the document", oaStrings(d.schema(t, "Session")["required"]),
		"the keys of a session with only id, subject, policy and state set", slices.Collect(maps.Keys(bare)))

	props := oaGet(d.schema(t, "Session"), "properties")
	var states, reasons []string
	for _, s := range sessiond.States {
		states = append(states, s.String())
	}
	for _, r := range sessiond.EndReasons {
		reasons = append(reasons, string(r))
	}
	oaSameSet(t, "Session.state enum", "the document", d.enum(t, "Session.state", oaGet(props, "state")), "sessiond.States", states)
	oaSameSet(t, "Session.end_reason enum", "the document", d.enum(t, "Session.end_reason", oaGet(props, "end_reason")), "sessiond.EndReasons", reasons)
	eventProps := oaGet(d.schema(t, "Event"), "properties")
	oaSameSet(t, "Event.state enum", "the document", d.enum(t, "Event.state", oaGet(eventProps, "state")), "sessiond.States", states)
	oaSameSet(t, "Event.reason enum", "the document", d.enum(t, "Event.reason", oaGet(eventProps, "reason")), "sessiond.EndReasons", reasons)
}

// TestOpenAPIBodySchemas checks the other body schemas against the JSON of
// the Go types the server reads and writes.
func TestOpenAPIBodySchemas(t *testing.T) {
	d := oaLoad(t)
	full := oaFullSession()
	dev := &full.Device
	for name, v := range map[string]any{
		"Device":     dev,
		"Event":      oaFullEvent(),
		"ConnDetail": oaFullConnDetail(),
		"CreateRequest": wire.CreateRequest{ID: "s1", Subject: "u1", Device: dev, Metadata: json.RawMessage(`{"a":1}`),
			Policy: "web", TTL: "1h", IdleTimeout: "1m"},
		"CreateResponse":        wire.CreateResponse{ID: "s1", Token: "t", Session: full, Evicted: []string{"s0"}},
		"ValidateRequest":       wire.ValidateRequest{Token: "t", Device: dev, Wake: true},
		"TokenResponse":         wire.ValidateResponse{Session: full, Token: "t"},
		"ListResponse":          wire.ListResponse{Sessions: []*sessiond.Session{full}, NextCursor: "c"},
		"RevokeSubjectResponse": wire.RevokeSubjectResponse{Revoked: 1},
		"StatsResponse":         oaFullStats(),
		"ConnectionStats":       oaFullStats().Connections,
		"Connection":            oaFullConnection(),
		"ConnectionRequest":     wire.ConnectionRequest{Kind: "vnc", ClientIP: "203.0.113.7", UserAgent: "ua"},
		"ConnectionResponse":    wire.ConnectionResponse{Connection: oaFullConnection(), State: sessiond.StateWaking, HeartbeatInterval: "25s", HeartbeatTimeout: "1m0s"},
		"ConnectionsResponse":   wire.ConnectionsResponse{Connections: []sessiond.Connection{oaFullConnection()}},
		"Error":                 wire.ErrorBody{Error: wire.ErrorDetail{Code: sessiond.CodeInvalidArgument, Message: "m", Field: "f"}},
		"ErrorDetail":           wire.ErrorDetail{Code: sessiond.CodeInvalidArgument, Message: "m", Field: "f"},
	} {
		d.checkSchema(t, name, v)
	}
	var closeReasons []string
	for _, r := range sessiond.CloseReasons {
		closeReasons = append(closeReasons, string(r))
	}
	detailProps := oaGet(d.schema(t, "ConnDetail"), "properties")
	oaSameSet(t, "ConnDetail.close_reason enum", "the document", d.enum(t, "ConnDetail.close_reason", oaGet(detailProps, "close_reason")), "sessiond.CloseReasons", closeReasons)
	// The server rejects unknown fields in request bodies; so must the schemas.
	for _, name := range []string{"CreateRequest", "ValidateRequest", "Device", "ConnectionRequest"} {
		if d.schema(t, name)["additionalProperties"] != false {
			t.Errorf("schema %s: the server rejects unknown fields, so it needs additionalProperties: false", name)
		}
	}
}

// TestOpenAPIServerResponses runs the server and checks that what each route
// answers, for success and for typical errors, is documented for that route:
// the status, the content type, and the top-level keys of JSON bodies.
func TestOpenAPIServerResponses(t *testing.T) {
	d := oaLoad(t)
	ops := d.ops(t)
	m, err := sessiond.New(sessiond.Config{
		Store: inmem.New(inmem.Options{}),
		Policies: []sessiond.Policy{{Name: "web", TTL: time.Hour, IdleTimeout: 10 * time.Minute, RotationGrace: time.Second,
			MaxPerSubject: 1, OnLimit: sessiond.LimitReject, MaxConnections: 1, DisconnectGrace: time.Minute}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	const key = "test-key"
	admin := 0
	for _, rt := range Routes() {
		if rt.Admin {
			admin++
		}
	}
	// One failed API key attempt per admin route is allowed; the next is
	// refused with 429 until the manual clock moves past the window.
	clock := sessiondtest.NewManualClock(time.Now())
	s, err := New(Config{Manager: m, APIKey: key, AuthFailureLimit: admin, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	exercised := map[string]bool{}
	last := "" // the request of the last call, for want's message
	call := func(ctx context.Context, route, path, body string, auth bool) *httptest.ResponseRecorder {
		t.Helper()
		method, _, _ := strings.Cut(route, " ")
		req := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
		if auth {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		exercised[route] = true
		last = method + " " + path

		op, ok := ops[route]
		if !ok {
			t.Errorf("%s is not documented", route)
			return rec
		}
		resp, ok := oaResponses(op)[strconv.Itoa(rec.Code)]
		if !ok {
			t.Errorf("%s %s answered %d, which the document does not list for %s (body %s)", method, path, rec.Code, route, rec.Body)
			return rec
		}
		r, _ := d.resolve(t, resp)
		content, _ := r["content"].(map[string]any)
		ctype, _, _ := mime.ParseMediaType(rec.Header().Get("Content-Type"))
		switch {
		case len(content) == 0 && rec.Body.Len() > 0:
			t.Errorf("%s %s answered %d with a body, but the document lists no content", method, path, rec.Code)
		case len(content) > 0 && content[ctype] == nil:
			t.Errorf("%s %s answered %d with Content-Type %q, but the document lists %v", method, path, rec.Code, ctype, slices.Collect(maps.Keys(content)))
		case ctype == "application/json":
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Errorf("%s %s: body is not a JSON object: %s", method, path, rec.Body)
				break
			}
			schema, _ := d.resolve(t, oaGet(content[ctype], "schema"))
			props, _ := schema["properties"].(map[string]any)
			for k := range got {
				if _, ok := props[k]; !ok {
					t.Errorf("%s %s answered %d with key %q, which its documented schema lacks", method, path, rec.Code, k)
				}
			}
			for _, k := range oaStrings(schema["required"]) {
				if _, ok := got[k]; !ok {
					t.Errorf("%s %s answered %d without the required key %q", method, path, rec.Code, k)
				}
			}
		}
		headers, _ := r["headers"].(map[string]any)
		for h := range headers {
			if rec.Header().Get(h) == "" {
				t.Errorf("%s %s answered %d without the documented header %s", method, path, rec.Code, h)
			}
		}
		return rec
	}
	bg := t.Context()
	want := func(rec *httptest.ResponseRecorder, status int) {
		t.Helper()
		if rec.Code != status {
			t.Fatalf("%s answered %d, want %d: %s", last, rec.Code, status, rec.Body)
		}
	}

	// Unauthenticated, every admin route: 401.
	for _, rt := range Routes() {
		if rt.Admin {
			path := strings.NewReplacer("{id}", "s1", "{subject}", "u1").Replace(rt.Path)
			want(call(bg, rt.Method+" "+rt.Path, path, "", false), http.StatusUnauthorized)
		}
	}
	// Then every admin route, even with the key: 429.
	for _, rt := range Routes() {
		if rt.Admin {
			path := strings.NewReplacer("{id}", "s1", "{subject}", "u1").Replace(rt.Path)
			want(call(bg, rt.Method+" "+rt.Path, path, "", true), http.StatusTooManyRequests)
		}
	}
	clock.Advance(DefaultAuthFailureWindow)

	rec := call(bg, "POST /v1/sessions", "/v1/sessions", `{"subject":"u1","device":{"id":"d"},"metadata":{"a":1},"ttl":"30m"}`, true)
	want(rec, http.StatusCreated)
	var created wire.CreateResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil {
		t.Fatal(err)
	}
	id, token := created.ID, created.Token
	want(call(bg, "POST /v1/sessions", "/v1/sessions", `{"subject":"u1"}`, true), http.StatusConflict)               // limit_reached
	want(call(bg, "POST /v1/sessions", "/v1/sessions", `{"subject":"u2","id":"`+id+`"}`, true), http.StatusConflict) // session_exists
	want(call(bg, "POST /v1/sessions", "/v1/sessions", `{"subject":"u2","ttl":"2h"}`, true), http.StatusBadRequest)
	want(call(bg, "POST /v1/sessions", "/v1/sessions", `{"subject":"u2","nope":1}`, true), http.StatusBadRequest)

	want(call(bg, "GET /v1/sessions", "/v1/sessions?limit=1&state=active&subject=u1", "", true), http.StatusOK)
	want(call(bg, "GET /v1/sessions", "/v1/sessions?limit=0", "", true), http.StatusBadRequest)
	want(call(bg, "GET /v1/sessions", "/v1/sessions?cursor=bogus", "", true), http.StatusBadRequest)

	want(call(bg, "POST /v1/sessions/validate", "/v1/sessions/validate", `{"token":"`+token+`"}`, true), http.StatusOK)
	want(call(bg, "POST /v1/sessions/validate", "/v1/sessions/validate", `{"token":""}`, true), http.StatusBadRequest)
	want(call(bg, "POST /v1/sessions/validate", "/v1/sessions/validate", `{"token":"x"}`, true), http.StatusNotFound) // malformed: as unknown
	unknown, _ := sessiond.NewToken("no-such-session")
	want(call(bg, "POST /v1/sessions/validate", "/v1/sessions/validate", `{"token":"`+unknown+`"}`, true), http.StatusNotFound)

	want(call(bg, "GET /v1/sessions/{id}", "/v1/sessions/"+id, "", true), http.StatusOK)
	want(call(bg, "GET /v1/sessions/{id}", "/v1/sessions/bad%20id", "", true), http.StatusBadRequest)
	want(call(bg, "GET /v1/sessions/{id}", "/v1/sessions/nope", "", true), http.StatusNotFound)

	rec = call(bg, "POST /v1/sessions/{id}/rotate", "/v1/sessions/"+id+"/rotate", "", true)
	want(rec, http.StatusOK)
	var rotated wire.ValidateResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &rotated); err != nil || rotated.Token == "" {
		t.Fatalf("rotate answered no token: %s", rec.Body)
	}
	want(call(bg, "POST /v1/sessions/{id}/rotate", "/v1/sessions/nope/rotate", "", true), http.StatusNotFound)

	want(call(bg, "GET /v1/subjects/{subject}/sessions", "/v1/subjects/u1/sessions", "", true), http.StatusOK)

	const addConn = "POST /v1/sessions/{id}/connections"
	rec = call(bg, addConn, "/v1/sessions/"+id+"/connections", `{"kind":"vnc","client_ip":"203.0.113.7","user_agent":"ua"}`, true)
	want(rec, http.StatusCreated)
	var conn wire.ConnectionResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &conn); err != nil || conn.Connection.ID == "" {
		t.Fatalf("registering a connection answered no connection id: %s", rec.Body)
	}
	cid := conn.Connection.ID
	want(call(bg, addConn, "/v1/sessions/"+id+"/connections", `{"kind":"http"}`, true), http.StatusConflict) // too_many_connections
	want(call(bg, addConn, "/v1/sessions/"+id+"/connections", `{"kind":"websocket"}`, true), http.StatusBadRequest)
	want(call(bg, addConn, "/v1/sessions/nope/connections", `{"kind":"vnc"}`, true), http.StatusNotFound)
	want(call(bg, "GET /v1/sessions/{id}/connections", "/v1/sessions/"+id+"/connections", "", true), http.StatusOK)
	want(call(bg, "GET /v1/sessions/{id}/connections", "/v1/sessions/bad%20id/connections", "", true), http.StatusBadRequest)
	want(call(bg, "GET /v1/sessions/{id}/connections", "/v1/sessions/nope/connections", "", true), http.StatusNotFound)
	want(call(bg, "GET /v1/stats", "/v1/stats", "", true), http.StatusOK) // with a connection counted
	want(call(bg, "POST /v1/connections/{id}/heartbeat", "/v1/connections/"+cid+"/heartbeat", "", true), http.StatusOK)
	want(call(bg, "POST /v1/connections/{id}/heartbeat", "/v1/connections/nope/heartbeat", "", true), http.StatusBadRequest)
	want(call(bg, "POST /v1/connections/{id}/heartbeat", "/v1/connections/abcdefghijklmnop.nope/heartbeat", "", true), http.StatusNotFound)
	want(call(bg, "DELETE /v1/connections/{id}", "/v1/connections/"+cid, "", true), http.StatusNoContent)
	want(call(bg, "DELETE /v1/connections/{id}", "/v1/connections/"+cid, "", true), http.StatusNoContent) // idempotent
	want(call(bg, "DELETE /v1/connections/{id}", "/v1/connections/nope", "", true), http.StatusBadRequest)
	want(call(bg, "POST /v1/connections/{id}/heartbeat", "/v1/connections/"+cid+"/heartbeat", "", true), http.StatusNotFound) // deleted

	gone, cancel := context.WithCancel(bg)
	cancel() // the stream ends at once
	rec = call(gone, "GET /v1/events", "/v1/events?after=0", "", true)
	want(rec, http.StatusOK)
	if !strings.HasPrefix(rec.Body.String(), ":") {
		t.Errorf("GET /v1/events: stream does not start with a comment line: %q", rec.Body)
	}
	want(call(bg, "GET /v1/events", "/v1/events?after=x", "", true), http.StatusBadRequest)

	want(call(bg, "DELETE /v1/sessions/{id}", "/v1/sessions/"+id, "", true), http.StatusNoContent)
	want(call(bg, "DELETE /v1/sessions/{id}", "/v1/sessions/"+id, "", true), http.StatusNoContent) // idempotent
	want(call(bg, "DELETE /v1/sessions/{id}", "/v1/sessions/nope", "", true), http.StatusNotFound)
	want(call(bg, "POST /v1/sessions/validate", "/v1/sessions/validate", `{"token":"`+rotated.Token+`"}`, true), http.StatusGone)
	want(call(bg, "POST /v1/sessions/{id}/rotate", "/v1/sessions/"+id+"/rotate", "", true), http.StatusGone)
	want(call(bg, addConn, "/v1/sessions/"+id+"/connections", `{"kind":"vnc"}`, true), http.StatusGone)
	want(call(bg, "POST /v1/connections/{id}/heartbeat", "/v1/connections/"+cid+"/heartbeat", "", true), http.StatusGone)
	want(call(bg, "DELETE /v1/subjects/{subject}/sessions", "/v1/subjects/u1/sessions", "", true), http.StatusOK)
	want(call(bg, "DELETE /v1/subjects/{subject}/sessions", "/v1/subjects/"+strings.Repeat("x", 300)+"/sessions", "", true), http.StatusBadRequest)

	want(call(bg, "GET /healthz", "/healthz", "", false), http.StatusOK)
	doc := call(bg, "GET /v1/openapi.yaml", "/v1/openapi.yaml", "", false)
	want(doc, http.StatusOK)
	if !strings.HasPrefix(doc.Body.String(), "openapi: ") {
		t.Errorf("GET /v1/openapi.yaml: %.80q, want the document", doc.Body.String())
	}
	want(call(bg, "GET /readyz", "/readyz", "", false), http.StatusServiceUnavailable)
	s.SetReady(true)
	want(call(bg, "GET /readyz", "/readyz", "", false), http.StatusOK)
	want(call(bg, "GET /metrics", "/metrics", "", false), http.StatusNotFound) // no Metrics handler configured

	for _, r := range oaRouteKeys() {
		if !exercised[r] {
			t.Errorf("%s is not exercised by TestOpenAPIServerResponses; add a call for it", r)
		}
	}
}
