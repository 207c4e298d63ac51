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
//	sd_<48 characters of unpadded base64url>.<session id>
//
// The 36 encoded bytes are 32 bytes from crypto/rand followed by the
// CRC-32C of those 32 bytes and the id, so a mistyped or truncated token is
// rejected before any lookup, and secret scanners can recognise the prefix.
// Only the SHA-256 of the 32 random bytes is ever stored.
//
// The token carries its session's id so that a validation reads the session
// by id: no store needs an index from token to session, which a store
// shared by several nodes and split over partitions (Redis Cluster) could
// not keep in one place. Tokens issued before they carried the id (just
// sd_ and the 48 characters, the checksum over the random bytes alone)
// still parse, with no id: stores that kept such tokens find them by hash
// (TokenFinder).
const (
	tokenPrefix  = "sd_"
	tokenSecret  = 32
	tokenEncoded = 48 // base64url of 36 bytes
	// legacyTokenLen is the length of a token that carries no id.
	legacyTokenLen = len(tokenPrefix) + tokenEncoded
	// MaxTokenLen is the length of the longest token sessiond issues: one
	// whose session id is MaxIDLen long.
	MaxTokenLen = legacyTokenLen + 1 + MaxIDLen
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// TokenHash is the SHA-256 of a token's secret. Sessions store it, never
// the token.
type TokenHash [sha256.Size]byte

// IsZero reports whether h is unset.
func (h TokenHash) IsZero() bool { return h == TokenHash{} }

// String returns the hash in hex; useful in tests and store keys.
func (h TokenHash) String() string { return hex.EncodeToString(h[:]) }

// NewToken returns a fresh token for the session with the id, and its hash.
func NewToken(id string) (string, TokenHash) {
	var raw [tokenSecret + 4]byte
	rand.Read(raw[:tokenSecret]) // never fails (crypto/rand panics rather than return short)
	binary.BigEndian.PutUint32(raw[tokenSecret:], tokenChecksum(raw[:tokenSecret], id))
	out := make([]byte, legacyTokenLen+1+len(id))
	copy(out, tokenPrefix)
	base64.RawURLEncoding.Encode(out[len(tokenPrefix):], raw[:])
	out[legacyTokenLen] = '.'
	copy(out[legacyTokenLen+1:], id)
	return string(out), sha256.Sum256(raw[:tokenSecret])
}

func tokenChecksum(secret []byte, id string) uint32 {
	return crc32.Update(crc32.Checksum(secret, crcTable), crcTable, []byte(id))
}

// ParseToken checks a token's form and checksum and returns the id of its
// session and its hash. A token issued before tokens carried their
// session's id parses with an empty id. A malformed token gets an error
// with CodeInvalidArgument; a well-formed one that names no session is
// found out only by a store lookup.
func ParseToken(token string) (id string, h TokenHash, err error) {
	malformed := func(why string) (string, TokenHash, error) {
		return "", TokenHash{}, Errorf(CodeInvalidArgument, "token", "malformed session token%s", why)
	}
	if len(token) < legacyTokenLen || token[:len(tokenPrefix)] != tokenPrefix {
		return malformed("")
	}
	if len(token) > legacyTokenLen {
		id = token[legacyTokenLen+1:]
		if token[legacyTokenLen] != '.' || !ValidID(id) {
			return malformed("")
		}
	}
	var raw [tokenSecret + 4]byte
	n, err := base64.RawURLEncoding.Decode(raw[:], []byte(token[len(tokenPrefix):legacyTokenLen]))
	if err != nil || n != len(raw) {
		return malformed("")
	}
	if binary.BigEndian.Uint32(raw[tokenSecret:]) != tokenChecksum(raw[:tokenSecret], id) {
		return malformed(" (checksum)")
	}
	return id, sha256.Sum256(raw[:tokenSecret]), nil
}

// idEncoding is lowercase Crockford base32: no i, l, o, u.
var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns a 26-character session id for a session of the subject:
// 48 bits of milliseconds since the epoch, so ids sort roughly by creation
// time, then the subject's shard (SubjectShard, 16 bits), then 64 random
// bits. The shard lets a store that places a subject's sessions together
// (a Redis Cluster hash slot) find a session from its id alone (IDShard).
func NewID(now time.Time, subject string) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	binary.BigEndian.PutUint16(b[6:], SubjectShard(subject))
	rand.Read(b[8:])
	return idEncoding.EncodeToString(b[:])
}

// SubjectShard is a 16-bit hash of a subject (FNV-1a, folded): the shard
// that the ids NewID makes for the subject's sessions carry. It is not a
// secret and not a check: ids are public, and 16 bits say next to nothing
// of the subject.
func SubjectShard(subject string) uint16 {
	v := uint32(2166136261) // FNV-1a, 32 bits
	for i := 0; i < len(subject); i++ {
		v = (v ^ uint32(subject[i])) * 16777619
	}
	return uint16(v>>16) ^ uint16(v)
}

// IDShard returns the shard an id made by NewID carries, and whether id
// has NewID's form. A caller-chosen id may have that form too, with any
// shard in it: stores must not take the shard for proof of where the
// session is.
func IDShard(id string) (uint16, bool) {
	if len(id) != 26 {
		return 0, false
	}
	var b [16]byte
	if n, err := idEncoding.Decode(b[:], []byte(id)); err != nil || n != 16 || idEncoding.EncodeToString(b[:]) != id {
		return 0, false
	}
	return binary.BigEndian.Uint16(b[6:]), true
}

// LogID is how logs name a session: the first 12 hex digits of the SHA-256 of
// its id. Ids chosen by callers may be sensitive, so logs never carry them;
// `printf %s ID | sha256sum | cut -c1-12` finds a session's lines.
func LogID(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:6])
}
