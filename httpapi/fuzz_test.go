package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/httpapi"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/wire"
)

// fuzzTokenPlaceholder in a fuzzed body is replaced by the token of a live
// session, so that mutations around a real token reach the engine.
const fuzzTokenPlaceholder = "$TOKEN"

// fuzzWellFormedToken is a token with the right prefix, length and checksum
// that names no session: it passes parsing and fails the lookup.
func fuzzWellFormedToken() string {
	var raw [36]byte
	for i := range 32 {
		raw[i] = byte(i)
	}
	binary.BigEndian.PutUint32(raw[32:], crc32.Checksum(raw[:32], crc32.MakeTable(crc32.Castagnoli)))
	return "sd_" + base64.RawURLEncoding.EncodeToString(raw[:])
}

// fuzzSeeds are realistic and tricky bodies for both endpoints.
func fuzzSeeds() []string {
	return []string{
		``,
		` `,
		`{}`,
		`null`,
		`[]`,
		`"x"`,
		`0`,
		`true`,
		`{"subject":"alice"}`,
		`{"subject":"alice","device":{"id":"phone","type":"ios","name":"n","ip":"10.0.0.1","user_agent":"ua"},"metadata":{"plan":"pro"},"policy":"web","ttl":"30m","idle_timeout":"5m"}`,
		`{"id":"chosen:1","subject":"bob"}`,
		`{"subject":"alice","policy":"capped"}`,
		`{"subject":"alice","policy":"bound","device":{"id":"d"}}`,
		`{"subject":"alice","ttl":"-5m"}`,
		`{"subject":"alice","ttl":"9999999999999h"}`,
		`{"subject":"alice","ttl":"1ns"}`,
		`{"subject":"alice","idle_timeout":"1ns"}`,
		`{"subject":"alice","metadata":[1]}`,
		`{"subject":"alice","metadata":{"k":"` + "\xff\xfe" + `"}}`,
		`{"subject":"alice","metadata":{"a":{"b":{"c":[1,2,{"d":null}]}}}}`,
		`{"subject":"alice","metadata":null}`,
		`{"subject":"\u0000"}`,
		`{"subject":"` + "\xc3\x28" + `"}`,
		`{"subject":"alice","device":{"ip":"::ffff:1.2.3.4%eth0"}}`,
		`{"subject":"alice","device":{"id":1}}`,
		`{"subject":"alice","device":{"colour":"red"}}`,
		`{"subject":"alice","device":null}`,
		`{"":1}`,
		`{"a\"b":1}`,
		`{"Subject":"alice","SUBJECT":"bob"}`,
		`{"subject":"alice","subject":"bob"}`,
		`{"subject":"bob\ud800"}`,
		`{"subject":"\ud83d\ude00"}`,
		`{"subject":"\ude00\ud83d"}`,
		"{\"subject\":\"bob\xfe\"}",
		`{"subject":"alice","metadata":{"k":1,"k":2}}`,
		`{"subject":"alice","metadata":{"k":1,"K":2}}`,
		`{"subject":"alice","\u0073ubject":"bob"}`,
		`{"ſubject":"alice"}`,
		`{"subject":"alice","device":{"ID":"d"}}`,
		`{"token":"` + fuzzTokenPlaceholder + `","device":{"id":"x` + "\xff" + `"}}`,
		`{"Token":"` + fuzzTokenPlaceholder + `"}`,
		`{"subject":"alice"} {}`,
		`{"subject":"alice"} x`,
		`{"subject":"alice"`,
		`{"subject":1e999}`,
		`{"token":""}`,
		`{"token":"sd_"}`,
		`{"token":"` + fuzzWellFormedToken() + `"}`,
		`{"token":"` + fuzzTokenPlaceholder + `"}`,
		`{"token":"` + fuzzTokenPlaceholder + `","device":{"id":"other"}}`,
		`{"token":"` + fuzzTokenPlaceholder + `"}{"token":"` + fuzzTokenPlaceholder + `"}`,
		`{"token":["` + fuzzTokenPlaceholder + `"]}`,
		strings.Repeat("[", 20000),
		`{"subject":"` + strings.Repeat("a", httpapi.MaxBody) + `"}`,
	}
}

// checkDecodeError is what FuzzDecodeCreate and FuzzDecodeValidate assert:
// DecodeJSON fails only with a *sessiond.Error of code invalid_argument,
// and accepts only bodies that are valid UTF-8 (nothing it decoded was
// replaced by U+FFFD).
func checkDecodeError(t *testing.T, in []byte, err error) {
	t.Helper()
	if err == nil {
		if !utf8.Valid(in) {
			t.Fatalf("DecodeJSON(%q) accepted a body that is not valid UTF-8", in)
		}
		return
	}
	se, ok := err.(*sessiond.Error)
	if !ok {
		t.Fatalf("DecodeJSON(%q): got error %T %v, want a *sessiond.Error", in, err, err)
	}
	if se.Code != sessiond.CodeInvalidArgument {
		t.Fatalf("DecodeJSON(%q): got code %q, want %q (%v)", in, se.Code, sessiond.CodeInvalidArgument, se)
	}
}

func FuzzDecodeCreate(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var req wire.CreateRequest
		checkDecodeError(t, in, httpapi.DecodeJSON(bytes.NewReader(in), &req))
	})
}

func FuzzDecodeValidate(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var req wire.ValidateRequest
		checkDecodeError(t, in, httpapi.DecodeJSON(bytes.NewReader(in), &req))
	})
}

// FuzzHandlers POSTs arbitrary bodies to the create and validate endpoints
// of a real server: no body may cause a 5xx, every response is JSON, and
// every error response carries a code whose status is the one answered.
func FuzzHandlers(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	m, err := sessiond.New(sessiond.Config{Store: inmem.New(inmem.Options{}), Policies: htPolicies()})
	if err != nil {
		f.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { m.Close() })
	srv, err := httpapi.New(httpapi.Config{Manager: m, APIKey: htKey})
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()
	// A live session whose token replaces the placeholder, under a policy
	// that neither expires it nor rotates it while the fuzzer runs.
	live, err := m.Create(context.Background(), sessiond.CreateRequest{Subject: "fuzz", Policy: "plain"})
	if err != nil {
		f.Fatal(err)
	}
	if live.Session.ExpiresAt.Before(time.Now().Add(30 * time.Minute)) {
		f.Fatalf("the plain policy's ttl is too short for fuzzing: expires %v", live.Session.ExpiresAt)
	}

	f.Fuzz(func(t *testing.T, in []byte) {
		body := bytes.ReplaceAll(in, []byte(fuzzTokenPlaceholder), []byte(live.Token))
		for _, path := range []string{"/v1/sessions", "/v1/sessions/validate"} {
			req := httptest.NewRequest("POST", path, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+htKey)
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			out := rec.Body.Bytes()
			if rec.Code >= 500 {
				t.Fatalf("POST %s %q: got status %d, want no 5xx; body %s", path, body, rec.Code, out)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("POST %s %q: got Content-Type %q, want application/json", path, body, ct)
			}
			if !json.Valid(out) {
				t.Fatalf("POST %s %q: response is not valid JSON: %q", path, body, out)
			}
			if rec.Code < 400 {
				if want := map[string]int{"/v1/sessions": http.StatusCreated, "/v1/sessions/validate": http.StatusOK}[path]; rec.Code != want {
					t.Fatalf("POST %s %q: got status %d, want %d or an error", path, body, rec.Code, want)
				}
				continue
			}
			var eb wire.ErrorBody
			if err := json.Unmarshal(out, &eb); err != nil {
				t.Fatalf("POST %s %q: error body %s: %v", path, body, out, err)
			}
			if eb.Error.Code == "" || eb.Error.Message == "" {
				t.Fatalf("POST %s %q: got status %d with error %+v, want a code and a message", path, body, rec.Code, eb.Error)
			}
			if got := wire.Status(eb.Error.Code); got != rec.Code {
				t.Fatalf("POST %s %q: code %q means status %d, but got %d", path, body, eb.Error.Code, got, rec.Code)
			}
			if eb.Error.Code == sessiond.CodeInvalidArgument && rec.Code != http.StatusBadRequest {
				t.Fatalf("POST %s %q: invalid_argument answered with %d, want 400", path, body, rec.Code)
			}
		}
	})
}
