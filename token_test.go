package sessiond_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/sessiondtest"
)

func TestTokens(t *testing.T) {
	a, ha := sessiond.NewToken("06h0a")
	b, hb := sessiond.NewToken("06h0a")
	if a == b || ha == hb || !strings.HasPrefix(a, "sd_") || !strings.HasSuffix(a, ".06h0a") || len(a) != 3+48+1+5 {
		t.Fatalf("tokens %q %q: want sd_, 48 characters, a dot and the session id", a, b)
	}
	if id, h, err := sessiond.ParseToken(a); err != nil || h != ha || id != "06h0a" {
		t.Fatalf("ParseToken(NewToken) = %q, %v, %v", id, h, err)
	}
	long := strings.Repeat("x", sessiond.MaxIDLen)
	if tok, _ := sessiond.NewToken(long); len(tok) != sessiond.MaxTokenLen {
		t.Fatalf("a token for the longest id is %d long, MaxTokenLen %d", len(tok), sessiond.MaxTokenLen)
	}
	for _, bad := range []string{"", "sd_", a[:len(a)-1], a + "x", "xx" + a[2:], a[:10] + "!" + a[11:],
		a[:51], a[:51] + ".", a[:51] + "x06h0a", a[:51] + ".06h0b", a[:51] + ".06 0a", a + "/"} {
		if _, _, err := sessiond.ParseToken(bad); sessiond.ErrorCode(err) != sessiond.CodeInvalidArgument {
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
	if _, _, err := sessiond.ParseToken(string(flipped)); err == nil {
		t.Fatal("a mistyped token passed")
	}
	// A token from before tokens carried their session's id parses, with
	// no id.
	legacy, lh := sessiondtest.LegacyToken()
	if id, h, err := sessiond.ParseToken(legacy); err != nil || id != "" || h != lh {
		t.Fatalf("ParseToken(a token without id) = %q, %v, %v", id, h, err)
	}
}

func TestIDs(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b := sessiond.NewID(now, "alice"), sessiond.NewID(now.Add(time.Millisecond), "bob")
	if len(a) != 26 || a >= b || !sessiond.ValidID(a) {
		t.Fatalf("ids %q %q: want 26 chars, sorted by time", a, b)
	}
	for subject, id := range map[string]string{"alice": a, "bob": b} {
		if shard, ok := sessiond.IDShard(id); !ok || shard != sessiond.SubjectShard(subject) {
			t.Errorf("IDShard(%q) = %d, %v; want %s's shard %d", id, shard, ok, subject, sessiond.SubjectShard(subject))
		}
	}
	if sessiond.SubjectShard("alice") == sessiond.SubjectShard("bob") {
		t.Error("alice and bob share a shard: the hash is not spreading")
	}
	for _, other := range []string{"", "contested", a[:25], a + "0", strings.ToUpper(a), a[:25] + "z"} {
		if _, ok := sessiond.IDShard(other); ok {
			t.Errorf("IDShard(%q) took it for an id of NewID's form", other)
		}
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
	tok, _ := sessiond.NewToken("06h0a")
	legacy, _ := sessiondtest.LegacyToken()
	for _, s := range []string{tok, legacy, "", "sd_", tok[:40], tok + "=", "sd_" + strings.Repeat("-", 48), legacy + ".", tok + "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, _, err := sessiond.ParseToken(s)
		if err == nil && (!strings.HasPrefix(s, "sd_") || len(s) > sessiond.MaxTokenLen ||
			id == "" && len(s) != 51 || id != "" && (!sessiond.ValidID(id) || s[51:] != "."+id)) {
			t.Fatalf("accepted %q (id %q)", s, id)
		}
		if err != nil && sessiond.ErrorCode(err) != sessiond.CodeInvalidArgument {
			t.Fatalf("ParseToken(%q) error code %q", s, sessiond.ErrorCode(err))
		}
	})
}
