// Package pebble is the embedded durable Store: sessions and their event log
// in a Pebble database in one directory, no server to run.
//
// Writes are acknowledged only after they are fsynced. Concurrent writes are
// group-committed: one goroutine gathers whatever is waiting, writes it as
// one batch and syncs once, so many writers share each fsync. That goroutine
// also assigns event sequence numbers, which therefore follow commit order
// without gaps.
//
// All sessions, their connections and the nodes' leases are also held in
// memory (internal/memindex), loaded when the store opens, so reads (a
// validation's token lookup above all) never touch disk. Ended sessions are deleted by the engine after their retention, and
// the event log is trimmed to its retention with range deletions as it
// grows; Pebble's compactions reclaim the space. Nothing is ever scanned on
// a timer.
//
// # The disk
//
// The store keeps Options.MinFreeBytes free on its filesystem (256 MiB by
// default): below it, every write fails with sessiond.ErrStoreFull and
// stores nothing, reads go on, and writes resume by themselves once space
// is back. The free space is read at most every 250 ms while there is
// plenty, and on every group commit once it is below twice the threshold.
// Open refuses to open below the threshold (a *SpaceError), because Pebble,
// opening on a full disk, retries its flushes forever.
//
// What Pebble does if the disk fills up all the same (the threshold off or
// another process filling the disk): a failed flush or compaction is
// retried in a loop without pause, and writes stall in Pebble once its
// memtables are full; the store then refuses new writes with
// ErrStoreFull, logs the repeats at most every 10 s, and accepts writes
// again after a flush or compaction succeeds or 64 MiB (or the threshold,
// if higher) are free. A failed write of Pebble's log (WAL) or manifest is
// fatal to Pebble: its error sticks and the database accepts no more
// writes. The store then refuses every write (store_full for ENOSPC,
// unavailable otherwise) until the process restarts, and reads go on
// from memory; nothing acknowledged is lost, for it was fsynced.
//
// # Corrupt records
//
// A session or event record that does not decode is moved, as it is, to a
// quarantine key space when the store opens ('q' followed by its key),
// logged and counted (DiskStats.Quarantined), and the store opens with the
// rest. The connection records of a session that is not stored live (its
// record quarantined, now or by an earlier open) are moved there too,
// logged in one line and counted: they count nowhere else, and do not come
// back if the session record is restored by hand. Check lists corrupt and
// quarantined records of a closed store.
package pebble

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/codec"
	"github.com/sessiond/sessiond/internal/memindex"
)

// DefaultEventRetention is how many events the log keeps when Options leave it zero.
const DefaultEventRetention = 100_000

// Options configure a Store.
type Options struct {
	// Dir is the database directory; it is created if missing. Required.
	Dir string
	// EventRetention is how many of the newest events Events can return
	// at least (up to a sixteenth more are kept: the log is trimmed in
	// chunks). 0 means DefaultEventRetention.
	EventRetention int
	// Logger receives Pebble's own messages at debug level (errors at
	// error level), and the store's about its disk and corrupt records.
	// nil discards them.
	Logger *slog.Logger
	// MinFreeBytes is the free space the store keeps on its filesystem:
	// below it, writes fail with sessiond.ErrStoreFull and Open refuses to
	// open (see the package doc). 0 means DefaultMinFreeBytes (256 MiB);
	// a negative value turns the check off.
	MinFreeBytes int64

	memTableSize uint64 // 0: 32 MiB; tests set it to fill a disk with flushes
	migrate      migrateOptions
}

// Key space. One byte of prefix per kind of record.
const (
	prefixSession  = 's' // s<id> -> session record (codec.go)
	prefixConn     = 'c' // c<connection id> -> connection record (its id names its session)
	prefixEvent    = 'e' // e<seq, 8 bytes big-endian> -> event record (codec.go)
	prefixLease    = 'n' // n<node> -> lease record
	prefixConsumer = 'f' // f<name> -> a consumer of the event log (sessiond.Consumers): owner, claim, cursor
	prefixMeta     = 'm' // m<name> -> value
	prefixQuar     = 'q' // q<key> -> a record that did not decode, as found under key
	maxGroup       = 512 // writes per group commit at most
)

var metaFormat = []byte("mformat")

const format = "1"

// Store is the embedded durable sessiond.Store.
type Store struct {
	memindex.Reads // every read: from memory
	leases         memindex.Leases
	consumers      memindex.Consumers

	db     *cpebble.DB
	retain uint64
	log    *slog.Logger
	health *health

	quarantined atomic.Int64 // records in the quarantine key space
	migrate     migrateOptions

	ops     chan *op
	closing chan struct{}
	wg      sync.WaitGroup
	closed  atomic.Bool
	closeMu sync.RWMutex // held shared by writers in flight, exclusively by Close

	seq     uint64        // last assigned event Seq; committer goroutine only
	trimmed uint64        // events up to here are deleted; committer only
	last    atomic.Uint64 // last published event Seq: its change is in the index

	// tail holds the newest committed events, so that readers following
	// the log (the event bus reads after every commit) do not open a
	// Pebble iterator each time.
	tail *memindex.EventRing
}

// tailSize is how many of the newest events the store also keeps in memory.
const tailSize = 8192

var (
	_ sessiond.Store       = (*Store)(nil)
	_ sessiond.EventWaiter = (*Store)(nil)
	_ sessiond.Consumers   = (*Store)(nil)
)

// op is one caller's write, handed to the committer.
type op struct {
	sets   [][2][]byte      // key, value
	dels   [][]byte         // keys
	events []sessiond.Event // Seq filled in by the committer
	enc    [][]byte         // events, encoded by the caller
	apply  func()           // publishes the change in memory once durable
	done   chan error
}

// Open opens (or creates) the store in opts.Dir and loads its sessions.
func Open(opts Options) (*Store, error) {
	return OpenContext(context.Background(), opts)
}

// OpenContext is Open giving up when ctx is done: opening Pebble cannot be
// interrupted, so it goes on in the background and the database is closed
// when it opens; loading stops between records.
func OpenContext(ctx context.Context, opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("pebble: Options.Dir is required")
	}
	if opts.EventRetention <= 0 {
		opts.EventRetention = DefaultEventRetention
	}
	log := opts.Logger
	if log == nil {
		log = discard
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("pebble: %w", err)
	}
	return openStore(ctx, opts, log, newHealth(opts.Dir, opts.MinFreeBytes, log))
}

// openStore is OpenContext once the options are checked, with h, which
// it owns from then on: when it fails, it leaves nothing running of what
// it started (h's space watcher, Pebble).
func openStore(ctx context.Context, opts Options, log *slog.Logger, h *health) (_ *Store, err error) {
	defer func() {
		if err != nil {
			h.close() // stops a space watcher that Pebble's open may have started
		}
	}()
	if err := h.checkOpen(); err != nil {
		return nil, err
	}
	db, err := openDB(ctx, opts.Dir, h, &cpebble.Options{
		FormatMajorVersion: cpebble.FormatNewest,
		MemTableSize:       cmp.Or(opts.memTableSize, 32<<20),
		Logger:             logger{l: log, health: h},
		EventListener:      h.listener(),
	})
	if err != nil {
		return nil, err
	}
	s := &Store{
		db:      db,
		retain:  uint64(opts.EventRetention),
		log:     log,
		health:  h,
		ops:     make(chan *op, maxGroup),
		closing: make(chan struct{}),
		tail:    memindex.NewEventRing(min(tailSize, opts.EventRetention)),
		migrate: opts.migrate,
	}
	nudge := func() {
		if _, err := db.AsyncFlush(); err != nil {
			log.Warn("pebble: asking for a flush once space was back", "component", "pebble", "err", err)
		}
	}
	h.nudge.Store(&nudge)
	s.Reads = memindex.Reads{Index: memindex.New(), Lease: &s.leases, Check: s.check}
	if err := s.load(ctx); err != nil {
		h.close() // before Pebble closes: the watcher asks it to flush
		return nil, errors.Join(err, closeDB(db, h))
	}
	s.wg.Add(1)
	go s.commitLoop()
	return s, nil
}

// openDB opens Pebble, giving up when ctx is done or Pebble fails fatally
// while opening.
func openDB(ctx context.Context, dir string, h *health, o *cpebble.Options) (*cpebble.DB, error) {
	type opened struct {
		db  *cpebble.DB
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		var r opened
		// Sent even if Pebble's Fatalf ends this goroutine (runtime.Goexit
		// runs deferred calls), for closeLater.
		defer func() { ch <- r }()
		r.db, r.err = cpebble.Open(dir, o)
	}()
	// closeLater closes the database if Pebble opens it after all.
	closeLater := func() {
		if r := <-ch; r.db != nil {
			_ = closeDB(r.db, h)
		}
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("pebble: open %s: %w", dir, inUse(r.err))
		}
		if r.db == nil { // the open ended in Pebble's Fatalf
			return nil, fmt.Errorf("pebble: open %s: %w", dir, h.failure)
		}
		return r.db, nil
	case <-h.failed:
		go closeLater()
		return nil, fmt.Errorf("pebble: open %s: %w", dir, h.failure)
	case <-ctx.Done():
		go closeLater()
		return nil, fmt.Errorf("pebble: open %s: gave up: %w", dir, context.Cause(ctx))
	}
}

// inUse explains the error of a directory locked by another process.
func inUse(err error) error {
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) || strings.Contains(err.Error(), "lock held by current process") {
		return fmt.Errorf("the store is in use by another process (is sessiond serve running on it? stop it first): %w", err)
	}
	return err
}

// closeDB closes Pebble, giving up after closeWait: Pebble waits for its
// flushes, which a full disk can make retry forever, and after a fatal
// error it may never finish. The process's exit then releases it; nothing
// acknowledged is lost.
func closeDB(db *cpebble.DB, h *health) error {
	done := make(chan error, 1)
	go func() { done <- db.Close() }()
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case err := <-done:
		select {
		case <-h.failed:
			return errors.Join(err, h.failure)
		default:
		}
		return err
	case <-t.C:
		return fmt.Errorf("pebble: closing %s: gave up after %v (a full disk or a failed write holds Pebble); what was acknowledged is on disk", h.dir, closeWait)
	}
}

// load checks the format marker, fills the index and the event counters,
// and quarantines records that do not decode. It stops when ctx is done.
func (s *Store) load(ctx context.Context) error {
	v, closer, err := s.db.Get(metaFormat)
	switch {
	case errors.Is(err, cpebble.ErrNotFound):
		b := s.db.NewBatch()
		if err := b.Set(metaFormat, []byte(format), nil); err != nil {
			return err
		}
		if err := s.health.commit(b); err != nil {
			return fmt.Errorf("pebble: writing format marker: %w", err)
		}
		if err := b.Close(); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("pebble: reading format marker: %w", err)
	default:
		got := string(v)
		if err := closer.Close(); err != nil {
			return err
		}
		if got != format {
			return fmt.Errorf("pebble: data format %q, this build reads %q", got, format)
		}
	}

	var bad []record
	var orphans []sessiond.Connection
	if err := s.loadSessions(ctx, &bad, &orphans); err != nil {
		return err
	}
	err = scan(ctx, s.db, prefixLease, func(k, v []byte) {
		l, err := decodeLeaseAt(k, v)
		if err != nil {
			bad = append(bad, record{Key: bytes.Clone(k), Value: bytes.Clone(v), Err: err})
			return
		}
		s.leases.Put(l)
	})
	if err != nil {
		return err
	}
	err = scan(ctx, s.db, prefixConsumer, func(k, v []byte) {
		name, rec, err := decodeConsumerAt(k, v)
		if err != nil {
			bad = append(bad, record{Key: bytes.Clone(k), Value: bytes.Clone(v), Err: err})
			return
		}
		s.consumers.Put(name, rec)
	})
	if err != nil {
		return err
	}

	first, last := uint64(0), uint64(0)
	err = scan(ctx, s.db, prefixEvent, func(k, v []byte) {
		if len(k) == 9 { // a sequence number, whatever the value
			seq := binary.BigEndian.Uint64(k[1:])
			last = max(last, seq)
			if first == 0 {
				first = seq
			}
		}
		if _, err := decodeEventAt(k, v); err != nil {
			bad = append(bad, record{Key: bytes.Clone(k), Value: bytes.Clone(v), Err: err})
		}
	})
	if err != nil {
		return err
	}
	if first > 0 {
		s.seq, s.trimmed = last, first-1
	}
	s.last.Store(s.seq)

	n := 0
	if err := scan(ctx, s.db, prefixQuar, func(k, v []byte) { n++ }); err != nil {
		return err
	}
	s.quarantined.Store(int64(n))
	if err := s.quarantine(bad); err != nil {
		return err
	}
	return s.setAsideOrphans(orphans)
}

// scan calls f with every record under prefix (valid only during the call:
// f copies what it keeps), and gives up when ctx is done.
func scan(ctx context.Context, db *cpebble.DB, prefix byte, f func(k, v []byte)) error {
	return scanRange(ctx, db, &cpebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}}, f)
}

// scanRange is scan over the records o bounds.
func scanRange(ctx context.Context, db *cpebble.DB, o *cpebble.IterOptions, f func(k, v []byte)) (err error) {
	it, err := db.NewIter(o)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, it.Close()) }()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		if n++; n%4096 == 0 {
			if err := context.Cause(ctx); err != nil {
				return fmt.Errorf("pebble: loading: gave up: %w", err)
			}
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("pebble: reading %q: %w", it.Key(), err)
		}
		f(it.Key(), v)
	}
	return it.Error()
}

// loadSessions fills the index with the sessions and their connections;
// records that do not decode are added to bad, connections of no live
// session (memindex.Index.Load) to orphans. Records of the first and
// second formats are rewritten in the third as they are met (migration):
// the second held a session's connections inside, which move into records
// of their own. The connections are read once the migration is done, so
// those it moved load with the others.
func (s *Store) loadSessions(ctx context.Context, bad *[]record, orphans *[]sessiond.Connection) error {
	batch := make([]*sessiond.Session, 0, 1024)
	m := &migration{s: s}
	defer m.drop()
	err := scan(ctx, s.db, prefixSession, func(k, v []byte) {
		sess, conns, err := decodeSessionAt(k, v)
		if err != nil {
			*bad = append(*bad, record{Key: bytes.Clone(k), Value: bytes.Clone(v), Err: err})
			return
		}
		if v[0] < codec.SessionV3 {
			m.add(sess, conns)
		}
		if batch = append(batch, sess); len(batch) == cap(batch) {
			s.Index.Load(batch, nil)
			batch = batch[:0]
		}
	})
	if err = errors.Join(err, m.finish()); err != nil {
		return err
	}
	s.Index.Load(batch, nil)
	conns := make([]sessiond.Connection, 0, 1024)
	err = scan(ctx, s.db, prefixConn, func(k, v []byte) {
		c, err := decodeConnAt(k, v)
		if err != nil {
			*bad = append(*bad, record{Key: bytes.Clone(k), Value: bytes.Clone(v), Err: err})
			return
		}
		if conns = append(conns, c); len(conns) == cap(conns) {
			*orphans = append(*orphans, s.Index.Load(nil, conns)...)
			conns = conns[:0]
		}
	})
	*orphans = append(*orphans, s.Index.Load(nil, conns)...)
	return err
}

// Migration batches: at most this many keys or bytes, whichever comes
// first (one session's records are never split).
const (
	migrateKeys  = 10_000
	migrateBytes = 4 << 20
)

// migrateOptions let tests make migration batches small and stop a
// migration between two of them.
type migrateOptions struct {
	keys       int                   // 0: migrateKeys
	afterBatch func(batch int) error // called after each batch is committed; an error stops the open
}

// migration rewrites session records of the older formats in the third,
// as loadSessions meets them, in synced batches of bounded size
// (migrateKeys, migrateBytes), so that a big store migrates without one
// unbounded batch.
//
// It is restartable: a session's rewritten record and the records of the
// connections it held go in the same batch, so a crash, or a commit that
// fails, leaves each session either migrated (its record in the third
// format, its connections in records of their own) or as it was (its
// connections inside its old record). The next open migrates what is
// left, and never touches a record of the third format again: no marker
// is needed, and reading a store half migrated is reading a store of both
// formats, which the decoder does.
type migration struct {
	s       *Store
	b       *cpebble.Batch // nil between batches
	err     error          // the first failure: what remains is left as it was
	batches int
	// sessions and connections rewritten, for the log
	sessions, conns int
}

// add puts a session's rewritten record, and its connections' if it is
// live (an ended session has none), in the batch, and commits the batch
// once it is full.
func (m *migration) add(sess *sessiond.Session, conns []sessiond.Connection) {
	if m.err != nil {
		return
	}
	if m.b == nil {
		m.b = m.s.db.NewBatch()
	}
	m.err = m.b.Set(sessionKey(sess.ID), codec.EncodeSession(sess), nil)
	for i := range conns {
		if m.err == nil && sess.State.Live() {
			m.err = m.b.Set(connKey(conns[i].ID), codec.EncodeConn(&conns[i]), nil)
			m.conns++
		}
	}
	m.sessions++
	if m.err == nil && (int(m.b.Count()) >= cmp.Or(m.s.migrate.keys, migrateKeys) || m.b.Len() >= migrateBytes) {
		m.err = m.commit()
	}
}

// commit makes the batch durable.
func (m *migration) commit() error {
	if m.b == nil {
		return nil
	}
	if err := m.s.health.commit(m.b); err != nil {
		return fmt.Errorf("pebble: moving connections into records of their own: %w", err)
	}
	m.drop()
	m.batches++
	if f := m.s.migrate.afterBatch; f != nil {
		return f(m.batches)
	}
	return nil
}

// finish commits what is left and logs what the migration did. It
// returns the migration's first failure.
func (m *migration) finish() error {
	if m.err == nil {
		m.err = m.commit()
	}
	if m.err == nil && m.sessions > 0 {
		m.s.log.Info("pebble: session records rewritten in the current format, their connections moved into records of their own",
			"component", "pebble", "sessions", m.sessions, "connections", m.conns, "batches", m.batches)
	}
	return m.err
}

// drop lets go of the batch, unless Pebble failed and may still hold it.
func (m *migration) drop() {
	if m.b == nil {
		return
	}
	select {
	case <-m.s.health.failed:
	default:
		_ = m.b.Close()
	}
	m.b = nil
}

// commitLoop is the group committer: it takes every waiting op, writes them
// and their events in one batch, syncs once, applies every change to the
// index, then publishes the events (the tail ring, then s.last), and
// answers.
func (s *Store) commitLoop() {
	defer s.wg.Done()
	group := make([]*op, 0, maxGroup)
	for {
		select {
		case first := <-s.ops:
			group = append(group[:0], first)
		case <-s.closing:
			return
		}
	gather:
		for len(group) < maxGroup {
			select {
			case o := <-s.ops:
				group = append(group, o)
			default:
				break gather
			}
		}
		err := s.health.admit(len(group))
		if err == nil {
			err = s.commit(group)
		}
		if err == nil {
			// Every change of the group is in the index before any of
			// its events can be read: a reader woken by an event (the
			// event bus) reads the session at least at that version.
			for _, o := range group {
				o.apply()
			}
			s.remember(group)
			s.last.Store(s.seq)
		}
		for _, o := range group {
			o.done <- err
		}
	}
}

func (s *Store) commit(group []*op) (err error) {
	b := s.db.NewBatch()
	defer func() {
		select {
		case <-s.health.failed:
			// Pebble may still hold the batch: leave it.
		default:
			err = errors.Join(err, b.Close())
		}
		if err != nil {
			for _, o := range group {
				for i := range o.events {
					o.events[i].Seq = 0
				}
			}
		}
	}()
	seq := s.seq
	for _, o := range group {
		for _, kv := range o.sets {
			if err := b.Set(kv[0], kv[1], nil); err != nil {
				return err
			}
		}
		for _, k := range o.dels {
			if err := b.Delete(k, nil); err != nil {
				return err
			}
		}
		for i := range o.events {
			seq++
			o.events[i].Seq = seq
			if err := b.Set(eventKey(seq), o.enc[i], nil); err != nil {
				return err
			}
		}
	}
	// Trim in chunks of a sixteenth of the retention: every range deletion
	// stays in the memtable until a flush, and each costs readers of the
	// log, so there must be few of them, not one per commit.
	trimTo := s.trimmed
	chunk := max(s.retain/16, 1)
	if seq > s.retain && seq-s.retain >= s.trimmed+chunk {
		trimTo = seq - s.retain
		if err := b.DeleteRange(eventKey(s.trimmed+1), eventKey(trimTo+1), nil); err != nil {
			return err
		}
	}
	if err := s.health.commit(b); err != nil {
		return fmt.Errorf("pebble: commit: %w", err)
	}
	s.seq, s.trimmed = seq, trimTo
	return nil
}

// remember puts a committed group's events in the tail ring.
func (s *Store) remember(group []*op) {
	for _, o := range group {
		s.tail.Append(o.events)
	}
}

// write hands o to the committer and waits until it is durable and applied.
// The caller is inside begin, so Close cannot stop the committer before o
// is answered: Close closes s.closing only once every writer has ended.
func (s *Store) write(ctx context.Context, o *op) error {
	for i := range o.events {
		o.enc = append(o.enc, codec.EncodeEvent(&o.events[i]))
	}
	o.done = make(chan error, 1)
	select {
	case s.ops <- o:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued, the write happens whatever ctx says: wait for it, so that
	// the caller's locks cover it.
	return <-o.done
}

// begin guards a write against a concurrent Close; call the returned func
// when done.
func (s *Store) begin(ctx context.Context) (func(), error) {
	if s.closed.Load() { // before waiting behind a Close
		return nil, sessiond.ErrUnavailable
	}
	s.closeMu.RLock()
	if s.closed.Load() {
		s.closeMu.RUnlock()
		return nil, sessiond.ErrUnavailable
	}
	if err := ctx.Err(); err != nil {
		s.closeMu.RUnlock()
		return nil, err
	}
	return s.closeMu.RUnlock, nil
}

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return sessiond.ErrUnavailable
	}
	return ctx.Err()
}

// Create implements sessiond.Store.
func (s *Store) Create(ctx context.Context, c sessiond.Change, lim sessiond.Limit) ([]*sessiond.Session, error) {
	end, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	c.Session = c.Session.Clone()
	defer s.Index.Lock(c.Session.Subject).Unlock()
	plan, err := s.Index.PlanCreate(c, lim, true)
	if err != nil {
		return nil, err
	}
	defer plan.Release()
	changes := plan.Changes(c)
	o := &op{events: plan.Events}
	for _, ch := range changes {
		s.writeChange(o, ch)
	}
	o.apply = func() { s.Index.Apply(changes, nil) }
	if err := s.write(ctx, o); err != nil {
		return nil, err
	}
	copy(c.Events, plan.Events[len(plan.Events)-len(c.Events):])
	return plan.Evicted, nil
}

// writeChange adds c's records to o: the session, its connections, and
// the deletion of those it loses (all of them when it leaves the live
// states). The caller holds the session's subject lock.
func (s *Store) writeChange(o *op, c sessiond.Change) {
	o.sets = append(o.sets, [2][]byte{sessionKey(c.Session.ID), codec.EncodeSession(c.Session)})
	if !c.Session.State.Live() {
		for _, conn := range s.Index.Conns(c.Session.ID) {
			o.dels = append(o.dels, connKey(conn.ID))
		}
		return
	}
	for _, id := range c.DropConns {
		o.dels = append(o.dels, connKey(id))
	}
	for i := range c.PutConns {
		o.sets = append(o.sets, [2][]byte{connKey(c.PutConns[i].ID), codec.EncodeConn(&c.PutConns[i])})
	}
}

// Update implements sessiond.Store.
func (s *Store) Update(ctx context.Context, c sessiond.Change) error {
	end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	c.Session = c.Session.Clone()
	defer s.Index.Lock(c.Session.Subject).Unlock()
	if err := s.Index.CheckUpdate(c); err != nil {
		return err
	}
	o := &op{events: c.Events, apply: func() { s.Index.Apply([]sessiond.Change{c}, nil) }}
	s.writeChange(o, c)
	return s.write(ctx, o)
}

// Delete implements sessiond.Store.
func (s *Store) Delete(ctx context.Context, id string, version uint64) error {
	end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	subject, ok := s.Index.SubjectOf(id)
	if !ok {
		return sessiond.ErrNotFound
	}
	defer s.Index.Lock(subject).Unlock()
	if err := s.Index.CheckDelete(id, version); err != nil {
		return err
	}
	o := &op{
		dels:  [][]byte{sessionKey(id)},
		apply: func() { s.Index.Apply(nil, []string{id}) },
	}
	for _, conn := range s.Index.Conns(id) {
		o.dels = append(o.dels, connKey(conn.ID))
	}
	return s.write(ctx, o)
}

// PutLease implements sessiond.Store.
func (s *Store) PutLease(ctx context.Context, l sessiond.NodeLease) error {
	end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	defer s.leases.Lock()()
	if err := s.leases.CheckPut(l); err != nil {
		return err
	}
	return s.write(ctx, &op{
		sets:  [][2][]byte{{leaseKey(l.Node), codec.EncodeLease(&l)}},
		apply: func() { s.leases.Put(l) },
	})
}

// DeleteLease implements sessiond.Store.
func (s *Store) DeleteLease(ctx context.Context, node string, version uint64) error {
	end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	defer s.leases.Lock()()
	if err := s.leases.CheckDelete(node, version); err != nil {
		return err
	}
	return s.write(ctx, &op{
		dels:  [][]byte{leaseKey(node)},
		apply: func() { s.leases.Delete(node) },
	})
}

// ClaimConsumer implements sessiond.Consumers: the claim is durable
// (fsynced) before it is answered.
func (s *Store) ClaimConsumer(ctx context.Context, name, owner string, start sessiond.Cursor, now time.Time, ttl time.Duration) (sessiond.Cursor, error) {
	if err := sessiond.CheckConsumerCall(name, owner, start, 1, ttl, true); err != nil {
		return sessiond.Cursor{}, err
	}
	end, err := s.begin(ctx)
	if err != nil {
		return sessiond.Cursor{}, err
	}
	defer end()
	defer s.consumers.Lock()()
	rec, err := s.consumers.Claim(name, owner, start, now, ttl)
	if err != nil {
		return sessiond.Cursor{}, err
	}
	if err := s.writeConsumer(ctx, name, rec); err != nil {
		return sessiond.Cursor{}, err
	}
	return rec.Cursor, nil
}

// CommitConsumer implements sessiond.Consumers: the cursor is durable
// (fsynced) before the call returns.
func (s *Store) CommitConsumer(ctx context.Context, name, owner string, c sessiond.Cursor, now time.Time, ttl time.Duration) error {
	if err := sessiond.CheckConsumerCall(name, owner, c, 1, ttl, false); err != nil {
		return err
	}
	end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	defer s.consumers.Lock()()
	rec, err := s.consumers.Commit(name, owner, c, now, ttl)
	if err != nil {
		return err
	}
	return s.writeConsumer(ctx, name, rec)
}

// writeConsumer makes a consumer's record durable, then installs it. The
// caller holds the consumers' lock.
func (s *Store) writeConsumer(ctx context.Context, name string, rec memindex.Consumer) error {
	return s.write(ctx, &op{
		sets:  [][2][]byte{{consumerKey(name), codec.EncodeConsumer(name, rec.Owner, rec.Until, rec.Cursor)}},
		apply: func() { s.consumers.Put(name, rec) },
	})
}

// Events implements sessiond.Store: one partition.
func (s *Store) Events(ctx context.Context, cur sessiond.Cursor, limit int) (_ []sessiond.Event, err error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if err := cur.Within(1); err != nil {
		return nil, err
	}
	after := cur.Seq(0)
	last := s.last.Load()
	if after >= last || limit <= 0 {
		return nil, nil
	}
	if evs, complete := s.tail.After(after, limit); complete {
		return evs, nil
	}
	it, err := s.db.NewIter(&cpebble.IterOptions{LowerBound: eventKey(after + 1), UpperBound: eventKey(last + 1)})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, it.Close()) }()
	var out []sessiond.Event
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		seq := binary.BigEndian.Uint64(it.Key()[1:])
		ev, err := codec.DecodeEvent(it.Value(), seq)
		if err != nil {
			return nil, fmt.Errorf("pebble: event %d: %w", seq, err)
		}
		out = append(out, ev)
	}
	return out, it.Error()
}

// Head implements sessiond.Store.
func (s *Store) Head(ctx context.Context) (sessiond.Cursor, error) {
	if err := s.check(ctx); err != nil {
		return sessiond.Cursor{}, err
	}
	return sessiond.CursorOf(s.last.Load()), nil
}

// WaitEvents implements sessiond.EventWaiter. The tail ring holds only
// events committed since the store opened; the log's newest Seq before
// that is in last.
func (s *Store) WaitEvents(ctx context.Context, cur sessiond.Cursor) (sessiond.Cursor, error) {
	if err := s.check(ctx); err != nil {
		return sessiond.Cursor{}, err
	}
	if err := cur.Within(1); err != nil {
		return sessiond.Cursor{}, err
	}
	after := cur.Seq(0)
	if last := s.last.Load(); last > after {
		return sessiond.CursorOf(last), nil
	}
	n, err := s.tail.Wait(ctx, after)
	return sessiond.CursorOf(n), err
}

// Close waits for writes in flight, stops the committer and closes the
// database. It is idempotent. It gives up after 10 s if writes are stuck in
// Pebble (a full disk stalls them) or Pebble does not close, and says so:
// what was acknowledged is on disk all the same.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.health.close()
	done := make(chan struct{})
	go func() {
		s.closeMu.Lock() // no writer in flight from here on
		close(s.closing)
		s.closeMu.Unlock()
		s.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		return fmt.Errorf("pebble: closing %s: writes still stuck in Pebble after %v (is the disk full?); what was acknowledged is on disk", s.health.dir, closeWait)
	}
	return closeDB(s.db, s.health)
}

// Disk reports the free space, the writes refused and the records
// quarantined.
func (s *Store) Disk() DiskStats {
	free, _ := s.health.space(false)
	h := s.health
	st := DiskStats{FreeBytes: free, MinFreeBytes: h.min, Quarantined: int(s.quarantined.Load()),
		WritesRefused: map[string]uint64{
			"low_space": h.refusedLow.Load(), "disk_full": h.refusedFull.Load(), "failed": h.refusedFailed.Load(),
		}}
	select {
	case <-h.failed:
		st.Failed = true
	default:
	}
	return st
}

func sessionKey(id string) []byte {
	k := make([]byte, 1+len(id))
	k[0] = prefixSession
	copy(k[1:], id)
	return k
}

func connKey(id string) []byte {
	k := make([]byte, 1+len(id))
	k[0] = prefixConn
	copy(k[1:], id)
	return k
}

func leaseKey(node string) []byte {
	k := make([]byte, 1+len(node))
	k[0] = prefixLease
	copy(k[1:], node)
	return k
}

func consumerKey(name string) []byte {
	k := make([]byte, 1+len(name))
	k[0] = prefixConsumer
	copy(k[1:], name)
	return k
}

func eventKey(seq uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixEvent
	binary.BigEndian.PutUint64(k[1:], seq)
	return k
}
