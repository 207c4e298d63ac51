package wire_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/wire"
)

// The direct encoding of responses is what encoding/json writes.
func TestValidateResponseEncoding(t *testing.T) {
	tok, _ := sessiond.NewToken("s1")
	s := &sessiond.Session{ID: "s1", Subject: "a<b", Policy: "p", State: sessiond.StateActive,
		CreatedAt: time.Unix(1, 0), LastActive: time.Unix(2, 0), Metadata: []byte(`{"x":1}`)}
	for _, r := range []wire.ValidateResponse{{Session: s}, {Session: s, Token: tok}} {
		type plain wire.ValidateResponse // without the AppendJSON method
		want, _ := json.Marshal(plain(r))
		if got := r.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	}
}
