package httpapi

import (
	"bytes"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/wire"
)

// FuzzTokenOnly: the validation fast path accepts only bodies the general
// decoder accepts too, with the same token.
func FuzzTokenOnly(f *testing.F) {
	tok, _ := sessiond.NewToken("06h0abc")
	named, _ := sessiond.NewToken("sdk:conn-1.a_b~2")
	for _, b := range []string{
		`{"token":"` + named + `"}`,
		`{"token":"` + tok + `"}`, " {\"token\":\"" + tok + "\"}\n", `{"token":"a\"b"}`, `{"token":"\u0061"}`,
		`{"token":""}`, `{"token":"x","token":"y"}`, `{"token":"x"}{"token":"y"}`, `{"token":"sd_é"}`,
		`{"token":"` + tok + `","device":{"id":"d"}}`, `{"TOKEN":"x"}`,
	} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := tokenOnly(b)
		if !ok {
			return
		}
		var general wire.ValidateRequest
		if err := DecodeJSON(bytes.NewReader(b), &general); err != nil {
			t.Fatalf("fast path took %q, the decoder refuses it: %v", b, err)
		}
		if general.Token != fast || general.Device != nil {
			t.Fatalf("fast path read %q from %q, the decoder %+v", fast, b, general)
		}
	})
}

func TestTokenOnly(t *testing.T) {
	tok, _ := sessiond.NewToken("06h0abc")
	named, _ := sessiond.NewToken("sdk:conn-1.a_b~2") // a caller-chosen id, with every character one may have
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"token":"` + tok + `"}`, true},
		{`{"token":"` + named + `"}`, true},
		{"\n {\"token\":\"" + tok + "\"}\r\n", true},
		{`{"token":""}`, false},                  // the decoder says "is required"
		{`{"token":"sd_a\"b"}`, false},           // anything to unescape
		{`{"token":"sd_\u0061"}`, false},         // an escape
		{`{ "token":"` + tok + `"}`, false},      // another spelling: the decoder reads it
		{`{"token":"` + tok + `","x":1}`, false}, // another key
	} {
		if _, ok := tokenOnly([]byte(tc.body)); ok != tc.ok {
			t.Errorf("tokenOnly(%q) = %v, want %v", tc.body, ok, tc.ok)
		}
	}
}
