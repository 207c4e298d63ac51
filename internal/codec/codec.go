// Package codec is the compact, versioned binary encoding of sessions,
// connections, node leases and events that the stores keep: the embedded
// store on disk, the Redis store in its values.
package codec

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/sessiond/sessiond"
)

// Records on disk are a version byte followed by fields in a fixed order:
// strings and byte slices as a uvarint length then the bytes, times as a
// varint of Unix nanoseconds (0 for the zero time), integers as varints.
// A new field means a new version byte; decoders keep reading old ones.
const (
	sessionV1  = 1
	sessionV2  = 2 // + DisconnectedAt, Conns
	SessionV3  = 3 // - Conns (records of their own), + RetiredTokens
	sessionV4  = 4 // + StateSince, Cycle
	eventV1    = 1
	eventV2    = 2 // + Connection, Replaced
	eventV3    = 3 // + Conn (written only for events that carry it)
	connV1     = 1
	leaseV1    = 1
	consumerV1 = 1
)

var ErrCorrupt = errors.New("corrupt record")

type encoder struct{ b []byte }

func (e *encoder) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}
func (e *encoder) bytes(p []byte) {
	e.b = binary.AppendUvarint(e.b, uint64(len(p)))
	e.b = append(e.b, p...)
}
func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }

func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.int(0)
		return
	}
	e.int(t.UnixNano())
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err, d.b = ErrCorrupt, nil }

func (d *decoder) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) raw(n uint64) []byte {
	if uint64(len(d.b)) < n {
		d.fail()
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) str() string { return string(d.raw(d.uint())) }

func (d *decoder) bytes() []byte {
	p := d.raw(d.uint())
	if len(p) == 0 {
		return nil
	}
	return append([]byte(nil), p...)
}

func (d *decoder) time() time.Time {
	n := d.int()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func (d *decoder) hash() (h sessiond.TokenHash) {
	copy(h[:], d.raw(uint64(len(h))))
	return h
}

func EncodeSession(s *sessiond.Session) []byte {
	e := encoder{b: make([]byte, 0, 192+len(s.Metadata)+32*len(s.RetiredTokens))}
	e.b = append(e.b, sessionV4)
	e.str(s.ID)
	e.str(s.Subject)
	e.str(s.Policy)
	e.str(s.Device.ID)
	e.str(s.Device.Type)
	e.str(s.Device.Name)
	e.str(s.Device.IP)
	e.str(s.Device.UserAgent)
	e.bytes(s.Metadata)
	e.uint(uint64(s.State))
	e.str(string(s.EndReason))
	e.time(s.CreatedAt)
	e.time(s.LastActive)
	e.time(s.ExpiresAt)
	e.int(int64(s.IdleTimeout))
	e.time(s.RotatedAt)
	e.time(s.EndedAt)
	e.uint(s.Version)
	e.uint(s.Generation)
	e.b = append(e.b, s.TokenHash[:]...)
	e.b = append(e.b, s.PrevTokenHash[:]...)
	e.time(s.PrevTokenUntil)
	e.time(s.DisconnectedAt)
	e.uint(uint64(len(s.RetiredTokens)))
	for _, h := range s.RetiredTokens {
		e.b = append(e.b, h[:]...)
	}
	e.time(s.StateSince)
	e.uint(s.Cycle)
	return e.b
}

// DecodeSession decodes a session record. Records of version 2 carried
// the session's connections inside; they are returned apart, for the
// store to move into records of their own.
func DecodeSession(b []byte) (*sessiond.Session, []sessiond.Connection, error) {
	if len(b) == 0 || b[0] < sessionV1 || b[0] > sessionV4 {
		return nil, nil, ErrCorrupt
	}
	d := decoder{b: b[1:]}
	s := &sessiond.Session{
		ID: d.str(), Subject: d.str(), Policy: d.str(),
		Device:   sessiond.Device{ID: d.str(), Type: d.str(), Name: d.str(), IP: d.str(), UserAgent: d.str()},
		Metadata: d.bytes(),
	}
	s.State = sessiond.State(d.uint())
	s.EndReason = sessiond.EndReason(d.str())
	s.CreatedAt, s.LastActive, s.ExpiresAt = d.time(), d.time(), d.time()
	s.IdleTimeout = time.Duration(d.int())
	s.RotatedAt, s.EndedAt = d.time(), d.time()
	s.Version, s.Generation = d.uint(), d.uint()
	s.TokenHash, s.PrevTokenHash = d.hash(), d.hash()
	s.PrevTokenUntil = d.time()
	var conns []sessiond.Connection
	if b[0] >= sessionV2 {
		s.DisconnectedAt = d.time()
	}
	switch b[0] {
	case sessionV2:
		n := d.uint()
		if n > uint64(len(d.b)) { // each connection takes bytes: a bogus count is corruption
			return nil, nil, ErrCorrupt
		}
		for range n {
			conns = append(conns, d.conn())
		}
	case SessionV3, sessionV4:
		n := d.uint()
		if n > sessiond.MaxRetiredTokens || n*32 > uint64(len(d.b)) {
			return nil, nil, ErrCorrupt
		}
		for range n {
			s.RetiredTokens = append(s.RetiredTokens, d.hash())
		}
	}
	if b[0] >= sessionV4 {
		s.StateSince = d.time()
		s.Cycle = d.uint()
	}
	if d.err != nil || len(d.b) != 0 || !s.State.Valid() || !sessiond.ValidID(s.ID) {
		return nil, nil, ErrCorrupt
	}
	return s, conns, nil
}

func (e *encoder) conn(c *sessiond.Connection) {
	e.str(c.ID)
	e.str(c.Kind)
	e.str(c.Node)
	e.str(c.ClientIP)
	e.str(c.UserAgent)
	e.time(c.ConnectedAt)
	e.time(c.LastHeartbeat)
}

func (d *decoder) conn() sessiond.Connection {
	return sessiond.Connection{
		ID: d.str(), Kind: d.str(), Node: d.str(), ClientIP: d.str(), UserAgent: d.str(),
		ConnectedAt: d.time(), LastHeartbeat: d.time(),
	}
}

func EncodeConn(c *sessiond.Connection) []byte {
	e := encoder{b: make([]byte, 0, 96+len(c.UserAgent))}
	e.b = append(e.b, connV1)
	e.conn(c)
	return e.b
}

func DecodeConn(b []byte) (sessiond.Connection, error) {
	if len(b) == 0 || b[0] != connV1 {
		return sessiond.Connection{}, ErrCorrupt
	}
	d := decoder{b: b[1:]}
	c := d.conn()
	if _, err := sessiond.ConnectionSession(c.ID); d.err != nil || len(d.b) != 0 || err != nil {
		return sessiond.Connection{}, ErrCorrupt
	}
	return c, nil
}

func EncodeLease(l *sessiond.NodeLease) []byte {
	e := encoder{b: make([]byte, 0, 32+len(l.Node))}
	e.b = append(e.b, leaseV1)
	e.str(l.Node)
	e.time(l.Until)
	dead := uint64(0)
	if l.Dead {
		dead = 1
	}
	e.uint(dead)
	e.uint(l.Version)
	return e.b
}

func DecodeLease(b []byte) (sessiond.NodeLease, error) {
	if len(b) == 0 || b[0] != leaseV1 {
		return sessiond.NodeLease{}, ErrCorrupt
	}
	d := decoder{b: b[1:]}
	l := sessiond.NodeLease{Node: d.str(), Until: d.time()}
	dead := d.uint()
	l.Dead, l.Version = dead == 1, d.uint()
	if d.err != nil || len(d.b) != 0 || dead > 1 || l.Node == "" {
		return sessiond.NodeLease{}, ErrCorrupt
	}
	return l, nil
}

// EncodeConsumer encodes the record of a consumer of the event log
// (sessiond.Consumers): its name, its owner, the end of the owner's claim
// and its cursor (in its text form).
func EncodeConsumer(name, owner string, until time.Time, cursor sessiond.Cursor) []byte {
	e := encoder{b: make([]byte, 0, 32+len(name)+len(owner))}
	e.b = append(e.b, consumerV1)
	e.str(name)
	e.str(owner)
	e.time(until)
	e.str(cursor.String())
	return e.b
}

// DecodeConsumer decodes what EncodeConsumer encodes.
func DecodeConsumer(b []byte) (name, owner string, until time.Time, cursor sessiond.Cursor, err error) {
	if len(b) == 0 || b[0] != consumerV1 {
		return "", "", time.Time{}, sessiond.Cursor{}, ErrCorrupt
	}
	d := decoder{b: b[1:]}
	name, owner, until = d.str(), d.str(), d.time()
	text := d.str()
	if d.err != nil || len(d.b) != 0 || sessiond.CheckConsumer(name) != nil || owner == "" {
		return "", "", time.Time{}, sessiond.Cursor{}, ErrCorrupt
	}
	if cursor, err = sessiond.ParseCursor(text); err != nil {
		return "", "", time.Time{}, sessiond.Cursor{}, ErrCorrupt
	}
	return name, owner, until, cursor, nil
}

// EncodeEvent encodes an event: in version 3 if it describes its
// connection (Event.Conn), otherwise in version 2, which nodes of the
// versions before connection details still read.
func EncodeEvent(ev *sessiond.Event) []byte {
	e := encoder{b: make([]byte, 0, 96)}
	v := byte(eventV2)
	if ev.Conn != nil {
		v = eventV3
	}
	e.b = append(e.b, v)
	e.str(string(ev.Type))
	e.str(ev.SessionID)
	e.str(ev.Subject)
	e.time(ev.Time)
	e.uint(uint64(ev.State))
	e.str(string(ev.Reason))
	e.uint(ev.Version)
	e.uint(ev.Generation)
	e.str(ev.Connection)
	e.uint(uint64(len(ev.Replaced)))
	for _, r := range ev.Replaced {
		e.str(r)
	}
	if v == eventV3 {
		e.uint(1) // a detail follows (0: none)
		d := ev.Conn
		e.str(d.Kind)
		e.str(d.Node)
		e.str(d.ClientIP)
		e.str(d.UserAgent)
		e.time(d.OpenedAt)
		e.time(d.ClosedAt)
		e.uint(uint64(max(d.CloseCode, 0))) //nolint:gosec // a close code, checked when recorded
		e.str(string(d.CloseReason))
	}
	return e.b
}

func DecodeEvent(b []byte, seq uint64) (sessiond.Event, error) {
	if len(b) == 0 || b[0] < eventV1 || b[0] > eventV3 {
		return sessiond.Event{}, ErrCorrupt
	}
	d := decoder{b: b[1:]}
	ev := sessiond.Event{Seq: seq, Type: sessiond.EventType(d.str()), SessionID: d.str(), Subject: d.str(), Time: d.time()}
	ev.State = sessiond.State(d.uint())
	ev.Reason = sessiond.EndReason(d.str())
	ev.Version, ev.Generation = d.uint(), d.uint()
	if b[0] >= eventV2 {
		ev.Connection = d.str()
		n := d.uint()
		if n > uint64(len(d.b)) {
			return sessiond.Event{}, ErrCorrupt
		}
		for range n {
			ev.Replaced = append(ev.Replaced, d.str())
		}
	}
	if b[0] >= eventV3 {
		switch d.uint() {
		case 0:
		case 1:
			c := &sessiond.ConnDetail{Kind: d.str(), Node: d.str(), ClientIP: d.str(), UserAgent: d.str(), OpenedAt: d.time(), ClosedAt: d.time()}
			code := d.uint()
			if code > 0xffff {
				return sessiond.Event{}, ErrCorrupt
			}
			c.CloseCode, c.CloseReason = int(code), sessiond.CloseReason(d.str())
			ev.Conn = c
		default:
			return sessiond.Event{}, ErrCorrupt
		}
	}
	if d.err != nil || len(d.b) != 0 {
		return sessiond.Event{}, ErrCorrupt
	}
	return ev, nil
}
