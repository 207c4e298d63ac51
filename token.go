package sessiond

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"time"
)

// A session token looks like
//
//	sd_<48 characters of unpadded base64url>
//
// The 36 encoded bytes are 32 bytes from crypto/rand followed by the
// CRC-32C of those 32 bytes, so a mistyped or truncated token is rejected
// before any lookup, and secret scanners can recognise the prefix. Only the
// SHA-256 of the 32 random bytes is ever stored.
const (
	tokenPrefix  = "sd_"
	tokenSecret  = 32
	tokenEncoded = 48 // base64url of 36 bytes
	// TokenLen is the length of every token sessiond issues.
	TokenLen = len(tokenPrefix) + tokenEncoded
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// TokenHash is the SHA-256 of a token's secret. It is how stores find a
// session by token.
type TokenHash [sha256.Size]byte

// IsZero reports whether h is unset.
func (h TokenHash) IsZero() bool { return h == TokenHash{} }

// String returns the hash in hex; useful in tests and store keys.
func (h TokenHash) String() string { return hex.EncodeToString(h[:]) }

// NewToken returns a fresh token and its hash.
func NewToken() (string, TokenHash) {
	var raw [tokenSecret + 4]byte
	rand.Read(raw[:tokenSecret]) // never fails (crypto/rand panics rather than return short)
	binary.BigEndian.PutUint32(raw[tokenSecret:], crc32.Checksum(raw[:tokenSecret], crcTable))
	var out [TokenLen]byte
	copy(out[:], tokenPrefix)
	base64.RawURLEncoding.Encode(out[len(tokenPrefix):], raw[:])
	return string(out[:]), sha256.Sum256(raw[:tokenSecret])
}

// ParseToken checks a token's form and checksum and returns its hash. A
// malformed token gets an error with CodeInvalidArgument; a well-formed one
// that names no session is found out only by a store lookup.
func ParseToken(token string) (TokenHash, error) {
	if len(token) != TokenLen || token[:len(tokenPrefix)] != tokenPrefix {
		return TokenHash{}, Errorf(CodeInvalidArgument, "token", "malformed session token")
	}
	var raw [tokenSecret + 4]byte
	n, err := base64.RawURLEncoding.Decode(raw[:], []byte(token[len(tokenPrefix):]))
	if err != nil || n != len(raw) {
		return TokenHash{}, Errorf(CodeInvalidArgument, "token", "malformed session token")
	}
	if binary.BigEndian.Uint32(raw[tokenSecret:]) != crc32.Checksum(raw[:tokenSecret], crcTable) {
		return TokenHash{}, Errorf(CodeInvalidArgument, "token", "malformed session token (checksum)")
	}
	return sha256.Sum256(raw[:tokenSecret]), nil
}

// idEncoding is lowercase Crockford base32: no i, l, o, u.
var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns a 26-character session id: 48 bits of milliseconds since the
// epoch then 80 random bits, so ids sort roughly by creation time.
func NewID(now time.Time) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	rand.Read(b[6:])
	return idEncoding.EncodeToString(b[:])
}

// LogID is how logs name a session: the first 12 hex digits of the SHA-256 of
// its id. Ids chosen by callers may be sensitive, so logs never carry them;
// `printf %s ID | sha256sum | cut -c1-12` finds a session's lines.
func LogID(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:6])
}
