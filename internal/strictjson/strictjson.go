// Package strictjson checks that a JSON document means exactly one thing.
//
// encoding/json accepts documents whose meaning it has to guess: it replaces
// invalid UTF-8 and lone surrogate escapes with U+FFFD, so that two different
// inputs decode to the same string, and it keeps the last of two members with
// the same key. [Check] rejects such documents before they are decoded.
//
// # What Check accepts
//
// Exactly one JSON value (RFC 8259), with optional whitespace around it, in
// which
//
//   - every string, key or value, is valid UTF-8 as raw bytes;
//   - every \u escape denotes a Unicode scalar value: a high surrogate escape
//     is immediately followed by a low surrogate escape, and neither occurs
//     alone;
//   - no object has two keys that are equal once unescaped ("a" and "\u0061"
//     are the same key);
//   - arrays and objects are nested at most [MaxDepth] deep.
//
// [Walk] checks the same and also shows a function each object member as it
// is read, so that a decoder can refuse keys in the same pass.
//
// # Cost
//
// Check reads the input once. Keys are compared with the other keys of their
// object; objects with more than a few keys are indexed by a hash with a
// random seed, so the work stays linear in the input whatever its shape.
// Check keeps its working memory from one call to the next, so it does not
// allocate for ordinary documents; only for deep nesting, big objects, and
// to report an error.
package strictjson

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of arrays and objects that Check accepts.
const MaxDepth = 1000

// Error is why Check rejected a document.
type Error struct {
	// Path names the member that is at fault, dotted, with array elements
	// as indices: "subject", "device.id", "metadata.a.b", "tags[2]",
	// "[0].name". A key that is not valid UTF-8 is named by the path of its
	// object. Path is "" for the top-level value and for errors of syntax
	// and depth, which concern the document as a whole.
	Path string
	// Msg says what is wrong, for people, without the path: "is not valid
	// UTF-8", "has a lone surrogate escape \ud800", `duplicate key "a"`,
	// "malformed JSON at byte 12: ...".
	Msg string
	// Offset is where in the input the problem is, counted in bytes from
	// 0: the bad byte, the escape's backslash, the duplicate key's opening
	// quote (or the key's that Walk's function refused), or the length of
	// the input if the document is truncated.
	Offset int
	// Err is the error of Walk's function, if it refused a key.
	Err error
}

func (e *Error) Error() string {
	if e.Path == "" {
		return "strictjson: " + e.Msg
	}
	return "strictjson: " + e.Path + ": " + e.Msg
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// Check reports whether data is one strict JSON document, as the package
// documentation defines it. It returns nil or an *Error.
func Check(data []byte) error {
	return Walk(data, nil, nil)
}

// Walk is Check that also shows fn each object member, in document order,
// once its key and colon are read and before its value is: what a decoder
// needs to refuse keys that it would take but should not. key is the
// unescaped key, valid only during the call. ctx is what fn returned for the
// member whose value holds the object: root for the top-level value; the
// array's ctx for an object that is an element of an array.
//
// An error from fn ends the walk: Walk returns an *Error naming the member,
// with the error's text as Msg and the error as Err.
func Walk(data []byte, root any, fn func(ctx any, key []byte) (any, error)) error {
	c := checkers.Get().(*checker)
	c.data, c.ctx, c.fn = data, root, fn
	err := c.document()
	c.reset()
	return err
}

// checkers keeps checkers, with their stacks, from one Check to the next.
var checkers = sync.Pool{New: func() any {
	return &checker{frames: make([]frame, 0, 16), keys: make([]keyRef, 0, 64), buf: make([]byte, 0, 256)}
}}

// reset forgets the document and returns c to checkers, unless a big
// document made its stacks big: those are left to the garbage collector.
func (c *checker) reset() {
	if cap(c.frames) > 64 || cap(c.keys) > 1024 || cap(c.buf) > 16<<10 {
		return
	}
	if c.fn != nil {
		clear(c.frames[:cap(c.frames)]) // keep no ctx alive
	}
	*c = checker{frames: c.frames[:0], keys: c.keys[:0], buf: c.buf[:0]}
	checkers.Put(c)
}

// linearKeys is how many keys an object may have before its keys are
// indexed by hash rather than compared one by one.
const linearKeys = 16

type checker struct {
	data []byte
	pos  int

	frames []frame  // the open arrays and objects, outermost first
	keys   []keyRef // the keys of the open objects, each object's together
	buf    []byte   // unescaped copies of keys that hold escapes

	// index holds the keys of objects with more than linearKeys keys, by
	// object number and hash; a key's next links it to the one before it
	// with the same hash. The entries of closed objects stay until Check
	// returns; no open object has their numbers.
	index   map[indexKey]int
	seed    maphash.Seed
	objects int // objects opened so far; numbers them for index

	fn  func(ctx any, key []byte) (any, error) // Walk's
	ctx any                                    // fn's context for the value at pos
}

// frame is one open array or object.
type frame struct {
	object bool
	n      int  // array: elements begun; object: the object's number
	keys   int  // object: where its keys begin in checker.keys
	cur    int  // object: its current key, in checker.keys
	buf    int  // object: where its unescaped keys begin in checker.buf
	hashed bool // object: its keys are in checker.index
	ctx    any  // Walk's context for the array or object
}

// keyRef is one key: data[start:end] as it is, or buf[start:end] if it had
// escapes.
type keyRef struct {
	start, end int
	unescaped  bool
	next       int // index: the previous key with the same hash, or -1
}

type indexKey struct {
	object int
	hash   uint64
}

func (c *checker) key(k keyRef) []byte {
	if k.unescaped {
		return c.buf[k.start:k.end]
	}
	return c.data[k.start:k.end]
}

// document checks the whole input: one value and nothing else.
func (c *checker) document() error {
	c.skipSpace()
	if c.pos == len(c.data) {
		return &Error{Offset: c.pos, Msg: "no JSON value"}
	}
	if err := c.value(); err != nil {
		return err
	}
	c.skipSpace()
	if c.pos != len(c.data) {
		return &Error{Offset: c.pos, Msg: fmt.Sprintf("data after the JSON value at byte %d", c.pos)}
	}
	return nil
}

// value checks one value at c.pos, with everything nested in it. It keeps
// its own stack rather than recurse.
func (c *checker) value() error {
	for {
		// A value begins at c.pos (after optional whitespace).
		c.skipSpace()
		if c.pos == len(c.data) {
			return c.truncated()
		}
		switch ch := c.data[c.pos]; {
		case ch == '{' || ch == '[':
			if len(c.frames) == MaxDepth {
				return &Error{Offset: c.pos, Msg: fmt.Sprintf("nested deeper than %d levels at byte %d", MaxDepth, c.pos)}
			}
			c.pos++
			f := frame{object: ch == '{', ctx: c.ctx}
			if f.object {
				c.objects++
				f.n, f.keys, f.buf = c.objects, len(c.keys), len(c.buf)
			}
			c.frames = append(c.frames, f)
			c.skipSpace()
			if c.pos < len(c.data) && c.data[c.pos] == "]}"[b2i(f.object)] {
				c.pos++
				c.close()
				break
			}
			if err := c.next(); err != nil {
				return err
			}
			continue
		case ch == '"':
			if _, err := c.string(false); err != nil {
				return err
			}
		case ch == '-' || '0' <= ch && ch <= '9':
			if err := c.number(); err != nil {
				return err
			}
		case ch == 't':
			if err := c.literal("true"); err != nil {
				return err
			}
		case ch == 'f':
			if err := c.literal("false"); err != nil {
				return err
			}
		case ch == 'n':
			if err := c.literal("null"); err != nil {
				return err
			}
		default:
			return c.malformed(c.pos, "expected a value, found %s", quoteByte(ch))
		}

		// A value ended: close the containers it ends, or go on to the
		// next element or member.
		for {
			if len(c.frames) == 0 {
				return nil
			}
			object := c.frames[len(c.frames)-1].object
			c.skipSpace()
			if c.pos == len(c.data) {
				return c.truncated()
			}
			ch := c.data[c.pos]
			if ch == ',' {
				c.pos++
				if err := c.next(); err != nil {
					return err
				}
				break
			}
			if ch != "]}"[b2i(object)] {
				if object {
					return c.malformed(c.pos, "expected ',' or '}' after an object member, found %s", quoteByte(ch))
				}
				return c.malformed(c.pos, "expected ',' or ']' after an array element, found %s", quoteByte(ch))
			}
			c.pos++
			c.close()
		}
	}
}

// next begins the next element of the innermost array, or reads the key
// and colon of the next member of the innermost object.
func (c *checker) next() error {
	f := &c.frames[len(c.frames)-1]
	c.ctx = f.ctx
	if !f.object {
		f.n++
		return nil
	}
	c.skipSpace()
	if c.pos == len(c.data) {
		return c.truncated()
	}
	if ch := c.data[c.pos]; ch != '"' {
		return c.malformed(c.pos, "expected a string key, found %s", quoteByte(ch))
	}
	at := c.pos
	k, err := c.string(true)
	if err != nil {
		return err
	}
	if err := c.addKey(f, k, at); err != nil {
		return err
	}
	c.skipSpace()
	if c.pos == len(c.data) {
		return c.truncated()
	}
	if ch := c.data[c.pos]; ch != ':' {
		return c.malformed(c.pos, "expected ':' after an object key, found %s", quoteByte(ch))
	}
	c.pos++
	if c.fn != nil {
		ctx, err := c.fn(f.ctx, c.key(c.keys[f.cur]))
		if err != nil {
			return &Error{Path: c.path(false), Offset: at, Msg: err.Error(), Err: err}
		}
		c.ctx = ctx
	}
	return nil
}

// close pops the innermost array or object, forgetting an object's keys.
func (c *checker) close() {
	f := c.frames[len(c.frames)-1]
	c.frames = c.frames[:len(c.frames)-1]
	if f.object {
		c.keys = c.keys[:f.keys]
		c.buf = c.buf[:f.buf]
	}
}

// addKey records k as the next key of object f, which must not have it yet.
// at is the offset of its opening quote.
func (c *checker) addKey(f *frame, k keyRef, at int) error {
	kb := c.key(k)
	i := len(c.keys)
	if !f.hashed {
		for j := f.keys; j < i; j++ {
			if bytes.Equal(c.key(c.keys[j]), kb) {
				return c.duplicate(kb, at)
			}
		}
		c.keys = append(c.keys, k)
		f.cur = i
		if len(c.keys)-f.keys > linearKeys {
			c.hash(f)
		}
		return nil
	}
	ik := indexKey{f.n, maphash.Bytes(c.seed, kb)}
	k.next = -1
	if j, ok := c.index[ik]; ok {
		k.next = j
		for ; j >= 0; j = c.keys[j].next {
			if bytes.Equal(c.key(c.keys[j]), kb) {
				return c.duplicate(kb, at)
			}
		}
	}
	c.keys = append(c.keys, k)
	f.cur = i
	c.index[ik] = i
	return nil
}

// hash moves the keys of object f, all different, into the index.
func (c *checker) hash(f *frame) {
	if c.index == nil {
		c.index = make(map[indexKey]int)
		c.seed = maphash.MakeSeed()
	}
	f.hashed = true
	for i := f.keys; i < len(c.keys); i++ {
		ik := indexKey{f.n, maphash.Bytes(c.seed, c.key(c.keys[i]))}
		c.keys[i].next = -1
		if j, ok := c.index[ik]; ok {
			c.keys[i].next = j
		}
		c.index[ik] = i
	}
}

// string checks the string that begins at c.pos and moves past it. For a
// key, it returns where the key's bytes are, unescaped into c.buf if it has
// escapes.
func (c *checker) string(isKey bool) (keyRef, error) {
	start := c.pos + 1
	escaped := false
	i := start
	for {
		// Plain ASCII needs no more than this.
		for i < len(c.data) {
			ch := c.data[i]
			if ch < 0x20 || ch == '"' || ch == '\\' || ch >= utf8.RuneSelf {
				break
			}
			i++
		}
		if i == len(c.data) {
			c.pos = i
			return keyRef{}, c.truncated()
		}
		switch ch := c.data[i]; {
		case ch == '"':
			c.pos = i + 1
			if !isKey {
				return keyRef{}, nil
			}
			if !escaped {
				return keyRef{start: start, end: i}, nil
			}
			from := len(c.buf)
			c.buf = unescape(c.buf, c.data[start:i])
			return keyRef{start: from, end: len(c.buf), unescaped: true}, nil
		case ch < 0x20:
			return keyRef{}, c.malformed(i, "control character %U in a string must be escaped", ch)
		case ch >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(c.data[i:])
			if r == utf8.RuneError && size == 1 {
				if isKey {
					return keyRef{}, &Error{Path: c.path(true), Offset: i, Msg: "has a key that is not valid UTF-8"}
				}
				return keyRef{}, &Error{Path: c.path(false), Offset: i, Msg: "is not valid UTF-8"}
			}
			i += size
		default: // '\\'
			escaped = true
			n, err := c.escape(i, isKey)
			if err != nil {
				return keyRef{}, err
			}
			i += n
		}
	}
}

// escape checks the escape at data[i] (a backslash) and returns its length.
func (c *checker) escape(i int, isKey bool) (int, error) {
	if i+1 == len(c.data) {
		c.pos = len(c.data)
		return 0, c.truncated()
	}
	switch c.data[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, nil
	case 'u':
	default:
		return 0, c.malformed(i, "invalid escape %q", c.data[i:i+2])
	}
	r, err := c.hex4(i)
	if err != nil {
		return 0, err
	}
	if !utf16.IsSurrogate(r) {
		return 6, nil
	}
	if r < 0xdc00 { // a high surrogate: a low one must follow
		switch rest := c.data[i+6:]; {
		case len(rest) == 0 || len(rest) == 1 && rest[0] == '\\':
			c.pos = len(c.data) // it may yet come: the input ends first
			return 0, c.truncated()
		case len(rest) >= 2 && rest[0] == '\\' && rest[1] == 'u':
			r2, err := c.hex4(i + 6)
			if err != nil {
				return 0, err
			}
			if utf16.IsSurrogate(r2) && r2 >= 0xdc00 {
				return 12, nil
			}
		}
	}
	msg := fmt.Sprintf("lone surrogate escape \\u%04x", r)
	if isKey {
		return 0, &Error{Path: c.path(true), Offset: i, Msg: "has a key with a " + msg}
	}
	return 0, &Error{Path: c.path(false), Offset: i, Msg: "has a " + msg}
}

// hex4 decodes the four hex digits of the \u escape at data[i].
func (c *checker) hex4(i int) (rune, error) {
	var r rune
	for j := i + 2; j < i+6; j++ {
		if j == len(c.data) {
			c.pos = j
			return 0, c.truncated()
		}
		d := unhex(c.data[j])
		if d < 0 {
			return 0, c.malformed(j, "invalid \\u escape: %s is not a hex digit", quoteByte(c.data[j]))
		}
		r = r<<4 | d
	}
	return r, nil
}

func unhex(b byte) rune {
	switch {
	case '0' <= b && b <= '9':
		return rune(b - '0')
	case 'a' <= b && b <= 'f':
		return rune(b - 'a' + 10)
	case 'A' <= b && b <= 'F':
		return rune(b - 'A' + 10)
	}
	return -1
}

// unescape appends s, the checked inside of a string, to dst, unescaped.
func unescape(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			dst = append(dst, s[i])
			i++
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hexRune(s[i+2 : i+6])
			if utf16.IsSurrogate(r) {
				r = utf16.DecodeRune(r, hexRune(s[i+8:i+12]))
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
			i += 6
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

func hexRune(h []byte) rune {
	return unhex(h[0])<<12 | unhex(h[1])<<8 | unhex(h[2])<<4 | unhex(h[3])
}

// number checks the number at c.pos and moves past it:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (c *checker) number() error {
	if c.data[c.pos] == '-' {
		c.pos++
	}
	if c.pos < len(c.data) && c.data[c.pos] == '0' {
		c.pos++
	} else if err := c.digits("in a number"); err != nil {
		return err
	}
	if c.pos < len(c.data) && c.data[c.pos] == '.' {
		c.pos++
		if err := c.digits("after the decimal point"); err != nil {
			return err
		}
	}
	if c.pos < len(c.data) && (c.data[c.pos] == 'e' || c.data[c.pos] == 'E') {
		c.pos++
		if c.pos < len(c.data) && (c.data[c.pos] == '+' || c.data[c.pos] == '-') {
			c.pos++
		}
		if err := c.digits("in the exponent"); err != nil {
			return err
		}
	}
	return nil
}

// digits moves past one or more digits.
func (c *checker) digits(where string) error {
	start := c.pos
	for c.pos < len(c.data) && '0' <= c.data[c.pos] && c.data[c.pos] <= '9' {
		c.pos++
	}
	if c.pos > start {
		return nil
	}
	if c.pos == len(c.data) {
		return c.truncated()
	}
	return c.malformed(c.pos, "expected a digit %s, found %s", where, quoteByte(c.data[c.pos]))
}

// literal moves past word (true, false, null) at c.pos.
func (c *checker) literal(word string) error {
	for i := range len(word) {
		if c.pos == len(c.data) {
			return c.truncated()
		}
		if c.data[c.pos] != word[i] {
			return c.malformed(c.pos, "expected %q, found %s", word, quoteByte(c.data[c.pos]))
		}
		c.pos++
	}
	return nil
}

func (c *checker) skipSpace() {
	for c.pos < len(c.data) {
		switch c.data[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

// path names the value being read: the current element or member of each
// open array and object; without the innermost object's member if
// readingKey (its key is being read).
func (c *checker) path(readingKey bool) string {
	frames := c.frames
	if readingKey {
		frames = frames[:len(frames)-1]
	}
	var b strings.Builder
	for _, f := range frames {
		if !f.object {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(f.n - 1))
			b.WriteByte(']')
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.Write(c.key(c.keys[f.cur]))
	}
	return b.String()
}

// duplicate reports key, at offset at, as a second key of the innermost
// object.
func (c *checker) duplicate(key []byte, at int) error {
	path := c.path(true)
	if path != "" {
		path += "."
	}
	return &Error{Path: path + string(key), Offset: at, Msg: fmt.Sprintf("duplicate key %q", key)}
}

func (c *checker) truncated() error {
	return &Error{Offset: len(c.data), Msg: "truncated JSON"}
}

func (c *checker) malformed(at int, format string, args ...any) error {
	return &Error{Offset: at, Msg: fmt.Sprintf("malformed JSON at byte %d: ", at) + fmt.Sprintf(format, args...)}
}

// quoteByte shows b in a message: 'x' for a printable ASCII byte, else its
// hex value.
func quoteByte(b byte) string {
	if 0x20 < b && b < 0x7f {
		return strconv.QuoteRune(rune(b))
	}
	return fmt.Sprintf("byte 0x%02x", b)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
