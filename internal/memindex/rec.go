package memindex

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"

	"github.com/sessiond/sessiond"
)

// rec is a session as the index holds it: 160 bytes for a session without
// device, metadata or rotations, whose fields live in extra only when a
// session has them; its connections are a set of their own, changed in
// place. Times are Unix nanoseconds (0 for none),
// the end reason an index into sessiond.EndReasons, and the policy name is
// shared by every session of the policy.
type rec struct {
	id     string
	subj   *subject
	policy string
	extra  *extra
	conns  *connSet // nil when it has none
	next   *rec     // the subject's next session

	created, lastActive, expires, ended int64
	stateSince                          int64
	idle                                time.Duration
	version                             uint64
	generation                          uint32
	state                               sessiond.State
	reason                              uint8
	token                               sessiond.TokenHash
}

// extra holds what many sessions never have.
type extra struct {
	device                           sessiond.Device
	meta                             json.RawMessage
	rotated, prevUntil, disconnected int64
	prevToken                        sessiond.TokenHash
	retired                          []sessiond.TokenHash
	cycle                            uint64
}

// tokenKey is the first half of a token hash. Halving the map's keys saves
// 16 bytes a session; lookups compare the whole hash, so a collision of
// prefixes (2^-128 a pair) could only hide a session, never swap two.
type tokenKey [16]byte

func keyOf(h sessiond.TokenHash) (k tokenKey) {
	copy(k[:], h[:16])
	return k
}

func (r *rec) live() bool { return r.state.Live() }

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func timeOf(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func reasonIndex(r sessiond.EndReason) uint8 {
	for i, v := range sessiond.EndReasons {
		if v == r {
			return uint8(i + 1)
		}
	}
	return 0
}

// set copies s into r. The caller holds the index's write lock.
func (r *rec) set(s *sessiond.Session, policy string) {
	r.policy = policy
	r.created, r.lastActive, r.expires, r.ended = nanos(s.CreatedAt), nanos(s.LastActive), nanos(s.ExpiresAt), nanos(s.EndedAt)
	r.stateSince = nanos(s.StateSince)
	r.idle = s.IdleTimeout
	r.version, r.generation = s.Version, uint32(s.Generation)
	r.state, r.reason = s.State, reasonIndex(s.EndReason)
	r.token = s.TokenHash
	if s.Device == (sessiond.Device{}) && s.Metadata == nil && s.RetiredTokens == nil &&
		s.RotatedAt.IsZero() && s.PrevTokenUntil.IsZero() && s.DisconnectedAt.IsZero() && s.PrevTokenHash.IsZero() && s.Cycle == 0 {
		r.extra = nil
		return
	}
	// A fresh extra, never one a reader may be building a Session from:
	// sessions built from it share its slices. The slices are the caller's,
	// so they are copied, unless they are the ones the index already holds
	// (the caller changed a session it read from here, and kept them).
	old := r.extra
	e := &extra{
		device: s.Device, meta: s.Metadata, retired: s.RetiredTokens,
		rotated: nanos(s.RotatedAt), prevUntil: nanos(s.PrevTokenUntil), disconnected: nanos(s.DisconnectedAt),
		prevToken: s.PrevTokenHash, cycle: s.Cycle,
	}
	if old == nil || !sameSlice(old.meta, s.Metadata) {
		e.meta = bytes.Clone(s.Metadata)
	}
	if old == nil || !sameSlice(old.retired, s.RetiredTokens) {
		e.retired = slices.Clone(s.RetiredTokens)
	}
	r.extra = e
}

// sameSlice reports whether a and b are the same slice: same length, same
// backing array.
func sameSlice[T any](a, b []T) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// session builds a Session from r. Its Metadata and RetiredTokens are
// shared with the index, which never changes them (set replaces them): the
// Store contract forbids callers to modify returned sessions.
func (r *rec) session() *sessiond.Session {
	s := &sessiond.Session{
		ID: r.id, Subject: r.subj.name, Policy: r.policy,
		State:     r.state,
		CreatedAt: timeOf(r.created), LastActive: timeOf(r.lastActive), ExpiresAt: timeOf(r.expires), EndedAt: timeOf(r.ended),
		StateSince: timeOf(r.stateSince), IdleTimeout: r.idle, Version: r.version, Generation: uint64(r.generation),
		TokenHash: r.token, ConnCount: r.conns.len(),
	}
	if r.reason > 0 {
		s.EndReason = sessiond.EndReasons[r.reason-1]
	}
	if x := r.extra; x != nil {
		s.Device, s.Metadata, s.RetiredTokens = x.device, x.meta, x.retired
		s.RotatedAt, s.PrevTokenUntil, s.DisconnectedAt = timeOf(x.rotated), timeOf(x.prevUntil), timeOf(x.disconnected)
		s.PrevTokenHash, s.Cycle = x.prevToken, x.cycle
	}
	return s
}
