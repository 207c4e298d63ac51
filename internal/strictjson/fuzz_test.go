package strictjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sessiond/sessiond/internal/strictjson"
)

// member is one object member as it appears in the input, duplicates kept.
type member struct {
	key   string
	value any
}

// tokens decodes the next value from dec token by token, keeping every
// member of every object ([]member) in order. It also returns the value's
// nesting depth and whether an object in it has a key twice.
func tokens(dec *json.Decoder) (v any, depth int, dup bool, err error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, 0, false, err
	}
	switch tok {
	case json.Delim('['):
		var elems []any
		for dec.More() {
			e, d, du, err := tokens(dec)
			if err != nil {
				return nil, 0, false, err
			}
			elems = append(elems, e)
			depth, dup = max(depth, d), dup || du
		}
		_, err := dec.Token()
		return elems, depth + 1, dup, err
	case json.Delim('{'):
		members := []member{}
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, 0, false, err
			}
			key := k.(string)
			e, d, du, err := tokens(dec)
			if err != nil {
				return nil, 0, false, err
			}
			members = append(members, member{key, e})
			depth, dup = max(depth, d), dup || du || seen[key]
			seen[key] = true
		}
		_, err := dec.Token()
		return members, depth + 1, dup, err
	}
	return tok, 0, false, nil
}

// sameValue reports whether decoded, from encoding/json into any, holds
// exactly what stream, from tokens, holds: no member lost or merged.
func sameValue(decoded, stream any) error {
	switch s := stream.(type) {
	case []member:
		m, ok := decoded.(map[string]any)
		if !ok {
			return fmt.Errorf("decoded %T where the input has an object", decoded)
		}
		if len(m) != len(s) {
			return fmt.Errorf("decoded an object of %d members where the input has %d", len(m), len(s))
		}
		for _, mem := range s {
			v, ok := m[mem.key]
			if !ok {
				return fmt.Errorf("decoded object lacks the key %q", mem.key)
			}
			if err := sameValue(v, mem.value); err != nil {
				return fmt.Errorf("%q: %w", mem.key, err)
			}
		}
		return nil
	case []any:
		a, ok := decoded.([]any)
		if !ok || len(a) != len(s) {
			return fmt.Errorf("decoded %#v where the input has an array of %d", decoded, len(s))
		}
		for i := range s {
			if err := sameValue(a[i], s[i]); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return nil
	}
	if !reflect.DeepEqual(decoded, stream) {
		return fmt.Errorf("decoded %#v where the input has %#v", decoded, stream)
	}
	return nil
}

// hasReplacementChar reports whether v holds U+FFFD in a key or a string.
func hasReplacementChar(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.ContainsRune(v, utf8.RuneError)
	case []any:
		for _, e := range v {
			if hasReplacementChar(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range v {
			if hasReplacementChar(k) || hasReplacementChar(e) {
				return true
			}
		}
	}
	return false
}

// hasSurrogateEscape reports whether data, valid JSON, has an escape
// \ud800 to \udfff anywhere.
func hasSurrogateEscape(data []byte) bool {
	for i := 0; i+1 < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		if data[i+1] == 'u' && i+3 < len(data) && (data[i+2]|0x20) == 'd' && strings.IndexByte("89abcdefABCDEF", data[i+3]) >= 0 {
			return true
		}
		i++ // past the escaped character: `\\` is not the start of an escape
	}
	return false
}

// numberDecoder decodes data with numbers as they are written.
func numberDecoder(data []byte) *json.Decoder {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec
}

func decodeAny(data []byte) (any, error) {
	dec := numberDecoder(data)
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("data after the value (%v)", err)
	}
	return v, nil
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		``, ` `, `{}`, `[]`, `""`, `0`, `-0.5e+3`, `true`, `false`, `null`, `01`, `1.`, `-`, `1e`,
		`{"subject":"alice","device":{"id":"d","type":"ios"},"metadata":{"a":{"b":[1,2,{"c":null}]}}}`,
		"{\"subject\":\"bob\xff\"}",
		"{\"subject\":\"bob\xfe\"}",
		"{\"device\":{\"id\":\"x\xff\"}}",
		"\"\xed\xa0\x80\"",     // an encoded surrogate
		"\"\xc0\xaf\"",         // overlong
		"\"\xf4\x90\x80\x80\"", // above U+10FFFF
		"\"\xef\xbf\xbd\"",     // U+FFFD itself
		"{\"k\xff\":1}",
		`"\ud800"`, `"\udc00"`, `"\ud83d\ude00"`, `"\uD83D\uDE00"`, `"\ud800\u0041"`, `"\ud800\ud800\udc00"`,
		`"\ude00\ud83d"`, `"\ud83d`, `"\ud83d\u`, `"\ufffd"`, `"\\ud800"`, `"\u0000"`,
		`{"subject":"a","subject":"b"}`, `{"a":1,"\u0061":2}`, `{"😀":1,"\ud83d\ude00":2}`,
		`{"subject":"a","SUBJECT":"b"}`, `{"metadata":{"k":1,"k":2}}`, `{"a":{"a":1},"a":2}`,
		`[{"a":1},{"a":1,"a":2}]`, `{"":1,"":2}`, `{"a/b":1,"a\/b":2}`,
		bigObject(20, `,"k3":0`), bigObject(20, ""),
		`{"a":1} x`, `{}{}`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{1:2}`, "\"a\nb\"", `"\x41"`, `"\u12g4"`, "\xef\xbb\xbf{}",
		nested(strictjson.MaxDepth), nested(strictjson.MaxDepth + 1), nestedObjects(10, `"\ud800"`),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := strictjson.Check(data)
		if err != nil {
			var e *strictjson.Error
			if !errors.As(err, &e) {
				t.Fatalf("Check(%q) = %T %v, want a *strictjson.Error", data, err, err)
			}
			if e.Msg == "" || e.Offset < 0 || e.Offset > len(data) {
				t.Fatalf("Check(%q) = %+v: want a message and an offset within the input", data, e)
			}
		}

		valid := json.Valid(data)
		if err == nil {
			if !valid {
				t.Fatalf("Check(%q) accepted what json.Valid rejects", data)
			}
			if !utf8.Valid(data) {
				t.Fatalf("Check(%q) accepted invalid UTF-8", data)
			}
			v, derr := decodeAny(data)
			if derr != nil {
				t.Fatalf("Check(%q) accepted what encoding/json cannot decode: %v", data, derr)
			}
			// Re-encoding loses nothing.
			enc, merr := json.Marshal(v)
			if merr != nil {
				t.Fatalf("json.Marshal of %q decoded: %v", data, merr)
			}
			v2, derr := decodeAny(enc)
			if derr != nil || !reflect.DeepEqual(v, v2) {
				t.Fatalf("Check(%q) accepted; re-encoded as %q it decodes differently (%v)", data, enc, derr)
			}
			// Decoding lost nothing either: no member merged with another,
			// no string changed into U+FFFD.
			stream, _, _, terr := tokens(numberDecoder(data))
			if terr != nil {
				t.Fatalf("Check(%q) accepted; reading its tokens failed: %v", data, terr)
			}
			if serr := sameValue(v, stream); serr != nil {
				t.Fatalf("Check(%q) accepted, but decoding it loses something: %v", data, serr)
			}
			if hasReplacementChar(v) && !bytes.Contains(data, []byte("\uFFFD")) && !bytes.Contains(bytes.ToLower(data), []byte(`\ufffd`)) {
				t.Fatalf("Check(%q) accepted, but decoding it introduced U+FFFD", data)
			}
			return
		}

		// What Check rejects, beyond encoding/json's syntax, is only what it
		// is for: invalid UTF-8, surrogate escapes, duplicate keys, depth.
		if !valid || !utf8.Valid(data) || hasSurrogateEscape(data) {
			return
		}
		_, depth, dup, terr := tokens(numberDecoder(data))
		if terr != nil {
			t.Fatalf("json.Valid(%q), but reading its tokens failed: %v", data, terr)
		}
		if !dup && depth <= strictjson.MaxDepth {
			t.Fatalf("Check(%q) = %v, want nil: valid JSON, valid UTF-8, no surrogate escape, no duplicate key, depth %d", data, err, depth)
		}
	})
}
