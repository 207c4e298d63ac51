package sessiond_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

func TestTokens(t *testing.T) {
	a, ha := sessiond.NewToken()
	b, hb := sessiond.NewToken()
	if a == b || ha == hb || len(a) != sessiond.TokenLen || !strings.HasPrefix(a, "sd_") {
		t.Fatalf("tokens %q %q", a, b)
	}
	if h, err := sessiond.ParseToken(a); err != nil || h != ha {
		t.Fatalf("ParseToken(NewToken) = %v, %v", h, err)
	}
	for _, bad := range []string{"", "sd_", a[:len(a)-1], a + "x", "xx" + a[2:], a[:10] + "!" + a[11:]} {
		if _, err := sessiond.ParseToken(bad); sessiond.ErrorCode(err) != sessiond.CodeInvalidArgument {
			t.Errorf("ParseToken(%q) = %v, want invalid_argument", bad, err)
		}
	}
	// One flipped character fails the checksum.
	flipped := []byte(a)
	if flipped[20] == 'A' {
		flipped[20] = 'B'
	} else {
		flipped[20] = 'A'
	}
	if _, err := sessiond.ParseToken(string(flipped)); err == nil {
		t.Fatal("a mistyped token passed")
	}
}

func TestIDs(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b := sessiond.NewID(now), sessiond.NewID(now.Add(time.Millisecond))
	if len(a) != 26 || a >= b || !sessiond.ValidID(a) {
		t.Fatalf("ids %q %q: want 26 chars, sorted by time", a, b)
	}
	for _, bad := range []string{"", "a b", "a/b", strings.Repeat("x", 129), "é"} {
		if sessiond.ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
	if sessiond.LogID("x") == "x" || len(sessiond.LogID("x")) != 12 {
		t.Fatal("LogID must hash")
	}
}

// FuzzParseToken: any input either parses to a hash or fails with
// invalid_argument; never a panic, and only well-formed tokens parse.
func FuzzParseToken(f *testing.F) {
	tok, _ := sessiond.NewToken()
	for _, s := range []string{tok, "", "sd_", tok[:40], tok + "=", "sd_" + strings.Repeat("-", 48)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, err := sessiond.ParseToken(s)
		if err == nil && (len(s) != sessiond.TokenLen || !strings.HasPrefix(s, "sd_")) {
			t.Fatalf("accepted %q", s)
		}
		if err != nil && sessiond.ErrorCode(err) != sessiond.CodeInvalidArgument {
			t.Fatalf("ParseToken(%q) error code %q", s, sessiond.ErrorCode(err))
		}
	})
}
