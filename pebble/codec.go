package pebble

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
	sessionV1 = 1
	sessionV2 = 2 // + DisconnectedAt, Conns
	eventV1   = 1
	eventV2   = 2 // + Connection, Replaced
)

var errCorrupt = errors.New("corrupt record")

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

func (d *decoder) fail() { d.err, d.b = errCorrupt, nil }

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

func encodeSession(s *sessiond.Session) []byte {
	e := encoder{b: make([]byte, 0, 192+len(s.Metadata))}
	e.b = append(e.b, sessionV2)
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
	e.uint(uint64(len(s.Conns)))
	for _, c := range s.Conns {
		e.str(c.ID)
		e.str(c.Kind)
		e.str(c.Node)
		e.str(c.ClientIP)
		e.str(c.UserAgent)
		e.time(c.ConnectedAt)
		e.time(c.LastHeartbeat)
	}
	return e.b
}

func decodeSession(b []byte) (*sessiond.Session, error) {
	if len(b) == 0 || b[0] != sessionV1 && b[0] != sessionV2 {
		return nil, errCorrupt
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
	if b[0] >= sessionV2 {
		s.DisconnectedAt = d.time()
		n := d.uint()
		if n > uint64(len(d.b)) { // each connection takes bytes: a bogus count is corruption
			return nil, errCorrupt
		}
		for range n {
			s.Conns = append(s.Conns, sessiond.Connection{
				ID: d.str(), Kind: d.str(), Node: d.str(), ClientIP: d.str(), UserAgent: d.str(),
				ConnectedAt: d.time(), LastHeartbeat: d.time(),
			})
		}
	}
	if d.err != nil || len(d.b) != 0 || !s.State.Valid() || !sessiond.ValidID(s.ID) {
		return nil, errCorrupt
	}
	return s, nil
}

func encodeEvent(ev *sessiond.Event) []byte {
	e := encoder{b: make([]byte, 0, 96)}
	e.b = append(e.b, eventV2)
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
	return e.b
}

func decodeEvent(b []byte, seq uint64) (sessiond.Event, error) {
	if len(b) == 0 || b[0] != eventV1 && b[0] != eventV2 {
		return sessiond.Event{}, errCorrupt
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
			return sessiond.Event{}, errCorrupt
		}
		for range n {
			ev.Replaced = append(ev.Replaced, d.str())
		}
	}
	if d.err != nil || len(d.b) != 0 {
		return sessiond.Event{}, errCorrupt
	}
	return ev, nil
}
