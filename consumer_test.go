package sessiond

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCheckConsumer(t *testing.T) {
	for _, ok := range []string{"webhook:billing", "a", "A-b_c.d:e", strings.Repeat("x", MaxConsumerName)} {
		if err := CheckConsumer(ok); err != nil {
			t.Errorf("CheckConsumer(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("x", MaxConsumerName+1), "a b", "a{b}", "é", "a/b", "a\x00"} {
		if err := CheckConsumer(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("CheckConsumer(%q) = %v; want invalid_argument", bad, err)
		}
	}
}

func TestCheckConsumerCall(t *testing.T) {
	ok := func(name, owner string, c Cursor, ttl time.Duration, claim bool) error {
		return CheckConsumerCall(name, owner, c, 1, ttl, claim)
	}
	if err := ok("n", "o", CursorOf(3), time.Second, true); err != nil {
		t.Fatal(err)
	}
	if err := ok("n", "o", CursorOf(3), 0, false); err != nil {
		t.Fatalf("a commit that releases: %v", err)
	}
	for what, err := range map[string]error{
		"bad name":            ok("a b", "o", Cursor{}, time.Second, true),
		"no owner":            ok("n", "", Cursor{}, time.Second, true),
		"long owner":          ok("n", strings.Repeat("o", MaxConsumerOwner+1), Cursor{}, time.Second, true),
		"FromNow":             ok("n", "o", FromNow, time.Second, true),
		"another partition":   ok("n", "o", CursorOf(0, 4), time.Second, true),
		"claim without a ttl": ok("n", "o", Cursor{}, 0, true),
		"negative commit ttl": ok("n", "o", Cursor{}, -time.Second, false),
	} {
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v; want invalid_argument", what, err)
		}
	}
}

// EventTypes lists every EventType constant of event.go, in order: a type
// added there and not to the list could not be configured.
func TestEventTypesListsEveryType(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "event.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var consts []EventType
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			v := s.(*ast.ValueSpec)
			if id, ok := v.Type.(*ast.Ident); !ok || id.Name != "EventType" {
				continue
			}
			for _, val := range v.Values {
				if lit, ok := val.(*ast.BasicLit); ok {
					consts = append(consts, EventType(strings.Trim(lit.Value, `"`)))
				}
			}
		}
	}
	if len(consts) == 0 || !slices.Equal(consts, EventTypes) {
		t.Fatalf("EventTypes = %v; event.go declares %v", EventTypes, consts)
	}
}
