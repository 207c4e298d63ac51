package pebble

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/codec"
	"github.com/sessiond/sessiond/internal/memindex"
)

// record is one key and value of the store, with what is wrong with it.
type record struct {
	Key, Value []byte
	Err        error
}

// decodeSessionAt decodes the session record under key k, which must name
// the session it holds (and, in the second format, its connections).
func decodeSessionAt(k, v []byte) (*sessiond.Session, []sessiond.Connection, error) {
	s, conns, err := codec.DecodeSession(v)
	if err != nil {
		return nil, nil, err
	}
	if s.ID != string(k[1:]) {
		return nil, nil, fmt.Errorf("%w: session %q stored under key %q", codec.ErrCorrupt, s.ID, k)
	}
	return s, conns, nil
}

// decodeConnAt decodes the connection record under key k, which must name
// the connection it holds.
func decodeConnAt(k, v []byte) (sessiond.Connection, error) {
	c, err := codec.DecodeConn(v)
	if err != nil {
		return c, err
	}
	if c.ID != string(k[1:]) {
		return c, fmt.Errorf("%w: connection %q stored under key %q", codec.ErrCorrupt, c.ID, k)
	}
	return c, nil
}

// decodeLeaseAt decodes the lease record under key k, which must name its node.
func decodeLeaseAt(k, v []byte) (sessiond.NodeLease, error) {
	l, err := codec.DecodeLease(v)
	if err != nil {
		return l, err
	}
	if l.Node != string(k[1:]) {
		return l, fmt.Errorf("%w: lease of %q stored under key %q", codec.ErrCorrupt, l.Node, k)
	}
	return l, nil
}

// decodeConsumerAt decodes the consumer record under key k, which must
// name the consumer.
func decodeConsumerAt(k, v []byte) (string, memindex.Consumer, error) {
	name, owner, until, cur, err := codec.DecodeConsumer(v)
	if err != nil {
		return "", memindex.Consumer{}, err
	}
	if name != string(k[1:]) {
		return "", memindex.Consumer{}, fmt.Errorf("%w: consumer %q stored under key %q", codec.ErrCorrupt, name, k)
	}
	return name, memindex.Consumer{Owner: owner, Until: until, Cursor: cur}, nil
}

// decodeEventAt decodes the event record under key k.
func decodeEventAt(k, v []byte) (sessiond.Event, error) {
	if len(k) != 9 {
		return sessiond.Event{}, fmt.Errorf("%w: event key %q is not 9 bytes", codec.ErrCorrupt, k)
	}
	return codec.DecodeEvent(v, binary.BigEndian.Uint64(k[1:]))
}

// quarantine moves records that do not decode to the quarantine key space,
// as they are, in one atomic batch, and logs each.
func (s *Store) quarantine(bad []record) error {
	if err := s.setAside(bad); err != nil {
		return fmt.Errorf("pebble: quarantining %d corrupt records: %w", len(bad), err)
	}
	for _, r := range bad {
		kind, id := describeKey(r.Key)
		s.log.Error("pebble: a stored record does not decode: quarantined; the store opens without it",
			"component", "pebble", "kind", kind, "record", id, "bytes", len(r.Value), "err", r.Err)
	}
	return nil
}

// setAsideOrphans moves connection records whose session is not held live
// (memindex.Index.Load did not install them) to the quarantine key space
// too, and logs them in one line. Such a record is left by a session
// record quarantined (or lost) with its connections still stored: set
// aside, it counts nowhere, is not read again at the next open, and does
// not come back with its session if that record is restored by hand (the
// connections it names are long gone). The record is written back as
// its decoded form encodes.
func (s *Store) setAsideOrphans(conns []sessiond.Connection) error {
	if len(conns) == 0 {
		return nil
	}
	recs := make([]record, len(conns))
	sessions := map[string]bool{}
	for i := range conns {
		recs[i] = record{Key: connKey(conns[i].ID), Value: codec.EncodeConn(&conns[i])}
		sid, _ := sessiond.ConnectionSession(conns[i].ID)
		sessions[sid] = true
	}
	if err := s.setAside(recs); err != nil {
		return fmt.Errorf("pebble: setting aside %d connections of sessions not stored: %w", len(recs), err)
	}
	sample := make([]string, 0, min(len(sessions), 5))
	for sid := range sessions {
		if len(sample) == cap(sample) {
			break
		}
		sample = append(sample, "sid:"+sessiond.LogID(sid))
	}
	s.log.Warn("pebble: connection records whose session is not stored live (quarantined, lost or ended): quarantined; they count nowhere",
		"component", "pebble", "connections", len(conns), "sessions", len(sessions), "some", sample)
	return nil
}

// setAside moves records to the quarantine key space, as they are, in one
// atomic batch, and counts them.
func (s *Store) setAside(recs []record) error {
	if len(recs) == 0 {
		return nil
	}
	b := s.db.NewBatch()
	defer func() {
		select {
		case <-s.health.failed: // Pebble may still hold the batch: leave it
		default:
			_ = b.Close()
		}
	}()
	for _, r := range recs {
		if err := b.Set(quarantineKey(r.Key), r.Value, nil); err != nil {
			return err
		}
		if err := b.Delete(r.Key, nil); err != nil {
			return err
		}
	}
	if err := s.health.commit(b); err != nil {
		return err
	}
	s.quarantined.Add(int64(len(recs)))
	return nil
}

func quarantineKey(k []byte) []byte {
	return append([]byte{prefixQuar}, k...)
}

// describeKey names the kind of record under k, and the record as a log
// line may show it: a session's id hashed (sessiond.LogID), an event's
// sequence number.
func describeKey(k []byte) (kind, id string) {
	switch {
	case len(k) > 0 && k[0] == prefixSession:
		return "session", "sid:" + sessiond.LogID(string(k[1:]))
	case len(k) > 0 && k[0] == prefixConn:
		sid, _ := sessiond.ConnectionSession(string(k[1:]))
		return "connection", "sid:" + sessiond.LogID(sid)
	case len(k) > 0 && k[0] == prefixLease:
		return "lease", "node:" + string(k[1:])
	case len(k) > 0 && k[0] == prefixConsumer:
		return "consumer", "consumer:" + string(k[1:])
	case len(k) == 9 && k[0] == prefixEvent:
		return "event", fmt.Sprintf("seq:%d", binary.BigEndian.Uint64(k[1:]))
	case len(k) > 0 && k[0] == prefixEvent:
		return "event", fmt.Sprintf("key:%x", k)
	}
	return "unknown", fmt.Sprintf("key:%x", k)
}

// Record is a record Check found wrong.
type Record struct {
	Key   []byte // its key (for a quarantined record, the key it had)
	Kind  string // session, connection, lease, consumer, event or unknown
	Size  int    // bytes of its value
	Error string // why it does not decode
}

// CheckReport is what Check found in a store.
type CheckReport struct {
	Dir         string
	Format      string // the data format marker
	WantFormat  string // the format this build reads
	Sessions    int    // session records that decode
	Connections int    // connection records that decode
	Leases      int    // lease records that decode
	Consumers   int    // consumer records (of the event log) that decode
	Events      int    // event records that decode
	// Corrupt records do not decode; the next Open quarantines them.
	Corrupt []Record
	// Quarantined records were set aside by an earlier Open.
	Quarantined []Record
	// Unknown counts records under no known prefix.
	Unknown int
}

// OK reports whether the store holds no corrupt, quarantined or unknown
// record and its format is the one this build reads.
func (r *CheckReport) OK() bool {
	return r.Format == format && len(r.Corrupt) == 0 && len(r.Quarantined) == 0 && r.Unknown == 0
}

// Check reads every record of the store in dir and reports those that do
// not decode and those quarantined, without changing anything. The store
// must be closed: Pebble locks its directory, and Check says so if another
// process holds it.
func Check(ctx context.Context, dir string) (_ *CheckReport, err error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("pebble: no store in %s: %w", dir, err)
	}
	h := newHealth(dir, -1, discard)
	defer h.close()
	db, err := openDB(ctx, dir, h, &cpebble.Options{
		ReadOnly:      true,
		Logger:        logger{l: discard, health: h},
		EventListener: h.listener(),
	})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	r := &CheckReport{Dir: dir, WantFormat: format}
	v, closer, err := db.Get(metaFormat)
	switch {
	case errors.Is(err, cpebble.ErrNotFound):
		r.Format = "(none)"
	case err != nil:
		return nil, fmt.Errorf("pebble: reading format marker: %w", err)
	default:
		r.Format = string(v)
		if err := closer.Close(); err != nil {
			return nil, err
		}
	}
	bad := func(k []byte, size int, err error) Record {
		kind, _ := describeKey(k)
		return Record{Key: append([]byte(nil), k...), Kind: kind, Size: size, Error: err.Error()}
	}
	err = scanRange(ctx, db, &cpebble.IterOptions{}, func(k, v []byte) {
		if len(k) == 0 {
			r.Unknown++
			return
		}
		switch k[0] {
		case prefixSession:
			if _, _, err := decodeSessionAt(k, v); err != nil {
				r.Corrupt = append(r.Corrupt, bad(k, len(v), err))
			} else {
				r.Sessions++
			}
		case prefixConn:
			if _, err := decodeConnAt(k, v); err != nil {
				r.Corrupt = append(r.Corrupt, bad(k, len(v), err))
			} else {
				r.Connections++
			}
		case prefixLease:
			if _, err := decodeLeaseAt(k, v); err != nil {
				r.Corrupt = append(r.Corrupt, bad(k, len(v), err))
			} else {
				r.Leases++
			}
		case prefixConsumer:
			if _, _, err := decodeConsumerAt(k, v); err != nil {
				r.Corrupt = append(r.Corrupt, bad(k, len(v), err))
			} else {
				r.Consumers++
			}
		case prefixEvent:
			if _, err := decodeEventAt(k, v); err != nil {
				r.Corrupt = append(r.Corrupt, bad(k, len(v), err))
			} else {
				r.Events++
			}
		case prefixQuar:
			orig := k[1:]
			var err error
			switch kind, _ := describeKey(orig); kind {
			case "session":
				_, _, err = decodeSessionAt(orig, v)
			case "connection":
				_, err = decodeConnAt(orig, v)
			case "lease":
				_, err = decodeLeaseAt(orig, v)
			case "consumer":
				_, _, err = decodeConsumerAt(orig, v)
			case "event":
				_, err = decodeEventAt(orig, v)
			}
			switch {
			case err == nil && len(orig) > 0 && orig[0] == prefixConn:
				err = errors.New("a connection whose session was not stored live when the store opened (quarantined, lost or ended)")
			case err == nil:
				err = errors.New("decodes now: quarantined by an earlier build or by hand")
			}
			r.Quarantined = append(r.Quarantined, bad(orig, len(v), err))
		case prefixMeta:
		default:
			r.Unknown++
		}
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}
