package httpapi_test

// Tests of bad input (bodies, path parameters, queries, headers): always
// 400 invalid_argument naming the field, never a 500.

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/httpapi"
)

func TestCreateRejectsBadBodies(t *testing.T) {
	e := htStart(t, nil)
	tooBig := `{"subject":"` + strings.Repeat("a", httpapi.MaxBody) + `"}`
	tooBig = tooBig[:httpapi.MaxBody+1]
	paddedTooBig := `{"subject":"alice"}` + strings.Repeat(" ", httpapi.MaxBody)
	paddedTooBig = paddedTooBig[:httpapi.MaxBody+1]

	for _, tc := range []struct {
		name, body, field string
	}{
		{"empty body", "", "body"},
		{"whitespace only", "  \n", "body"},
		{"malformed JSON", `{"subject": alice}`, "body"},
		{"truncated JSON", `{"subject":"alice"`, "body"},
		{"single quotes", `{'subject':'alice'}`, "body"},
		{"array instead of object", `[{"subject":"alice"}]`, "body"},
		{"string instead of object", `"alice"`, "body"},
		{"number instead of object", `42`, "body"},
		{"trailing garbage", `{"subject":"alice"} x`, "body"},
		{"second object", `{"subject":"alice"}{"subject":"bob"}`, "body"},
		{"trailing bracket", `{"subject":"alice"}]`, "body"},
		{"unknown top-level field", `{"subject":"alice","color":"red"}`, "color"},
		{"unknown field in device", `{"subject":"alice","device":{"id":"d","colour":"red"}}`, "device.colour"},
		{"unknown field with a quote in its name", `{"subject":"alice","a\"b":1}`, `a"b`},
		{"unknown empty key", `{"subject":"alice","":1}`, "body"},
		{"metadata not UTF-8", "{\"subject\":\"alice\",\"metadata\":{\"k\":\"\xff\xfe\"}}", "metadata.k"},
		{"subject is a number", `{"subject":5}`, "subject"},
		{"subject is an object", `{"subject":{}}`, "subject"},
		{"device is a string", `{"subject":"alice","device":"phone"}`, "device"},
		{"device id is a number", `{"subject":"alice","device":{"id":7}}`, "device.id"},
		{"ttl is a number", `{"subject":"alice","ttl":60}`, "ttl"},
		{"body over MaxBody", tooBig, "body"},
		{"object then padding over MaxBody", paddedTooBig, "body"},
		{"missing subject", `{}`, "subject"},
		{"null body", `null`, "body"},
		{"empty subject", `{"subject":""}`, "subject"},
		{"subject with control character", `{"subject":"al\u0000ice"}`, "subject"},
		{"subject too long", `{"subject":"` + strings.Repeat("s", sessiond.MaxSubjectLen+1) + `"}`, "subject"},
		{"ttl not a duration", `{"subject":"alice","ttl":"soon"}`, "ttl"},
		{"ttl negative", `{"subject":"alice","ttl":"-5m"}`, "ttl"},
		{"ttl above the policy's", `{"subject":"alice","ttl":"2h"}`, "ttl"},
		{"idle_timeout not a duration", `{"subject":"alice","idle_timeout":"a while"}`, "idle_timeout"},
		{"idle_timeout negative", `{"subject":"alice","idle_timeout":"-1s"}`, "idle_timeout"},
		{"idle_timeout above the policy's", `{"subject":"alice","idle_timeout":"1h"}`, "idle_timeout"},
		{"idle_timeout on a policy without one", `{"subject":"alice","policy":"plain","idle_timeout":"5m"}`, "idle_timeout"},
		{"unknown policy", `{"subject":"alice","policy":"gold"}`, "policy"},
		{"id with a space", `{"id":"a b","subject":"alice"}`, "id"},
		{"id with a slash", `{"id":"a/b","subject":"alice"}`, "id"},
		{"id too long", `{"id":"` + strings.Repeat("i", sessiond.MaxIDLen+1) + `","subject":"alice"}`, "id"},
		{"metadata is an array", `{"subject":"alice","metadata":[1,2]}`, "metadata"},
		{"metadata is a string", `{"subject":"alice","metadata":"x"}`, "metadata"},
		{"metadata too large", `{"subject":"alice","metadata":{"k":"` + strings.Repeat("m", sessiond.DefaultMaxMetadata) + `"}}`, "metadata"},
		{"device ip not an address", `{"subject":"alice","device":{"ip":"300.1.1.1"}}`, "device.ip"},
		{"device name too long", `{"subject":"alice","device":{"name":"` + strings.Repeat("n", 257) + `"}}`, "device.name"},
		{"bound policy without device id", `{"subject":"alice","policy":"bound"}`, "device.id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			r := e.send("POST", "/v1/sessions", tc.body)
			htWantError(t, r, http.StatusBadRequest, sessiond.CodeInvalidArgument, tc.field)
		})
	}
	if st := e.stats(); st.Total != 0 {
		t.Errorf("bad creates stored %d sessions, want 0", st.Total)
	}
}

func TestValidateRejectsBadBodies(t *testing.T) {
	e := htStart(t, nil)
	good := e.createFor("alice").Token
	flipped := []byte(good)
	if flipped[10] == 'A' {
		flipped[10] = 'B'
	} else {
		flipped[10] = 'A'
	}
	for _, tc := range []struct {
		name, body, field string
	}{
		{"empty body", "", "body"},
		{"malformed JSON", `{"token":`, "body"},
		{"array instead of object", `["` + good + `"]`, "body"},
		{"trailing garbage", `{"token":"` + good + `"}garbage`, "body"},
		{"unknown field", `{"token":"` + good + `","subject":"alice"}`, "subject"},
		{"unknown field in device", `{"token":"` + good + `","device":{"id":"d","serial":"x"}}`, "device.serial"},
		{"token is a number", `{"token":12345}`, "token"},
		{"device id is a boolean", `{"token":"` + good + `","device":{"id":true}}`, "device.id"},
		{"missing token", `{}`, "token"},
		{"empty token", `{"token":""}`, "token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			r := e.send("POST", "/v1/sessions/validate", tc.body)
			htWantError(t, r, http.StatusBadRequest, sessiond.CodeInvalidArgument, tc.field)
		})
	}
	// A malformed token (a cookie a client tampered with) gets the answer
	// of an unknown token; the checksum rejects it before any lookup.
	unknown, _ := sessiond.NewToken("no-such-session")
	for _, tc := range []struct{ name, token string }{
		{"unknown token", unknown},
		{"malformed token", "not-a-token"},
		{"token without prefix", "xx_" + good[3:]},
		{"truncated token", good[:len(good)-1]},
		{"token with bad checksum", string(flipped)},
		{"token with bad base64", "sd_" + strings.Repeat("!", 48) + good[51:]},
		{"token with another id", good[:52] + "x" + good[52:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			r := e.send("POST", "/v1/sessions/validate", `{"token":"`+tc.token+`"}`)
			htWantError(t, r, http.StatusNotFound, sessiond.CodeNotFound, "")
		})
	}
}

func TestBadSessionIDInPathIs400(t *testing.T) {
	e := htStart(t, nil)
	for _, id := range []struct{ name, escaped string }{
		{"space", "a%20b"},
		{"encoded slash", "a%2Fb"},
		{"non-ASCII", "caf%C3%A9"},
		{"percent sign", "100%25"},
		{"too long", strings.Repeat("x", sessiond.MaxIDLen+1)},
	} {
		for _, call := range []struct{ method, path string }{
			{"GET", "/v1/sessions/" + id.escaped},
			{"DELETE", "/v1/sessions/" + id.escaped},
			{"POST", "/v1/sessions/" + id.escaped + "/rotate"},
		} {
			t.Run(id.name+"/"+call.method+" "+call.path, func(t *testing.T) {
				e := e.in(t)
				htWantError(t, e.send(call.method, call.path, ""), http.StatusBadRequest, sessiond.CodeInvalidArgument, "id")
			})
		}
	}
}

func TestBadSubjectInPathIs400(t *testing.T) {
	e := htStart(t, nil)
	long := strings.Repeat("s", sessiond.MaxSubjectLen+1)
	for _, tc := range []struct{ name, method, path string }{
		{"control character", "GET", "/v1/subjects/a%01b/sessions"},
		{"control character revoke", "DELETE", "/v1/subjects/a%7Fb/sessions"},
		{"too long", "GET", "/v1/subjects/" + long + "/sessions"},
		{"too long revoke", "DELETE", "/v1/subjects/" + long + "/sessions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			htWantError(t, e.send(tc.method, tc.path, ""), http.StatusBadRequest, sessiond.CodeInvalidArgument, "subject")
		})
	}
}

func TestListRejectsBadQuery(t *testing.T) {
	e := htStart(t, nil)
	for _, tc := range []struct{ name, query, field string }{
		{"unknown state", "state=sleeping", "state"},
		{"state in capitals", "state=ACTIVE", "state"},
		{"limit zero", "limit=0", "limit"},
		{"limit negative", "limit=-3", "limit"},
		{"limit too large", "limit=1001", "limit"},
		{"limit not a number", "limit=ten", "limit"},
		{"limit fractional", "limit=2.5", "limit"},
		{"cursor not issued", "cursor=abc", "cursor"},
		{"cursor with bad base64", "cursor=c1.%21%21", "cursor"},
		{"cursor naming a bad id", "cursor=c1." + "YSBi", "cursor"}, // base64url("a b")
		{"subject with control character", "subject=a%00b", "subject"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			htWantError(t, e.send("GET", "/v1/sessions?"+tc.query, ""), http.StatusBadRequest, sessiond.CodeInvalidArgument, tc.field)
		})
	}
}

func TestEventsRejectsBadLastEventID(t *testing.T) {
	e := htStart(t, nil)
	for _, tc := range []struct {
		name, query, header, field string
	}{
		{"Last-Event-ID not a number", "", "seven", "Last-Event-ID"},
		{"Last-Event-ID negative", "", "-1", "Last-Event-ID"},
		{"Last-Event-ID too large", "", "18446744073709551616", "Last-Event-ID"},
		{"after not a number", "?after=x", "", "after"},
		{"after negative", "?after=-2", "", "after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			h := http.Header{"Authorization": {"Bearer " + htKey}}
			if tc.header != "" {
				h.Set("Last-Event-ID", tc.header)
			}
			htWantError(t, e.sendWith("GET", "/v1/events"+tc.query, "", h), http.StatusBadRequest, sessiond.CodeInvalidArgument, tc.field)
		})
	}
}
