package httpapi_test

// Tests of strict request bodies: a body that encoding/json would have to
// guess at (invalid UTF-8, lone surrogate escapes, duplicate keys, keys
// that match a field only when case is ignored) is answered with 400
// invalid_argument naming the member, and changes nothing.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/wire"
)

// subjectSessions lists the live sessions of subject.
func (e *htEnv) subjectSessions(subject string) []htSession {
	e.t.Helper()
	r := e.send("GET", "/v1/subjects/"+url.PathEscape(subject)+"/sessions", "")
	htWantStatus(e.t, r, http.StatusOK)
	return htDecode[htList](e.t, r).Sessions
}

// stWantRefused wants a 400 invalid_argument naming field, whose message
// holds want.
func stWantRefused(t *testing.T, r htResp, field, want string) {
	t.Helper()
	htWantError(t, r, http.StatusBadRequest, sessiond.CodeInvalidArgument, field)
	if msg := htDecode[wire.ErrorBody](t, r).Error.Message; !strings.Contains(msg, want) {
		t.Errorf("got message %q, want it to say %q", msg, want)
	}
}

// "bob\xff" and "bob\xfe" were both the subject "bob\uFFFD": one person's
// sessions could be listed, limited and revoked with another's.
func TestCreateRefusesSubjectsThatAreNotUTF8AndCreatesNothing(t *testing.T) {
	e := htStart(t, nil)
	for _, body := range []string{"{\"subject\":\"bob\xff\"}", "{\"subject\":\"bob\xfe\"}"} {
		stWantRefused(t, e.send("POST", "/v1/sessions", body), "subject", "is not valid UTF-8")
	}
	if got := e.subjectSessions("bob\uFFFD"); len(got) != 0 {
		t.Errorf("subject bob\\uFFFD has sessions %v, want none", htIDs(got))
	}
	if st := e.stats(); st.Total != 0 {
		t.Errorf("refused creates stored %d sessions, want 0", st.Total)
	}

	// U+FFFD itself, sent as valid UTF-8 or escaped, is an ordinary
	// character: the listing above would have found it.
	a := e.create(`{"subject":"bob\ufffd"}`)
	b := e.create("{\"subject\":\"bob\xef\xbf\xbd\"}")
	if a.Session.Subject != "bob\uFFFD" {
		t.Errorf("got subject %q, want %q", a.Session.Subject, "bob\uFFFD")
	}
	htSameSet(t, "sessions of bob\\uFFFD", htIDs(e.subjectSessions("bob\uFFFD")), []string{a.ID, b.ID})
}

func TestCreateRefusesLoneSurrogateEscapes(t *testing.T) {
	e := htStart(t, nil)
	for _, tc := range []struct{ name, body, msg string }{
		{"high", `{"subject":"bob\ud800"}`, `has a lone surrogate escape \ud800`},
		{"low", `{"subject":"bob\udc00"}`, `has a lone surrogate escape \udc00`},
		{"pair reversed", `{"subject":"\ude00\ud83d"}`, `has a lone surrogate escape \ude00`},
		{"high then a letter", `{"subject":"\ud83dx"}`, `has a lone surrogate escape \ud83d`},
		{"in the device", `{"subject":"bob","device":{"name":"\udfff"}}`, `has a lone surrogate escape \udfff`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			field := "subject"
			if strings.Contains(tc.body, "device") {
				field = "device.name"
			}
			stWantRefused(t, e.in(t).send("POST", "/v1/sessions", tc.body), field, tc.msg)
		})
	}
	if st := e.stats(); st.Total != 0 {
		t.Errorf("refused creates stored %d sessions, want 0", st.Total)
	}
}

// A surrogate pair is one character, whether escaped or not.
func TestCreateAcceptsEscapedSurrogatePair(t *testing.T) {
	e := htStart(t, nil)
	escaped := e.create(`{"subject":"\ud83d\ude00","device":{"id":"\uD83D\uDE00"}}`)
	if escaped.Session.Subject != "😀" || escaped.Session.Device == nil || escaped.Session.Device.ID != "😀" {
		t.Errorf("got subject %q and device %+v, want 😀 for both", escaped.Session.Subject, escaped.Session.Device)
	}
	raw := e.createFor("😀")
	htSameSet(t, "sessions of 😀", htIDs(e.subjectSessions("😀")), []string{escaped.ID, raw.ID})
}

// Device binding compared "x\xff" and "x\xfe" as the same device.
func TestValidateRefusesDeviceIDsThatAreNotUTF8(t *testing.T) {
	e := htStart(t, nil)
	c := e.create(`{"subject":"alice","policy":"bound","device":{"id":"x\ufffd"}}`)

	for _, tc := range []struct{ name, body, field, msg string }{
		{"without a token", "{\"device\":{\"id\":\"x\xff\"}}", "device.id", "is not valid UTF-8"},
		{"invalid byte 0xff", "{\"token\":\"" + c.Token + "\",\"device\":{\"id\":\"x\xff\"}}", "device.id", "is not valid UTF-8"},
		{"invalid byte 0xfe", "{\"token\":\"" + c.Token + "\",\"device\":{\"id\":\"x\xfe\"}}", "device.id", "is not valid UTF-8"},
		{"lone surrogate", `{"token":"` + c.Token + `","device":{"id":"x\udfff"}}`, "device.id", `has a lone surrogate escape \udfff`},
		{"in the token", "{\"token\":\"" + c.Token + "\xff\"}", "token", "is not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stWantRefused(t, e.in(t).send("POST", "/v1/sessions/validate", tc.body), tc.field, tc.msg)
		})
	}
	// The refused calls did not touch the session; its own device works.
	if s := e.get(c.ID); s.State != "active" || s.Version != 1 || !s.LastActive.Equal(htEpoch) {
		t.Errorf("after refused validations: got state %q, version %d, last active %v; want active, 1, %v", s.State, s.Version, s.LastActive, htEpoch)
	}
	htWantStatus(t, e.send("POST", "/v1/sessions/validate", `{"token":"`+c.Token+`","device":{"id":"x\ufffd"}}`), http.StatusOK)
}

// encoding/json kept the last of two equal keys: {"subject":"a","subject":"b"}
// was a session for b.
func TestDuplicateKeysAre400(t *testing.T) {
	e := htStart(t, nil)
	tok := e.createFor("owner").Token
	for _, tc := range []struct{ name, path, body, field, key string }{
		{"subject", "/v1/sessions", `{"subject":"a","subject":"b"}`, "subject", "subject"},
		{"subject by escape", "/v1/sessions", `{"subject":"a","\u0073ubject":"b"}`, "subject", "subject"},
		{"device id", "/v1/sessions", `{"subject":"a","device":{"id":"d","id":"e"}}`, "device.id", "id"},
		{"metadata key", "/v1/sessions", `{"subject":"a","metadata":{"k":1,"k":2}}`, "metadata.k", "k"},
		{"nested metadata key", "/v1/sessions", `{"subject":"a","metadata":{"a":{"b":[],"b":{}}}}`, "metadata.a.b", "b"},
		{"metadata key in an array", "/v1/sessions", `{"subject":"a","metadata":{"l":[{},{"x":1,"x":1}]}}`, "metadata.l[1].x", "x"},
		{"token", "/v1/sessions/validate", `{"token":"` + tok + `","token":"` + tok + `"}`, "token", "token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stWantRefused(t, e.in(t).send("POST", tc.path, tc.body), tc.field, `duplicate key "`+tc.key+`"`)
		})
	}
	for _, subject := range []string{"a", "b"} {
		if got := e.subjectSessions(subject); len(got) != 0 {
			t.Errorf("subject %s has sessions %v, want none", subject, htIDs(got))
		}
	}
}

// encoding/json matched keys to fields without regard to case (and to
// Unicode folding: "ſ" is "s", "K", the Kelvin sign, is "k"), so
// {"subject":"a","SUBJECT":"b"} set one field twice.
func TestKeysMatchingAFieldOnlyWhenCaseIsIgnoredAre400(t *testing.T) {
	e := htStart(t, nil)
	c := e.createFor("owner")
	for _, tc := range []struct{ name, path, body, field string }{
		{"second key in capitals", "/v1/sessions", `{"subject":"a","SUBJECT":"b"}`, "SUBJECT"},
		{"first key in capitals", "/v1/sessions", `{"SUBJECT":"b","subject":"a"}`, "SUBJECT"},
		{"alone", "/v1/sessions", `{"Subject":"a"}`, "Subject"},
		{"long s", "/v1/sessions", `{"ſubject":"a"}`, "ſubject"},
		{"long s escaped", "/v1/sessions", `{"\u017fubject":"a"}`, "ſubject"},
		{"in the device", "/v1/sessions", `{"subject":"a","device":{"ID":"d"}}`, "device.ID"},
		{"ttl", "/v1/sessions", `{"subject":"a","TTL":"1m"}`, "TTL"},
		{"token", "/v1/sessions/validate", `{"Token":"` + c.Token + `"}`, "Token"},
		{"connection kind", "/v1/sessions/" + c.ID + "/connections", `{"KIND":"vnc"}`, "KIND"},
		{"Kelvin sign", "/v1/sessions/" + c.ID + "/connections", `{"\u212aind":"vnc"}`, "\u212aind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stWantRefused(t, e.in(t).send("POST", tc.path, tc.body), tc.field, "case-sensitive")
		})
	}
	for _, subject := range []string{"a", "b"} {
		if got := e.subjectSessions(subject); len(got) != 0 {
			t.Errorf("subject %s has sessions %v, want none", subject, htIDs(got))
		}
	}
	if got := e.conns(c.ID); len(got) != 0 {
		t.Errorf("refused connections registered %d, want 0", len(got))
	}
}

// Metadata is the application's JSON: its keys are not fields, and any
// strict JSON object is kept as sent.
func TestMetadataKeysDifferingInCaseAreKept(t *testing.T) {
	e := htStart(t, nil)
	meta := `{"k":1,"K":2,"Plan":"pro","plan":"\ud83d\ude00","a":{"k":1,"K":[{"k":1},{"k":2}]}}`
	got := e.create(`{"subject":"alice","metadata":` + meta + `}`).Session.Metadata
	var gotV, wantV any
	if err := json.Unmarshal(got, &gotV); err != nil {
		t.Fatalf("metadata %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(meta), &wantV); err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.Marshal(gotV)
	wantJSON, _ := json.Marshal(wantV)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("got metadata %s, want %s", got, meta)
	}
}

// Unknown keys are still named by their path, and the first problem in the
// body is the one reported.
func TestStrictErrorsNameTheFirstProblem(t *testing.T) {
	e := htStart(t, nil)
	for _, tc := range []struct{ name, body, field string }{
		{"duplicate before invalid UTF-8", "{\"subject\":\"a\",\"subject\":\"b\xff\"}", "subject"},
		{"invalid UTF-8 before an unknown field", "{\"device\":{\"id\":\"\xff\"},\"colour\":1}", "device.id"},
		{"unknown field before a duplicate", `{"colour":1,"subject":"a","subject":"b"}`, "colour"},
		{"case before a duplicate", `{"Subject":"a","ttl":"1m","ttl":"2m"}`, "Subject"},
		{"malformed after a duplicate", `{"subject":"a","subject":"b",}`, "subject"},
		{"malformed before a duplicate", `{"subject":"a",,"subject":"b"}`, "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			htWantError(t, e.in(t).send("POST", "/v1/sessions", tc.body), http.StatusBadRequest, sessiond.CodeInvalidArgument, tc.field)
		})
	}
	if st := e.stats(); st.Total != 0 {
		t.Errorf("refused creates stored %d sessions, want 0", st.Total)
	}
	// The listing helper above is right to expect nothing: a valid body
	// with the same subject does create one.
	c := e.createFor("a")
	if got := htIDs(e.subjectSessions("a")); !slices.Equal(got, []string{c.ID}) {
		t.Errorf("got sessions %v of a, want [%s]", got, c.ID)
	}
}
