package sessiond

import (
	"strconv"
	"strings"
)

// Cursor is a position in a store's event log. A store keeps one log per
// partition (a shared store spreads sessions over partitions, each in one
// Redis Cluster slot, and one sequence over all of them could not be kept
// without a key every write touches), and numbers the events of each
// partition 1, 2, 3...; a cursor holds, for each partition, the Seq of the
// last event read from it. The zero Cursor is the log's beginning.
//
// Its text form (String, ParseCursor) is what clients see as the
// server-sent events' id and pass back as Last-Event-ID or ?after=: the
// Seq alone for a store of one partition (the embedded store: the ids
// older servers gave), the Seqs joined by dots for more. Clients treat it
// as opaque.
//
// Events of one session are in one partition, so they come in the order of
// their transitions; across partitions, no order is promised.
type Cursor struct {
	seqs []uint64 // by partition; missing ones are 0. Never changed once made.
	now  bool     // FromNow
}

// FromNow, passed to Subscribe, starts a subscription with the events
// recorded from now on. Any other Cursor replays the retained log after
// it: the zero Cursor from its beginning.
var FromNow = Cursor{now: true}

// CursorOf returns the cursor at seqs, by partition.
func CursorOf(seqs ...uint64) Cursor { return Cursor{seqs: append([]uint64(nil), seqs...)} }

// Seq returns the Seq of the last event of partition p the cursor is past.
func (c Cursor) Seq(p int) uint64 {
	if p < 0 || p >= len(c.seqs) {
		return 0
	}
	return c.seqs[p]
}

// Len returns how many partitions the cursor names (trailing zeros
// included).
func (c Cursor) Len() int { return len(c.seqs) }

// IsFromNow reports whether c is FromNow.
func (c Cursor) IsFromNow() bool { return c.now }

// Covers reports whether the cursor is past e: e was read before it.
func (c Cursor) Covers(e Event) bool { return e.Seq <= c.Seq(e.Partition) }

// Missed returns how many events of e's partition the log no longer held
// between c and e: 0 when e follows c in its partition (or c covers it),
// more when events older than e fell out of the log's retention before
// they were read.
func (c Cursor) Missed(e Event) uint64 {
	if want := c.Seq(e.Partition) + 1; e.Seq > want {
		return e.Seq - want
	}
	return 0
}

// After returns the cursor past e as well.
func (c Cursor) After(e Event) Cursor {
	if c.Covers(e) {
		return c
	}
	seqs := make([]uint64, max(len(c.seqs), e.Partition+1))
	copy(seqs, c.seqs)
	seqs[e.Partition] = e.Seq
	return Cursor{seqs: seqs}
}

// Max returns the cursor past both c and o, partition by partition.
func (c Cursor) Max(o Cursor) Cursor {
	if !c.Behind(o) {
		return Cursor{seqs: c.seqs}
	}
	seqs := make([]uint64, max(len(c.seqs), len(o.seqs)))
	for p := range seqs {
		seqs[p] = max(c.Seq(p), o.Seq(p))
	}
	return Cursor{seqs: seqs}
}

// Behind reports whether o is past an event c is not: some partition of o
// is further on.
func (c Cursor) Behind(o Cursor) bool {
	for p, s := range o.seqs {
		if s > c.Seq(p) {
			return true
		}
	}
	return false
}

// String returns the cursor's text form.
func (c Cursor) String() string {
	n := len(c.seqs)
	for n > 1 && c.seqs[n-1] == 0 {
		n--
	}
	if n == 0 {
		return "0"
	}
	var b strings.Builder
	for p, s := range c.seqs[:n] {
		if p > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.FormatUint(s, 10))
	}
	return b.String()
}

// MaxCursorPartitions bounds the partitions a cursor's text may name.
const MaxCursorPartitions = 1024

// ParseCursor reads a cursor's text form. An error matches
// ErrInvalidArgument.
func ParseCursor(s string) (Cursor, error) {
	bad := Errorf(CodeInvalidArgument, "cursor", "not an event id this server gave")
	if s == "" || len(s) > MaxCursorPartitions*21 {
		return Cursor{}, bad
	}
	parts := strings.Split(s, ".")
	if len(parts) > MaxCursorPartitions {
		return Cursor{}, bad
	}
	seqs := make([]uint64, len(parts))
	for p, v := range parts {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || (len(v) > 1 && v[0] == '0') {
			return Cursor{}, bad
		}
		seqs[p] = n
	}
	return Cursor{seqs: seqs}, nil
}

// Within returns an error matching ErrInvalidArgument if the cursor is past
// events of a partition a store of n partitions does not have: a cursor
// of another deployment.
func (c Cursor) Within(n int) error {
	for p := n; p < len(c.seqs); p++ {
		if c.seqs[p] != 0 {
			return Errorf(CodeInvalidArgument, "cursor", "names partition %d; this store has %d", p, n)
		}
	}
	return nil
}
