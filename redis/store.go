package redis

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/codec"
	"github.com/sessiond/sessiond/internal/memindex"
)

// DefaultKeyPrefix starts every key of a store whose options leave it empty.
const DefaultKeyPrefix = "sessiond:"

// DefaultEventRetention is about how many events the log keeps when
// StoreOptions leave it zero.
const DefaultEventRetention = 100_000

// maxEvictTries bounds how often a create that evicts reads the subject's
// oldest sessions again because they changed under it.
const maxEvictTries = 100

// StoreOptions configure a Store.
type StoreOptions struct {
	// KeyPrefix starts every key the store uses (DefaultKeyPrefix if
	// empty), so that several stores share one database. It may not hold
	// { or }, which would change the keys' hash slots.
	KeyPrefix string
	// EventRetention is about how many of the newest events Events can
	// return: the log is trimmed approximately (MAXLEN ~), so it may hold
	// somewhat more. 0 means DefaultEventRetention.
	EventRetention int
	// OpTimeout bounds each call to Redis that a store operation makes
	// (the client would otherwise retry a read until its context ends):
	// past it, the operation fails with sessiond.ErrStoreUnavailable.
	// 0 means DefaultOpTimeout.
	OpTimeout time.Duration
}

// DefaultOpTimeout is StoreOptions.OpTimeout's default: Redis answers in
// well under a millisecond; a second without an answer is an outage.
const DefaultOpTimeout = time.Second

// bounded is a rueidis client whose calls end at the store's op timeout.
type bounded struct {
	rueidis.Client
	timeout time.Duration
}

func (b bounded) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= b.timeout {
		return b.Client.Do(ctx, cmd) // bounded already, at no cost
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return b.Client.Do(ctx, cmd)
}

func (b bounded) DoMulti(ctx context.Context, cmds ...rueidis.Completed) []rueidis.RedisResult {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return b.Client.DoMulti(ctx, cmds...)
}

// Store is a sessiond.Store on Redis (see the package documentation for
// the layout of its keys and what each operation costs).
type Store struct {
	c      *Client
	rc     rueidis.Client // bounded by the op timeout
	k      keys
	maxlen string
	own    bool // Close closes c
	closed atomic.Bool
}

var (
	_ sessiond.Store       = (*Store)(nil)
	_ sessiond.EventWaiter = (*Store)(nil)
	_ sessiond.Consumers   = (*Store)(nil)
)

// OpenStore connects to the deployment rawURL names (see Open), checks
// that it answers within ctx, and returns a store over it that owns the
// connection: Close closes it.
func OpenStore(ctx context.Context, rawURL string, opts StoreOptions) (*Store, error) {
	c, err := Open(rawURL)
	if err != nil {
		return nil, err
	}
	if err := c.Ping(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	s, err := NewStore(c, opts)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	s.own = true
	return s, nil
}

// NewStore returns a store over a client it does not own: closing the
// store leaves the client open. Several stores (with other key
// prefixes) may share one client.
func NewStore(c *Client, opts StoreOptions) (*Store, error) {
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = DefaultKeyPrefix
	}
	if strings.ContainsAny(opts.KeyPrefix, "{}") {
		return nil, fmt.Errorf("redis: the key prefix %q holds { or }", opts.KeyPrefix)
	}
	if opts.EventRetention < 0 {
		return nil, fmt.Errorf("redis: negative event retention %d", opts.EventRetention)
	}
	if opts.EventRetention == 0 {
		opts.EventRetention = DefaultEventRetention
	}
	if opts.OpTimeout < 0 {
		return nil, fmt.Errorf("redis: negative op timeout %v", opts.OpTimeout)
	}
	if opts.OpTimeout == 0 {
		opts.OpTimeout = DefaultOpTimeout
	}
	// Each partition's stream keeps its share of the retention.
	maxlen := max(minPartitionRetention, (opts.EventRetention+partitions-1)/partitions)
	return &Store{c: c, rc: bounded{c.rc, opts.OpTimeout}, k: newKeys(opts.KeyPrefix, partitions), maxlen: strconv.Itoa(maxlen)}, nil
}

// Ping checks that Redis answers (every node of a cluster), for readiness.
func (s *Store) Ping(ctx context.Context) error { return s.c.Ping(ctx) }

// Close implements sessiond.Store: calls after it fail. A store from
// OpenStore closes its connection.
func (s *Store) Close() error {
	if s.closed.Swap(true) || !s.own {
		return nil
	}
	return s.c.Close()
}

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("redis: the store is closed: %w", sessiond.ErrUnavailable)
	}
	return ctx.Err()
}

// fault wraps an error of the server or the connection: a system fault.
//
// An error that Redis answered (a script's error) is a fault of the store
// and stays one; any other (a connection refused or lost, a timeout, the
// client closing) means Redis could not be reached, and matches
// sessiond.ErrStoreUnavailable (503 store_unavailable): the write may or
// may not have happened, as for any fault, and the caller may retry.
func fault(op string, err error) error {
	if _, answered := rueidis.IsRedisErr(err); answered || errors.Is(err, context.Canceled) {
		return fmt.Errorf("redis: %s: %w", op, err)
	}
	return &sessiond.Error{Code: sessiond.CodeStoreUnavailable, Message: "the store (Redis) cannot be reached; retry", Err: fmt.Errorf("redis: %s: %w", op, err)}
}

// run executes a script and returns its answer.
func (s *Store) run(ctx context.Context, op string, script *rueidis.Lua, keys, args []string) ([]string, error) {
	out, err := script.Exec(ctx, s.rc, keys, args).AsStrSlice()
	if err != nil {
		return nil, fault(op, err)
	}
	if len(out) == 0 {
		return nil, fault(op, errors.New("empty answer from the script"))
	}
	return out, nil
}

// refusal translates a script's refusal into the port's sentinel.
func refusal(op, answer string) error {
	switch answer {
	case "NOTFOUND":
		return sessiond.ErrNotFound
	case "CONFLICT":
		return sessiond.ErrConflict
	case "EXISTS":
		return sessiond.ErrExists
	case "LIMIT":
		return sessiond.ErrLimitReached
	case "SUBJECT":
		return sessiond.Errorf(sessiond.CodeInvalidArgument, "subject", "a session's subject cannot change")
	}
	return fault(op, fmt.Errorf("unexpected answer %q from the script", answer))
}

// sessionArgs are a session's fields as the scripts take them, with its
// deadline.
func sessionArgs(args []string, v *sessiond.Session, due time.Time) []string {
	return append(args, v.ID, string(codec.EncodeSession(v)), strconv.FormatUint(v.Version, 10),
		strconv.Itoa(int(v.State)), v.Subject, v.Device.ID, liveMember(v.CreatedAt, v.ID), dueScore(due))
}

func connArgs(args []string, puts []sessiond.Connection, drops []string, due []sessiond.Due) []string {
	args = append(args, strconv.Itoa(len(puts)))
	for i := range puts {
		args = append(args, puts[i].ID, string(codec.EncodeConn(&puts[i])))
	}
	args = append(args, strconv.Itoa(len(drops)))
	args = append(args, drops...)
	args = append(args, strconv.Itoa(len(due)))
	for _, d := range due {
		args = append(args, d.ID, dueScore(d.At))
	}
	return args
}

// dueScore is a deadline's score in the deadline index: microseconds,
// rounded up, so that an entry is never claimed before its deadline; ""
// for none.
func dueScore(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt((t.UnixNano()+999)/1000, 10)
}

func eventArgs(args []string, lists ...[]sessiond.Event) []string {
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	args = append(args, strconv.Itoa(n))
	for _, l := range lists {
		for i := range l {
			args = append(args, string(codec.EncodeEvent(&l[i])))
		}
	}
	return args
}

// numberEvents writes partition p and Seqs from first on into the lists,
// in order.
func numberEvents(op string, p int, first string, lists ...[]sessiond.Event) error {
	seq, err := strconv.ParseUint(first, 10, 64)
	if err != nil {
		return fault(op, fmt.Errorf("bad Seq %q from the script", first))
	}
	for _, l := range lists {
		for i := range l {
			l[i].Partition, l[i].Seq = p, seq
			seq++
		}
	}
	return nil
}

// checkConns refuses connection ids that are not the session's.
func checkConns(sessionID string, puts []sessiond.Connection, drops []string) error {
	mine := func(id string) error {
		if sid, err := sessiond.ConnectionSession(id); err != nil || sid != sessionID {
			return sessiond.Errorf(sessiond.CodeInvalidArgument, "connection", "%q is not a connection id of session %s", id, sessionID)
		}
		return nil
	}
	for i := range puts {
		if err := mine(puts[i].ID); err != nil {
			return err
		}
	}
	for _, id := range drops {
		if err := mine(id); err != nil {
			return err
		}
	}
	return nil
}

// Create implements sessiond.Store. The session goes to its subject's
// partition. An id whose home partition (keys.homePartition) is another is
// first claimed there, so that two creates of one id meet in one slot;
// a create refused after its claim releases it. (Ids the engine makes
// are in their subject's partition and need no claim.) A create whose outcome is unknown (a fault) keeps
// its claim: the id stays taken rather than risk two sessions with it.
func (s *Store) Create(ctx context.Context, c sessiond.Change, lim sessiond.Limit) ([]*sessiond.Session, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	v := c.Session
	if len(c.DropConns) > 0 {
		return nil, sessiond.Errorf(sessiond.CodeInvalidArgument, "connections", "a new session has no connections to drop")
	}
	if err := checkConns(v.ID, c.PutConns, nil); err != nil {
		return nil, err
	}
	p := s.k.subjectPartition(v.Subject)
	home := s.k.homePartition(v.ID)
	if home == p {
		return s.create(ctx, p, c, lim)
	}
	var tok [8]byte
	_, _ = rand.Read(tok[:])
	claim := strconv.Itoa(p) + ":" + hex.EncodeToString(tok[:])
	claimKey := s.k.claim(home, v.ID)
	out, err := s.run(ctx, "create", claimScript, []string{s.k.session(home, v.ID), claimKey}, []string{claim})
	if err != nil {
		return nil, err
	}
	if out[0] != "OK" {
		return nil, refusal("create", out[0])
	}
	evicted, err := s.create(ctx, p, c, lim)
	if errors.Is(err, sessiond.ErrExists) || errors.Is(err, sessiond.ErrLimitReached) || errors.Is(err, sessiond.ErrInvalidArgument) {
		if _, rerr := s.run(ctx, "create", releaseScript, []string{claimKey}, []string{claim}); rerr != nil {
			return nil, errors.Join(err, rerr)
		}
	}
	return evicted, err
}

// create runs the create script in partition p. When the subject is at
// its limit and evicts, the script answers with the ids of the oldest
// live sessions instead; they are read, moved to ending here
// (sessiond.Ending) and the create is tried again with them, each a
// compare-and-set on its version. (A session gone between the answer and
// the read is left out: the script then answers again.)
func (s *Store) create(ctx context.Context, p int, c sessiond.Change, lim sessiond.Limit) ([]*sessiond.Session, error) {
	v := c.Session
	var evicted []*sessiond.Session
	var evEvents []sessiond.Event
	for range maxEvictTries {
		keys := append(s.k.sessionKeys(p, v.ID, v.Subject), s.k.claim(p, v.ID))
		for _, e := range evicted {
			keys = append(keys, s.k.session(p, e.ID), s.k.conns(p, e.ID), s.k.record(p, e.ID))
		}
		args := []string{s.maxlen, strconv.Itoa(lim.Max), flag(lim.EvictOldest), flag(lim.UniqueDevice)}
		args = sessionArgs(args, v, c.Due)
		args = connArgs(args, c.PutConns, nil, c.ConnDue)
		args = append(args, strconv.Itoa(len(evicted)))
		for _, e := range evicted {
			args = sessionArgs(append(args, strconv.FormatUint(e.Version-1, 10)), e, lim.EvictedDue)
		}
		args = eventArgs(args, evEvents, c.Events)
		out, err := s.run(ctx, "create", createScript, keys, args)
		if err != nil {
			return nil, err
		}
		switch out[0] {
		case "OK":
			if len(out) < 2 {
				return nil, fault("create", errors.New("no Seq from the script"))
			}
			return evicted, numberEvents("create", p, out[1], evEvents, c.Events)
		case "EVICT":
			olds, err := s.readSessions(ctx, p, out[1:])
			if err != nil {
				return nil, err
			}
			evicted, evEvents = nil, nil
			for _, old := range olds {
				// Its connections are recorded closed with it. The script
				// checks its version, which any change of them moves.
				var conns []sessiond.Connection
				if old.ConnCount > 0 {
					if conns, err = s.connsIn(ctx, p, old.ID); err != nil {
						return nil, err
					}
				}
				n, evs := sessiond.Ending(old, conns, sessiond.EndEvicted, lim.Now)
				evicted = append(evicted, n)
				evEvents = append(evEvents, evs...)
			}
		default:
			return nil, refusal("create", out[0])
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return nil, fault("create", fmt.Errorf("the subject's oldest sessions changed under %d tries to evict them", maxEvictTries))
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Update implements sessiond.Store: one script in the subject's partition.
func (s *Store) Update(ctx context.Context, c sessiond.Change) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	v := c.Session
	if err := checkConns(v.ID, c.PutConns, c.DropConns); err != nil {
		return err
	}
	p := s.k.subjectPartition(v.Subject)
	args := []string{s.maxlen, strconv.FormatUint(v.Version-1, 10)}
	args = sessionArgs(args, v, c.Due)
	args = connArgs(args, c.PutConns, c.DropConns, c.ConnDue)
	args = eventArgs(args, c.Events)
	out, err := s.run(ctx, "update", updateScript, s.k.sessionKeys(p, v.ID, v.Subject), args)
	if err != nil {
		return err
	}
	if out[0] != "OK" || len(out) < 2 {
		return refusal("update", out[0])
	}
	return numberEvents("update", p, out[1], c.Events)
}

// locate returns the partition of the session with the id, and the value
// of the claim that sent there, if one did.
func (s *Store) locate(ctx context.Context, id string) (p int, claim string, err error) {
	home := s.k.homePartition(id)
	if s.k.n == 1 {
		return home, "", nil
	}
	v, err := s.rc.Do(ctx, s.rc.B().Get().Key(s.k.claim(home, id)).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return home, "", nil
	}
	if err != nil {
		return 0, "", fault("claim", err)
	}
	p, err = s.k.claimPartition(v)
	return p, v, err
}

// claimPartition reads the partition from a claim's value ("<p>:<token>").
func (k keys) claimPartition(v string) (int, error) {
	q, _, _ := strings.Cut(v, ":")
	p, err := strconv.Atoi(q)
	if err != nil || p < 0 || p >= k.n {
		return 0, fault("claim", fmt.Errorf("a claim names no partition of %d: %q", k.n, v))
	}
	return p, nil
}

// Delete implements sessiond.Store: a read of the session's subject (its
// indexes' keys), then one script; a claim the session's id left in its
// home partition goes after it.
func (s *Store) Delete(ctx context.Context, id string, version uint64) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if !sessiond.ValidID(id) {
		return sessiond.ErrNotFound
	}
	p, claim, err := s.locate(ctx, id)
	if err != nil {
		return err
	}
	subject, err := s.rc.Do(ctx, s.rc.B().Hget().Key(s.k.session(p, id)).Field("sub").Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return sessiond.ErrNotFound
	}
	if err != nil {
		return fault("delete", err)
	}
	out, err := s.run(ctx, "delete", deleteScript, s.k.sessionKeys(p, id, subject), []string{strconv.FormatUint(version, 10), id, subject})
	if err != nil {
		return err
	}
	if out[0] != "OK" {
		return refusal("delete", out[0])
	}
	if claim != "" {
		if _, err := s.run(ctx, "delete", releaseScript, []string{s.k.claim(s.k.homePartition(id), id)}, []string{claim}); err != nil {
			return err
		}
	}
	return nil
}

// ClaimDue implements sessiond.Store: one script per partition, each over
// that partition's deadline index, pipelined; then the claimed sessions'
// records, pipelined (a session's entry is in its session's partition).
func (s *Store) ClaimDue(ctx context.Context, now time.Time, hold time.Duration, limit int) ([]sessiond.Due, time.Time, error) {
	if err := s.check(ctx); err != nil {
		return nil, time.Time{}, err
	}
	per := max(1, (limit+s.k.n-1)/s.k.n)
	execs := make([]rueidis.LuaExec, s.k.n)
	for p := range s.k.n {
		execs[p] = rueidis.LuaExec{
			Keys: []string{s.k.due(p)},
			Args: []string{strconv.FormatInt(now.UnixNano()/1000, 10), dueScore(now.Add(hold)), strconv.Itoa(per)},
		}
	}
	var out []sessiond.Due
	var next time.Time
	var reads rueidis.Commands
	var readOf []int // reads[k] is for out[readOf[k]]
	for p, r := range claimDueScript.ExecMulti(ctx, s.rc, execs...) {
		a, err := r.AsStrSlice()
		if err != nil {
			return out, next, fault("claim due", err)
		}
		if len(a) == 0 || len(a)%2 != 1 {
			return out, next, fault("claim due", errors.New("malformed answer from the script"))
		}
		if t, ok := scoreTime(a[0]); ok && (next.IsZero() || t.Before(next)) {
			next = t
		}
		for i := 1; i < len(a); i += 2 {
			t, _ := scoreTime(a[i+1])
			if sessiond.ValidID(a[i]) {
				reads = append(reads, s.readCmd(p, a[i]))
				readOf = append(readOf, len(out))
			}
			out = append(out, sessiond.Due{ID: a[i], At: t})
		}
	}
	if len(reads) > 0 {
		res := s.rc.DoMulti(ctx, reads...)
		for k, i := range readOf {
			// A read that failed leaves Session nil: the engine reads it.
			if v, err := sessionFrom(res[k]); err == nil {
				out[i].Session = v
			}
		}
	}
	slices.SortFunc(out, func(a, b sessiond.Due) int { return a.At.Compare(b.At) })
	return out, next, nil
}

// scoreTime reads a score of the deadline index.
func scoreTime(v string) (time.Time, bool) {
	us, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMicro(int64(us)).UTC(), true
}

// Reschedule implements sessiond.Store: one script in the session's
// partition.
func (s *Store) Reschedule(ctx context.Context, d sessiond.Due, version uint64) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	sid, conn := d.ID, "0"
	if id, err := sessiond.ConnectionSession(d.ID); err == nil {
		sid, conn = id, "1"
	}
	if !sessiond.ValidID(sid) {
		return nil
	}
	p, _, err := s.locate(ctx, sid)
	if err != nil {
		return err
	}
	_, err = s.run(ctx, "reschedule", rescheduleScript,
		[]string{s.k.session(p, sid), s.k.conns(p, sid), s.k.due(p)},
		[]string{strconv.FormatUint(version, 10), d.ID, dueScore(d.At), conn})
	return err
}

// decodeSession decodes a session's record; conns is its ConnCount.
// DecodeSession keeps nothing of d (its strings and byte slices are
// copies), so d may be a reply's bytes lent by the client.
func decodeSession(d []byte, conns int64) (*sessiond.Session, error) {
	v, _, err := codec.DecodeSession(d)
	if err != nil {
		return nil, err
	}
	v.ConnCount = int(conns)
	return v, nil
}

// Get implements sessiond.Store: one command (HMGET of the record and the
// number of connections) for a session in its id's home partition, which
// holds every session whose id the engine made; for an id not there, one
// more round trip reads the claim a caller-chosen id stored elsewhere
// left, and one more the session it names.
func (s *Store) Get(ctx context.Context, id string) (*sessiond.Session, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if !sessiond.ValidID(id) {
		return nil, sessiond.ErrNotFound
	}
	home := s.k.homePartition(id)
	v, err := sessionFrom(s.rc.Do(ctx, s.readCmd(home, id)))
	if !errors.Is(err, sessiond.ErrNotFound) || s.k.n == 1 {
		return v, err
	}
	claim, err := s.rc.Do(ctx, s.rc.B().Get().Key(s.k.claim(home, id)).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return nil, sessiond.ErrNotFound
	}
	if err != nil {
		return nil, fault("get", err)
	}
	p, err := s.k.claimPartition(claim)
	if err != nil {
		return nil, err
	}
	got, err := s.readSessions(ctx, p, []string{id})
	if err != nil {
		return nil, err
	}
	if len(got) == 0 {
		return nil, sessiond.ErrNotFound
	}
	return got[0], nil
}

// readCmd reads a session: its record key, which holds the record and its
// number of connections (putRecord in the scripts).
func (s *Store) readCmd(p int, id string) rueidis.Completed {
	return s.rc.B().Get().Key(s.k.record(p, id)).Build()
}

// sessionFrom decodes the answer to readCmd: nil and ErrNotFound for no
// session. The record is decoded from the reply itself (AsBytes does not
// copy it): a validation's hot path.
func sessionFrom(r rueidis.RedisResult) (*sessiond.Session, error) {
	b, err := r.AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, sessiond.ErrNotFound
	}
	if err != nil {
		return nil, fault("get", err)
	}
	rec, conns, err := splitRecord(b)
	if err != nil {
		return nil, fault("get", err)
	}
	v, err := decodeSession(rec, conns)
	if err != nil {
		return nil, fault("get", err)
	}
	return v, nil
}

// splitRecord parses what putRecord stores: the record, then the number
// of connections in decimal, then its length in one byte.
func splitRecord(v []byte) (rec []byte, conns int64, err error) {
	if len(v) < 2 {
		return nil, 0, errors.New("a session's record key is too short")
	}
	l := int(v[len(v)-1])
	if l < 1 || l > 19 || len(v) < l+1 {
		return nil, 0, fmt.Errorf("a session's record key ends with a count of %d digits", l)
	}
	digits := v[len(v)-1-l : len(v)-1]
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil || n < 0 {
		return nil, 0, fmt.Errorf("a session's record key ends with the count %q", digits)
	}
	return v[:len(v)-1-l], n, nil
}

// readSessions reads the sessions with the ids in partition p, in one
// round trip, in the order of ids; those gone since are left out.
func (s *Store) readSessions(ctx context.Context, p int, ids []string) ([]*sessiond.Session, error) {
	out := make([]*sessiond.Session, 0, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	cmds := make(rueidis.Commands, 0, len(ids))
	for _, id := range ids {
		cmds = append(cmds, s.readCmd(p, id))
	}
	res := s.rc.DoMulti(ctx, cmds...)
	for i := range ids {
		v, err := sessionFrom(res[i])
		if errors.Is(err, sessiond.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// rangeLex returns the members of the lex range [min, max] of key (min
// and max in ZRANGE BYLEX's syntax), up to limit of them (all if limit < 0).
func (s *Store) rangeLex(ctx context.Context, key, min, max string, limit int64) ([]string, error) {
	b := s.rc.B().Zrange().Key(key).Min(min).Max(max).Bylex()
	var cmd rueidis.Completed
	if limit >= 0 {
		cmd = b.Limit(0, limit).Build()
	} else {
		cmd = b.Build()
	}
	out, err := s.rc.Do(ctx, cmd).AsStrSlice()
	if err != nil {
		return nil, fault("range", err)
	}
	return out, nil
}

// Live implements sessiond.Store: two round trips (the index, then the
// sessions).
func (s *Store) Live(ctx context.Context, subject string) ([]*sessiond.Session, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	p := s.k.subjectPartition(subject)
	members, err := s.rangeLex(ctx, s.k.live(p, subject), "-", "+", -1)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m[liveMemberIDAt:]
	}
	return s.readSessions(ctx, p, ids)
}

// FindDevice implements sessiond.Store: two round trips.
func (s *Store) FindDevice(ctx context.Context, subject, deviceID string) ([]*sessiond.Session, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if deviceID == "" {
		return []*sessiond.Session{}, nil
	}
	p := s.k.subjectPartition(subject)
	pfx := devicePrefix(deviceID)
	members, err := s.rangeLex(ctx, s.k.device(p, subject), "["+pfx, "("+pfx+"\xff", -1)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m[len(pfx)+liveMemberIDAt:]
	}
	return s.readSessions(ctx, p, ids)
}

const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// List implements sessiond.Store. It reads one index in id order: all
// ids, the ids in a state, or a subject's ids; with both a subject and a
// state, the subject's sessions are read and filtered, at most ten
// pages' worth per call. Each partition gives up to a page of ids after
// the cursor; the page is the first ones of their merge.
func (s *Store) List(ctx context.Context, q sessiond.Query) (sessiond.Page, error) {
	if err := s.check(ctx); err != nil {
		return sessiond.Page{}, err
	}
	after, err := memindex.DecodeCursor(q.Cursor)
	if err != nil {
		return sessiond.Page{}, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	budget := limit
	filter := q.Subject != "" && q.State != 0
	if filter {
		budget = min(10*limit, maxListLimit)
	}
	type part struct {
		p   int
		ids []string
	}
	var parts []part
	ps := []int{}
	if q.Subject != "" {
		ps = append(ps, s.k.subjectPartition(q.Subject))
	} else {
		for p := range s.k.n {
			ps = append(ps, p)
		}
	}
	for _, p := range ps {
		key, lo, hi, strip := s.k.ids(p), "-", "+", 0
		if after != "" {
			lo = "(" + after
		}
		switch {
		case q.Subject != "":
			key = s.k.subject(p, q.Subject)
		case q.State != 0:
			st := strconv.Itoa(int(q.State)) + ":"
			key, lo, hi, strip = s.k.byState(p), "["+st, "("+st+"\xff", len(st)
			if after != "" {
				lo = "(" + st + after
			}
		}
		members, err := s.rangeLex(ctx, key, lo, hi, int64(budget)+1)
		if err != nil {
			return sessiond.Page{}, err
		}
		for i := range members {
			members[i] = members[i][strip:]
		}
		parts = append(parts, part{p, members})
	}
	// Merge the partitions' ids; more is whether any id lies beyond.
	type ref struct {
		p  int
		id string
	}
	var all []ref
	for _, pt := range parts {
		for _, id := range pt.ids {
			all = append(all, ref{pt.p, id})
		}
	}
	slices.SortFunc(all, func(a, b ref) int { return strings.Compare(a.id, b.id) })
	more := len(all) > budget
	all = all[:min(len(all), budget)]
	byPart := map[int][]string{}
	for _, r := range all {
		byPart[r.p] = append(byPart[r.p], r.id)
	}
	found := map[string]*sessiond.Session{}
	for p, ids := range byPart {
		got, err := s.readSessions(ctx, p, ids)
		if err != nil {
			return sessiond.Page{}, err
		}
		for _, v := range got {
			found[v.ID] = v
		}
	}
	var page sessiond.Page
	for i, r := range all {
		v := found[r.id]
		if v == nil || (q.State != 0 && v.State != q.State) {
			continue
		}
		page.Sessions = append(page.Sessions, v)
		if len(page.Sessions) == limit {
			if i < len(all)-1 || more {
				page.Next = memindex.EncodeCursor(r.id)
			}
			return page, nil
		}
	}
	if more && len(all) > 0 {
		page.Next = memindex.EncodeCursor(all[len(all)-1].id)
	}
	return page, nil
}

// Stats implements sessiond.Store: the counters the scripts keep, one
// hash per partition.
func (s *Store) Stats(ctx context.Context) (sessiond.StoreStats, error) {
	if err := s.check(ctx); err != nil {
		return sessiond.StoreStats{}, err
	}
	st := sessiond.StoreStats{ByState: make(map[sessiond.State]int, len(sessiond.States)), Connections: map[string]int{}}
	for _, state := range sessiond.States {
		st.ByState[state] = 0
	}
	cmds := make(rueidis.Commands, 0, 2*s.k.n)
	for p := range s.k.n {
		cmds = append(cmds, s.rc.B().Zcard().Key(s.k.due(p)).Build())
	}
	for p := range s.k.n {
		cmds = append(cmds, s.rc.B().Hgetall().Key(s.k.stats(p)).Build())
	}
	res := s.rc.DoMulti(ctx, cmds...)
	for _, r := range res[:s.k.n] {
		n, err := r.AsInt64()
		if err != nil {
			return sessiond.StoreStats{}, fault("stats", err)
		}
		st.Due += int(n)
	}
	for _, res := range res[s.k.n:] {
		m, err := res.AsIntMap()
		if err != nil {
			return sessiond.StoreStats{}, fault("stats", err)
		}
		for f, n := range m {
			switch {
			case f == "subj":
				st.Subjects += int(n)
			case strings.HasPrefix(f, "k:"):
				if n > 0 {
					st.Connections[f[2:]] += int(n)
				}
			case strings.HasPrefix(f, "n"):
				if state, err := strconv.Atoi(f[1:]); err == nil && sessiond.State(state).Valid() {
					st.ByState[sessiond.State(state)] += int(n)
					st.Total += int(n)
				}
			}
		}
	}
	return st, nil
}

// Conns implements sessiond.Store: one HGETALL.
func (s *Store) Conns(ctx context.Context, sessionID string) ([]sessiond.Connection, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	out := []sessiond.Connection{}
	if !sessiond.ValidID(sessionID) {
		return out, nil
	}
	p, _, err := s.locate(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	return s.connsIn(ctx, p, sessionID)
}

// connsIn returns the connections of the session with the id in
// partition p, oldest first.
func (s *Store) connsIn(ctx context.Context, p int, sessionID string) ([]sessiond.Connection, error) {
	out := []sessiond.Connection{}
	m, err := s.rc.Do(ctx, s.rc.B().Hgetall().Key(s.k.conns(p, sessionID)).Build()).AsStrMap()
	if err != nil {
		return nil, fault("conns", err)
	}
	for _, rec := range m {
		c, err := codec.DecodeConn([]byte(rec))
		if err != nil {
			return nil, fault("conns", err)
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b sessiond.Connection) int {
		return cmp.Or(a.ConnectedAt.Compare(b.ConnectedAt), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// Conn implements sessiond.Store: one HGET.
func (s *Store) Conn(ctx context.Context, connID string) (*sessiond.Connection, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	sid, err := sessiond.ConnectionSession(connID)
	if err != nil {
		return nil, sessiond.ErrNotFound
	}
	p, _, err := s.locate(ctx, sid)
	if err != nil {
		return nil, err
	}
	rec, err := s.rc.Do(ctx, s.rc.B().Hget().Key(s.k.conns(p, sid)).Field(connID).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return nil, sessiond.ErrNotFound
	}
	if err != nil {
		return nil, fault("conn", err)
	}
	c, err := codec.DecodeConn([]byte(rec))
	if err != nil {
		return nil, fault("conn", err)
	}
	return &c, nil
}

// NodeConns implements sessiond.Store: per partition, the node's range of
// the node index, then the records.
func (s *Store) NodeConns(ctx context.Context, node string, limit int) ([]sessiond.Connection, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	out := []sessiond.Connection{}
	pfx := nodePrefix(node)
	for p := range s.k.n {
		if len(out) >= limit {
			break
		}
		members, err := s.rangeLex(ctx, s.k.nodeConns(p), "["+pfx, "("+pfx+"\xff", int64(limit-len(out)))
		if err != nil {
			return nil, err
		}
		if len(members) == 0 {
			continue
		}
		cmds := make(rueidis.Commands, 0, len(members))
		for _, m := range members {
			id := m[len(pfx):]
			sid, _ := sessiond.ConnectionSession(id)
			cmds = append(cmds, s.rc.B().Hget().Key(s.k.conns(p, sid)).Field(id).Build())
		}
		for _, res := range s.rc.DoMulti(ctx, cmds...) {
			rec, err := res.ToString()
			if rueidis.IsRedisNil(err) {
				continue // dropped since
			}
			if err != nil {
				return nil, fault("node conns", err)
			}
			c, err := codec.DecodeConn([]byte(rec))
			if err != nil {
				return nil, fault("node conns", err)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// ConnNodes implements sessiond.Store: the node counts' fields, per
// partition.
func (s *Store) ConnNodes(ctx context.Context) ([]string, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	cmds := make(rueidis.Commands, 0, s.k.n)
	for p := range s.k.n {
		cmds = append(cmds, s.rc.B().Hkeys().Key(s.k.nodes(p)).Build())
	}
	out := []string{}
	for _, res := range s.rc.DoMulti(ctx, cmds...) {
		nodes, err := res.AsStrSlice()
		if err != nil {
			return nil, fault("conn nodes", err)
		}
		out = append(out, nodes...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// PutLease implements sessiond.Store: a script on the leases hash.
func (s *Store) PutLease(ctx context.Context, l sessiond.NodeLease) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if l.Version == 0 {
		return sessiond.ErrConflict
	}
	args := []string{l.Node, strconv.FormatUint(l.Version, 10), strconv.FormatUint(l.Version-1, 10), string(codec.EncodeLease(&l))}
	out, err := s.run(ctx, "put lease", putLeaseScript, []string{s.k.leases()}, args)
	if err != nil {
		return err
	}
	if out[0] != "OK" {
		return refusal("put lease", out[0])
	}
	return nil
}

// Leases implements sessiond.Store: one HGETALL.
func (s *Store) Leases(ctx context.Context) ([]sessiond.NodeLease, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	m, err := s.rc.Do(ctx, s.rc.B().Hgetall().Key(s.k.leases()).Build()).AsStrMap()
	if err != nil {
		return nil, fault("leases", err)
	}
	out := make([]sessiond.NodeLease, 0, len(m))
	for node, v := range m {
		_, rec, ok := strings.Cut(v, "|")
		l, err := codec.DecodeLease([]byte(rec))
		if !ok || err != nil {
			return nil, fault("leases", fmt.Errorf("the lease of %q does not decode: %v", node, err))
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b sessiond.NodeLease) int { return strings.Compare(a.Node, b.Node) })
	return out, nil
}

// DeleteLease implements sessiond.Store.
func (s *Store) DeleteLease(ctx context.Context, node string, version uint64) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	out, err := s.run(ctx, "delete lease", deleteLeaseScript, []string{s.k.leases()}, []string{node, strconv.FormatUint(version, 10)})
	if err != nil {
		return err
	}
	if out[0] != "OK" {
		return refusal("delete lease", out[0])
	}
	return nil
}

// ClaimConsumer implements sessiond.Consumers: a script on the
// consumer's hash.
func (s *Store) ClaimConsumer(ctx context.Context, name, owner string, start sessiond.Cursor, now time.Time, ttl time.Duration) (sessiond.Cursor, error) {
	if err := s.check(ctx); err != nil {
		return sessiond.Cursor{}, err
	}
	if err := sessiond.CheckConsumerCall(name, owner, start, s.k.n, ttl, true); err != nil {
		return sessiond.Cursor{}, err
	}
	args := []string{owner, start.String(), micros(now), micros(now.Add(ttl))}
	out, err := s.run(ctx, "claim consumer", claimConsumerScript, []string{s.k.consumer(name)}, args)
	if err != nil {
		return sessiond.Cursor{}, err
	}
	if err := consumerRefusal("claim consumer", out); err != nil {
		return sessiond.Cursor{}, err
	}
	if len(out) != 2 {
		return sessiond.Cursor{}, fault("claim consumer", fmt.Errorf("unexpected answer %q from the script", out))
	}
	c, err := sessiond.ParseCursor(out[1])
	if err != nil {
		return sessiond.Cursor{}, fault("claim consumer", fmt.Errorf("the cursor of %q: %w", name, err))
	}
	return c, nil
}

// CommitConsumer implements sessiond.Consumers: a script on the
// consumer's hash.
func (s *Store) CommitConsumer(ctx context.Context, name, owner string, c sessiond.Cursor, now time.Time, ttl time.Duration) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := sessiond.CheckConsumerCall(name, owner, c, s.k.n, ttl, false); err != nil {
		return err
	}
	out, err := s.run(ctx, "commit consumer", commitConsumerScript, []string{s.k.consumer(name)}, []string{owner, c.String(), micros(now.Add(ttl))})
	if err != nil {
		return err
	}
	if err := consumerRefusal("commit consumer", out); err != nil {
		return err
	}
	return nil
}

// consumerRefusal is the error of a consumer script's answer other than OK.
func consumerRefusal(op string, out []string) error {
	switch {
	case out[0] == "OK":
		return nil
	case out[0] == "CLAIMED" && len(out) == 3 && out[1] == "":
		return fmt.Errorf("%w: no such consumer", sessiond.ErrConsumerClaimed)
	case out[0] == "CLAIMED" && len(out) == 3:
		us, _ := strconv.ParseInt(out[2], 10, 64)
		return memindex.Claimed(out[1], time.UnixMicro(us))
	}
	return fault(op, fmt.Errorf("unexpected answer %q from the script", out))
}

// micros is a time as the consumer scripts compare them: Unix
// microseconds (exact in Lua's numbers, unlike nanoseconds).
func micros(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

// Events implements sessiond.Store: one XRANGE per partition's stream,
// pipelined, merged by time (each partition's events in their order).
func (s *Store) Events(ctx context.Context, after sessiond.Cursor, limit int) ([]sessiond.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if err := after.Within(s.k.n); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	cmds := make(rueidis.Commands, s.k.n)
	for p := range s.k.n {
		start := "(" + strconv.FormatUint(after.Seq(p), 10) + "-0"
		cmds[p] = s.rc.B().Xrange().Key(s.k.events(p)).Start(start).End("+").Count(int64(limit)).Build()
	}
	lists := make([][]sessiond.Event, s.k.n)
	for p, r := range s.rc.DoMulti(ctx, cmds...) {
		entries, err := r.AsXRange()
		if err != nil {
			return nil, fault("events", err)
		}
		for _, e := range entries {
			seq, _, _ := strings.Cut(e.ID, "-")
			n, err := strconv.ParseUint(seq, 10, 64)
			if err != nil {
				return nil, fault("events", fmt.Errorf("bad entry id %q", e.ID))
			}
			ev, err := codec.DecodeEvent([]byte(e.FieldValues["e"]), n)
			if err != nil {
				return nil, fault("events", fmt.Errorf("event %d of partition %d: %w", n, p, err))
			}
			ev.Partition = p
			lists[p] = append(lists[p], ev)
		}
	}
	return mergeEvents(lists, limit), nil
}

// mergeEvents interleaves the partitions' events by time, keeping each
// partition's in its order, and returns the first limit.
func mergeEvents(lists [][]sessiond.Event, limit int) []sessiond.Event {
	var out []sessiond.Event
	for len(out) < limit {
		best := -1
		for p, l := range lists {
			if len(l) > 0 && (best < 0 || l[0].Time.Before(lists[best][0].Time)) {
				best = p
			}
		}
		if best < 0 {
			break
		}
		out = append(out, lists[best][0])
		lists[best] = lists[best][1:]
	}
	return out
}

// waitPoll is how often WaitEvents reads the logs' heads: how late a node
// learns of another node's events at most (a revoke through another node
// closes the sockets this one holds within it). A blocking XREAD cannot
// wait on the streams of several slots at once in a Redis Cluster.
const waitPoll = 20 * time.Millisecond

// WaitEvents implements sessiond.EventWaiter: the logs' heads, every
// waitPoll until one is past after.
func (s *Store) WaitEvents(ctx context.Context, after sessiond.Cursor) (sessiond.Cursor, error) {
	if err := after.Within(s.k.n); err != nil {
		return sessiond.Cursor{}, err
	}
	t := time.NewTicker(waitPoll)
	defer t.Stop()
	for {
		head, err := s.Head(ctx)
		if err != nil || after.Behind(head) {
			return head, err
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return sessiond.Cursor{}, ctx.Err()
		}
	}
}

// Head implements sessiond.Store: one HGET of each partition's counter,
// pipelined.
func (s *Store) Head(ctx context.Context) (sessiond.Cursor, error) {
	if err := s.check(ctx); err != nil {
		return sessiond.Cursor{}, err
	}
	cmds := make(rueidis.Commands, s.k.n)
	for p := range s.k.n {
		cmds[p] = s.rc.B().Hget().Key(s.k.stats(p)).Field("seq").Build()
	}
	seqs := make([]uint64, s.k.n)
	for p, r := range s.rc.DoMulti(ctx, cmds...) {
		v, err := r.AsUint64()
		if rueidis.IsRedisNil(err) {
			continue
		}
		if err != nil {
			return sessiond.Cursor{}, fault("head", err)
		}
		seqs[p] = v
	}
	return sessiond.CursorOf(seqs...), nil
}
