package strictjson_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/strictjson"
)

// nested returns n arrays, one inside the other.
func nested(n int) string {
	return strings.Repeat("[", n) + strings.Repeat("]", n)
}

// nestedObjects returns n objects, each the member "a" of the one outside.
func nestedObjects(n int, inner string) string {
	return strings.Repeat(`{"a":`, n) + inner + strings.Repeat("}", n)
}

// bigObject returns an object with the keys k0...k(n-1), then extra members.
func bigObject(n int, extra string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i)
	}
	b.WriteString(extra)
	b.WriteByte('}')
	return b.String()
}

func TestCheckAcceptsStrictDocuments(t *testing.T) {
	for _, tc := range []struct{ name, doc string }{
		{"empty object", `{}`},
		{"empty array", `[]`},
		{"empty string", `""`},
		{"empty key and value", `{"":""}`},
		{"empty containers inside", `{"a":{},"b":[],"c":[{}],"d":[[]]}`},
		{"true", `true`},
		{"false", `false`},
		{"null", `null`},
		{"zero", `0`},
		{"negative zero", `-0`},
		{"integer", `1234567890`},
		{"fraction", `-12.5`},
		{"exponents", `[1e10,1E+2,1e-2,0.5e0,-0E-0]`},
		{"huge number", `1e999`},
		{"whitespace around and inside", " \t\r\n{ \"a\" :\n[ 1 ,\t2 ] }\r\n "},
		{"every simple escape", `"\"\\\/\b\f\n\r\t"`},
		{"unicode escapes", `"\u0000\u001f\u00e9\u20AC\uFFFD\uffff"`},
		{"escaped surrogate pair", `"\ud83d\ude00"`},
		{"escaped surrogate pair in capitals", `"\uD83D\uDE00"`},
		{"surrogate pair in a key", `{"\ud83d\ude00":1}`},
		{"raw UTF-8", `{"name":"héllo wörld 😀 中文"}`},
		{"raw U+FFFD", "\"\xef\xbf\xbd\""},
		{"raw U+10FFFF", "\"\xf4\x8f\xbf\xbf\""},
		{"keys differing in case", `{"subject":1,"Subject":2,"SUBJECT":3}`},
		{"same key in nested objects", `{"a":{"a":{"a":1}},"b":{"a":2}}`},
		{"same key in sibling objects", `[{"a":1},{"a":2}]`},
		{"key repeated after a nested object closes", `{"a":{"b":1,"c":2},"b":3,"c":4}`},
		{"keys that share a prefix", `{"a":1,"ab":2,"\u0061bc":3}`},
		{"escaped key equal to no other", `{"a\"b":1,"a\\b":2,"a/b":3,"a\/c":4}`},
		{"big object", bigObject(1000, "")},
		{"big sibling objects with the same keys", "[" + bigObject(100, "") + "," + bigObject(100, "") + "]"},
		{"arrays nested MaxDepth deep", nested(strictjson.MaxDepth)},
		{"objects nested MaxDepth deep", nestedObjects(strictjson.MaxDepth, "1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := strictjson.Check([]byte(tc.doc)); err != nil {
				t.Errorf("Check(%.80q) = %v, want nil", tc.doc, err)
			}
		})
	}
}

func TestCheckRejects(t *testing.T) {
	pair := `"\ud83d\ude00"`
	for _, tc := range []struct {
		name, doc string
		path, msg string // msg: the whole Msg
		offset    int
	}{
		// Invalid UTF-8, named by the member that holds it.
		{"top-level string", "\"\xff\"", "", "is not valid UTF-8", 1},
		{"member", "{\"subject\":\"bob\xff\"}", "subject", "is not valid UTF-8", 15},
		{"other invalid byte", "{\"subject\":\"bob\xfe\"}", "subject", "is not valid UTF-8", 15},
		{"nested member", "{\"device\":{\"id\":\"x\xff\"}}", "device.id", "is not valid UTF-8", 18},
		{"deeply nested member", "{\"metadata\":{\"a\":{\"b\":\"\xfe\"}}}", "metadata.a.b", "is not valid UTF-8", 23},
		{"array element", "{\"tags\":[\"a\",\"b\",\"\xff\"]}", "tags[2]", "is not valid UTF-8", 18},
		{"member of an array element", "[1,{\"n\":\"\xff\"}]", "[1].n", "is not valid UTF-8", 9},
		{"arrays in arrays", "[[],[1,\"\xff\"]]", "[1][1]", "is not valid UTF-8", 8},
		{"encoded surrogate", "\"\xed\xa0\x80\"", "", "is not valid UTF-8", 1},
		{"overlong encoding", "\"\xc0\xaf\"", "", "is not valid UTF-8", 1},
		{"truncated sequence", "\"\xe2\x82\"", "", "is not valid UTF-8", 1},
		{"above U+10FFFF", "\"\xf4\x90\x80\x80\"", "", "is not valid UTF-8", 1},
		{"continuation byte alone", "\"ab\x80\"", "", "is not valid UTF-8", 3},
		{"in a key", "{\"a\":{\"k\xff\":1}}", "a", "has a key that is not valid UTF-8", 8},
		{"in a top-level key", "{\"\xff\":1}", "", "has a key that is not valid UTF-8", 2},

		// Surrogate escapes that are not half of a pair.
		{"lone high surrogate", `{"subject":"bob\ud800"}`, "subject", `has a lone surrogate escape \ud800`, 15},
		{"lone high surrogate in capitals", `"\uD800"`, "", `has a lone surrogate escape \ud800`, 1},
		{"lone low surrogate", `{"a":["\udc00"]}`, "a[0]", `has a lone surrogate escape \udc00`, 7},
		{"high then a character", `"\ud800x"`, "", `has a lone surrogate escape \ud800`, 1},
		{"high then a simple escape", `"\ud800\n"`, "", `has a lone surrogate escape \ud800`, 1},
		{"high then a non-surrogate escape", `"\ud800\u0041"`, "", `has a lone surrogate escape \ud800`, 1},
		{"high then high", `"\ud800\ud800\udc00"`, "", `has a lone surrogate escape \ud800`, 1},
		{"low then high", `"\ude00\ud83d"`, "", `has a lone surrogate escape \ude00`, 1},
		{"after a good pair", `"` + pair[1:len(pair)-1] + `\udfff"`, "", `has a lone surrogate escape \udfff`, 13},
		{"in a key", `{"m":{"\udc00":1}}`, "m", `has a key with a lone surrogate escape \udc00`, 7},

		// Duplicate keys, named by the duplicated member.
		{"duplicate key", `{"subject":"a","subject":"b"}`, "subject", `duplicate key "subject"`, 15},
		{"duplicate by escape", `{"a":1,"\u0061":2}`, "a", `duplicate key "a"`, 7},
		{"duplicate by surrogate pair", `{"😀":1,` + pair + `:2}`, "😀", `duplicate key "😀"`, 10},
		{"duplicate by escaped slash", `{"a/b":1,"a\/b":2}`, "a/b", `duplicate key "a/b"`, 9},
		{"duplicate empty key", `{"":1,"":2}`, "", `duplicate key ""`, 6},
		{"nested duplicate", `{"metadata":{"k":1,"k":2}}`, "metadata.k", `duplicate key "k"`, 19},
		{"duplicate after a nested object", `{"a":{"a":1},"a":2}`, "a", `duplicate key "a"`, 13},
		{"duplicate in an array element", `[{"a":1},{"a":1,"a":2}]`, "[1].a", `duplicate key "a"`, 16},
		{"duplicate in a big object", bigObject(100, `,"k57":0`), "k57", `duplicate key "k57"`, len(bigObject(100, "")) - 1 + 1},
		{"duplicate at the threshold", bigObject(17, `,"k0":0`), "k0", `duplicate key "k0"`, len(bigObject(17, "")) - 1 + 1},

		// Syntax: no path, the offset in the message.
		{"empty", ``, "", "no JSON value", 0},
		{"whitespace only", " \n\t", "", "no JSON value", 3},
		{"truncated object", `{"a":1`, "", "truncated JSON", 6},
		{"truncated string", `{"a":"x`, "", "truncated JSON", 7},
		{"truncated escape", `"\`, "", "truncated JSON", 2},
		{"truncated unicode escape", `"\u12`, "", "truncated JSON", 5},
		{"truncated before the low surrogate", `"\ud83d`, "", "truncated JSON", 7},
		{"truncated inside the low surrogate", `"\ud83d\ude`, "", "truncated JSON", 11},
		{"truncated literal", `[tru`, "", "truncated JSON", 4},
		{"truncated number", `[1e`, "", "truncated JSON", 3},
		{"data after the value", `{"a":1} x`, "", "data after the JSON value at byte 8", 8},
		{"second value", `{}{}`, "", "data after the JSON value at byte 2", 2},
		{"closing bracket after", `{"a":1}]`, "", "data after the JSON value at byte 7", 7},
		{"leading zero", `01`, "", "data after the JSON value at byte 1", 1},
		{"missing colon", `{"a" 1}`, "", "malformed JSON at byte 5: expected ':' after an object key, found '1'", 5},
		{"trailing comma in array", `[1,]`, "", "malformed JSON at byte 3: expected a value, found ']'", 3},
		{"trailing comma in object", `{"a":1,}`, "", "malformed JSON at byte 7: expected a string key, found '}'", 7},
		{"missing comma", `[1 2]`, "", "malformed JSON at byte 3: expected ',' or ']' after an array element, found '2'", 3},
		{"missing comma in object", `{"a":1 "b":2}`, "", `malformed JSON at byte 7: expected ',' or '}' after an object member, found '"'`, 7},
		{"number key", `{1:2}`, "", "malformed JSON at byte 1: expected a string key, found '1'", 1},
		{"single quotes", `{'a':1}`, "", `malformed JSON at byte 1: expected a string key, found '\''`, 1},
		{"plus sign", `+1`, "", "malformed JSON at byte 0: expected a value, found '+'", 0},
		{"bare point", `.5`, "", "malformed JSON at byte 0: expected a value, found '.'", 0},
		{"minus alone", `-x`, "", "malformed JSON at byte 1: expected a digit in a number, found 'x'", 1},
		{"point without digits", `1.e5`, "", "malformed JSON at byte 2: expected a digit after the decimal point, found 'e'", 2},
		{"exponent without digits", `1e+]`, "", "malformed JSON at byte 3: expected a digit in the exponent, found ']'", 3},
		{"NaN", `NaN`, "", "malformed JSON at byte 0: expected a value, found 'N'", 0},
		{"bad literal", `nul1`, "", `malformed JSON at byte 3: expected "null", found '1'`, 3},
		{"control character", "\"a\nb\"", "", "malformed JSON at byte 2: control character U+000A in a string must be escaped", 2},
		{"unknown escape", `"\x41"`, "", `malformed JSON at byte 1: invalid escape "\\x"`, 1},
		{"bad hex digit", `"\u12g4"`, "", "malformed JSON at byte 5: invalid \\u escape: 'g' is not a hex digit", 5},
		{"bad hex in the low half", `"\ud83d\ude0z"`, "", "malformed JSON at byte 12: invalid \\u escape: 'z' is not a hex digit", 12},
		{"byte outside a string", "[\xff]", "", "malformed JSON at byte 1: expected a value, found byte 0xff", 1},
		{"BOM", "\xef\xbb\xbf{}", "", "malformed JSON at byte 0: expected a value, found byte 0xef", 0},
		{"arrays nested too deep", nested(strictjson.MaxDepth + 1), "", "nested deeper than 1000 levels at byte 1000", 1000},
		{"objects nested too deep", nestedObjects(strictjson.MaxDepth+1, "1"), "", "nested deeper than 1000 levels at byte 5000", 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := strictjson.Check([]byte(tc.doc))
			var e *strictjson.Error
			if !errors.As(err, &e) {
				t.Fatalf("Check(%.80q) = %v, want a *strictjson.Error", tc.doc, err)
			}
			if e.Path != tc.path || e.Msg != tc.msg || e.Offset != tc.offset {
				t.Errorf("Check(%.80q):\n got Path %q, Msg %q, Offset %d\nwant Path %q, Msg %q, Offset %d",
					tc.doc, e.Path, e.Msg, e.Offset, tc.path, tc.msg, tc.offset)
			}
			want := "strictjson: " + tc.msg
			if tc.path != "" {
				want = "strictjson: " + tc.path + ": " + tc.msg
			}
			if err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
		})
	}
}

// The first problem in the document is the one reported.
func TestCheckReportsTheFirstProblem(t *testing.T) {
	for _, tc := range []struct{ doc, path, msg string }{
		{"{\"a\":\"\xff\",\"a\":1}", "a", "is not valid UTF-8"},
		{"{\"a\":1,\"a\":\"\xff\"}", "a", `duplicate key "a"`},
		{"{\"a\":\"\\ud800\xff\"}", "a", `has a lone surrogate escape \ud800`},
		{"{\"a\":\"\xff\\ud800\"}", "a", "is not valid UTF-8"},
		{"{\"a\":\"\xff\"} x", "a", "is not valid UTF-8"},
	} {
		var e *strictjson.Error
		if err := strictjson.Check([]byte(tc.doc)); !errors.As(err, &e) || e.Path != tc.path || e.Msg != tc.msg {
			t.Errorf("Check(%q) = %v, want %s: %s", tc.doc, err, tc.path, tc.msg)
		}
	}
}

// Check reads each byte a bounded number of times, so work grows with the
// input whatever its shape: this input, one object with many keys of equal
// length, costs time quadratic in its size if every key is compared with
// every other.
func TestCheckManyKeysIsFast(t *testing.T) {
	doc := []byte(bigObject(200000, ""))
	start := time.Now()
	if err := strictjson.Check(doc); err != nil {
		t.Fatal(err)
	}
	// Linear work takes milliseconds here (under -race too); comparing
	// every key with every other takes minutes.
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Check of %d bytes with 200000 keys took %v, want time linear in the input", len(doc), took)
	}
}

func TestCheckDoesNotAllocateForOrdinaryDocuments(t *testing.T) {
	doc := []byte(`{"subject":"alice@example.com","device":{"id":"phone-1","type":"ios","name":"Alice's \u00e9 phone"},` +
		`"metadata":{"plan":"pro","tags":["a","b"],"n":1.5e3,"ok":true,"x":null,"😀":"\ud83d\ude00"},"ttl":"30m"}`)
	if err := strictjson.Check(doc); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = strictjson.Check(doc) }); n > maxAllocs() {
		t.Errorf("Check allocated %v times per run, want at most %v", n, maxAllocs())
	}
}

// maxAllocs is how often Check may allocate for an ordinary document: never,
// but under -race once, for its working memory.
func maxAllocs() float64 {
	if raceEnabled {
		return 1
	}
	return 0
}

// Walk shows each member once its key and colon are read, with the
// context returned for the member that holds it.
func TestWalkShowsEachMemberWithItsContext(t *testing.T) {
	doc := `{"a":{"b":1,"c":[{"d":2},[{"e":3}]],"\u0067":{}},"":[],"f":null}`
	var got []string
	err := strictjson.Walk([]byte(doc), "root", func(ctx any, key []byte) (any, error) {
		got = append(got, fmt.Sprintf("%v:%s", ctx, key))
		return fmt.Sprintf("%v/%s", ctx, key), nil
	})
	if err != nil {
		t.Fatalf("Walk(%s) = %v", doc, err)
	}
	want := []string{"root:a", "root/a:b", "root/a:c", "root/a/c:d", "root/a/c:e", "root/a:g", "root:", "root:f"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Walk(%s) showed\n %q\nwant\n %q", doc, got, want)
	}
}

func TestWalkRefusesWhatItsFunctionRefuses(t *testing.T) {
	errColour := errors.New("unknown field")
	refuse := func(ctx any, key []byte) (any, error) {
		if string(key) == "colour" {
			return nil, errColour
		}
		return nil, nil
	}
	for _, tc := range []struct {
		name, doc, path, msg string
		offset               int
		refused              bool
	}{
		{"at the top", `{"subject":"a","colour":1}`, "colour", "unknown field", 15, true},
		{"nested, by escape", `{"device":{"id":"d","\u0063olour":1}}`, "device.colour", "unknown field", 20, true},
		{"in an array", `{"l":[1,{"colour":1}]}`, "l[1].colour", "unknown field", 9, true},
		// What Check refuses comes first when it comes first.
		{"duplicate before", `{"a":1,"a":2,"colour":1}`, "a", `duplicate key "a"`, 7, false},
		{"syntax after the key", `{"colour" 1}`, "", "malformed JSON at byte 10: expected ':' after an object key, found '1'", 10, false},
		{"invalid UTF-8 before", "{\"a\":\"\xff\",\"colour\":1}", "a", "is not valid UTF-8", 6, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := strictjson.Walk([]byte(tc.doc), nil, refuse)
			var e *strictjson.Error
			if !errors.As(err, &e) {
				t.Fatalf("Walk(%q) = %v, want a *strictjson.Error", tc.doc, err)
			}
			if e.Path != tc.path || e.Msg != tc.msg || e.Offset != tc.offset {
				t.Errorf("Walk(%q):\n got Path %q, Msg %q, Offset %d\nwant Path %q, Msg %q, Offset %d",
					tc.doc, e.Path, e.Msg, e.Offset, tc.path, tc.msg, tc.offset)
			}
			if got := errors.Is(err, errColour); got != tc.refused {
				t.Errorf("errors.Is(Walk(%q), the function's error) = %v, want %v", tc.doc, got, tc.refused)
			}
		})
	}
}

func TestWalkDoesNotAllocate(t *testing.T) {
	doc := []byte(`{"token":"sd_x","device":{"id":"laptop","type":"browser","tags":[{"a":1}]}}`)
	n := 0
	fn := func(ctx any, key []byte) (any, error) { n++; return ctx, nil }
	if allocs := testing.AllocsPerRun(100, func() { _ = strictjson.Walk(doc, "root", fn) }); allocs > maxAllocs() {
		t.Errorf("Walk allocated %v times per run, want at most %v", allocs, maxAllocs())
	}
	if n != 101*6 {
		t.Errorf("Walk called its function %d times in 101 runs, want 6 a run", n)
	}
}

func BenchmarkCheck(b *testing.B) {
	doc := []byte(`{"token":"sd_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIiQm","device":{"id":"laptop","type":"browser"}}`)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if err := strictjson.Check(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func ExampleCheck() {
	for _, doc := range []string{
		`{"subject":"alice","device":{"id":"\ud83d\ude00"}}`,
		"{\"subject\":\"bob\xff\"}",
		`{"subject":"bob\ud800"}`,
		`{"metadata":{"k":1,"\u006b":2}}`,
		`{"subject":"alice"`,
	} {
		fmt.Println(strictjson.Check([]byte(doc)))
	}
	// Output:
	// <nil>
	// strictjson: subject: is not valid UTF-8
	// strictjson: subject: has a lone surrogate escape \ud800
	// strictjson: metadata.k: duplicate key "k"
	// strictjson: truncated JSON
}
