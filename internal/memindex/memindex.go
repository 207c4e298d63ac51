// Package memindex holds sessions in memory with the indexes every Store
// needs: by id (in id order, for listing), by token hash (current, previous
// and retired), by subject and by subject and device, connections by
// session and by node, and counts by state and by connection kind. The inmem store is this index alone; the pebble store
// keeps the same index in front of its durable log, so reads never touch
// disk.
//
// Sessions are held as compact records (rec.go), not as sessiond.Session
// values: a million sessions must fit in a few hundred bytes each, and the
// fewer pointers they hold the less the garbage collector has to scan.
// Reads build a fresh *sessiond.Session from the record.
//
// Writers follow one protocol:
//
//	mu := x.Lock(subject)       // serialises writers of one subject
//	plan := x.PlanCreate(...) / x.CheckUpdate(...) / x.CheckDelete(...)
//	... make the change durable, if the store is durable ...
//	x.Apply(...)                // publish it to readers, atomically
//	mu.Unlock()
//
// Node leases are few and change rarely; Leases holds them.
//
// Every change to a session goes through its subject's lock, so a check made
// under the lock still holds when Apply runs. Readers never take that lock.
package memindex

import (
	"encoding/base64"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/btree"

	"github.com/sessiond/sessiond"
)

const stripes = 256

// Index is an in-memory set of sessions. The zero value is not usable; call New.
type Index struct {
	writers [stripes]sync.Mutex
	seed    maphash.Seed

	mu       sync.RWMutex
	byID     map[string]*rec
	byToken  map[tokenKey]*rec // current, previous and retired token hashes
	subjects map[string]*subject
	nodes    map[string]map[string]*rec // node -> connection id -> its session
	order    *btree.BTreeG[*rec]        // all sessions by id
	pending  map[string]struct{}        // ids reserved by creates in flight
	policies map[string]string          // interned policy names
	count    [sessiond.StateEnded + 1]int
	nlive    int            // subjects with a live session
	conns    map[string]int // connections of live sessions by kind
	dues     dues           // the deadline index (due.go)
}

// subject is the list of one subject's sessions, live and ended, and its
// live sessions by device id.
type subject struct {
	name    string
	head    *rec
	live    int32
	devices map[string][]*rec // live sessions with a device id, by it
}

// New returns an empty index.
func New() *Index {
	return &Index{
		seed:     maphash.MakeSeed(),
		byID:     make(map[string]*rec),
		byToken:  make(map[tokenKey]*rec),
		subjects: make(map[string]*subject),
		nodes:    make(map[string]map[string]*rec),
		order:    btree.NewG(32, func(a, b *rec) bool { return a.id < b.id }),
		pending:  make(map[string]struct{}),
		policies: make(map[string]string),
		conns:    make(map[string]int),
		dues:     newDues(),
	}
}

// Lock takes the writer lock of subject's stripe; Unlock it when done.
func (x *Index) Lock(subject string) *sync.Mutex {
	m := &x.writers[maphash.String(x.seed, subject)%stripes]
	m.Lock()
	return m
}

// Get returns the session with the id, or nil.
func (x *Index) Get(id string) *sessiond.Session {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if r := x.byID[id]; r != nil {
		return r.session()
	}
	return nil
}

// SubjectOf returns the subject of the session with the id.
func (x *Index) SubjectOf(id string) (string, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if r := x.byID[id]; r != nil {
		return r.subj.name, true
	}
	return "", false
}

// FindToken returns the session holding h as its current or previous token, or nil.
func (x *Index) FindToken(h sessiond.TokenHash) *sessiond.Session {
	x.mu.RLock()
	defer x.mu.RUnlock()
	r := x.byToken[keyOf(h)]
	if r == nil || !r.holdsToken(h) {
		return nil // a prefix of another hash: 2^-128 per pair, but checked
	}
	return r.session()
}

// FindDevice returns the subject's live sessions for the device id, oldest first.
func (x *Index) FindDevice(subj, deviceID string) []*sessiond.Session {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := []*sessiond.Session{}
	if e := x.subjects[subj]; e != nil {
		for _, r := range e.devices[deviceID] {
			out = append(out, r.session())
		}
	}
	slices.SortFunc(out, Oldest)
	return out
}

// Conns returns the session's connections, oldest first.
func (x *Index) Conns(id string) []sessiond.Connection {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if r := x.byID[id]; r != nil {
		return r.conns.sorted()
	}
	return []sessiond.Connection{}
}

// Conn returns the connection with the id of the session with sessionID.
func (x *Index) Conn(sessionID, connID string) (sessiond.Connection, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if r := x.byID[sessionID]; r != nil {
		if i := r.conns.find(connID); i >= 0 {
			return r.conns.list[i], true
		}
	}
	return sessiond.Connection{}, false
}

// ConnNodes returns the nodes holding connections, sorted.
func (x *Index) ConnNodes() []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]string, 0, len(x.nodes))
	for n := range x.nodes {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// NodeConns returns up to limit connections held by the node.
func (x *Index) NodeConns(node string, limit int) []sessiond.Connection {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := []sessiond.Connection{}
	for id, r := range x.nodes[node] {
		if len(out) >= limit {
			break
		}
		if i := r.conns.find(id); i >= 0 {
			out = append(out, r.conns.list[i])
		}
	}
	return out
}

// Live returns the subject's live sessions, oldest first.
func (x *Index) Live(subj string) []*sessiond.Session {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := []*sessiond.Session{}
	if e := x.subjects[subj]; e != nil {
		for r := e.head; r != nil; r = r.next {
			if r.live() {
				out = append(out, r.session())
			}
		}
	}
	slices.SortFunc(out, Oldest)
	return out
}

// Oldest orders sessions by CreatedAt, then ID.
func Oldest(a, b *sessiond.Session) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// CreatePlan is what a create will change, decided under the subject lock.
type CreatePlan struct {
	Evicted    []*sessiond.Session // evictees as they will be stored
	Events     []sessiond.Event    // eviction events then the create's own
	x          *Index
	id         string
	evictedDue time.Time
}

// Changes are the writes the create makes: each eviction, then c.
func (p *CreatePlan) Changes(c sessiond.Change) []sessiond.Change {
	out := make([]sessiond.Change, 0, len(p.Evicted)+1)
	for _, e := range p.Evicted {
		out = append(out, sessiond.Change{Session: e, Due: p.evictedDue})
	}
	return append(out, c)
}

// Release gives up the id reservation, if the plan made one. Call it once
// the create has been applied or abandoned.
func (p *CreatePlan) Release() {
	if p.id == "" {
		return
	}
	p.x.mu.Lock()
	delete(p.x.pending, p.id)
	p.x.mu.Unlock()
}

// PlanCreate checks a create against the index (connections its own, id
// free, subject under its limit or evicting, device free if asked). With reserve, it also reserves
// the id until Release, for a store that makes the create durable before
// applying it; a store that applies at once uses ApplyCreate, which checks
// the id in the same step as it inserts it. The caller holds s.Subject's
// lock.
func (x *Index) PlanCreate(c sessiond.Change, lim sessiond.Limit, reserve bool) (*CreatePlan, error) {
	s := c.Session
	if len(c.DropConns) > 0 {
		return nil, sessiond.Errorf(sessiond.CodeInvalidArgument, "connections", "a new session has no connections to drop")
	}
	if err := checkConns(c); err != nil {
		return nil, err
	}
	p := &CreatePlan{x: x, evictedDue: lim.EvictedDue}
	if reserve {
		x.mu.Lock()
		_, taken := x.byID[s.ID]
		if _, reserved := x.pending[s.ID]; taken || reserved {
			x.mu.Unlock()
			return nil, sessiond.ErrExists
		}
		x.pending[s.ID] = struct{}{}
		x.mu.Unlock()
		p.id = s.ID
	}
	if lim.UniqueDevice && len(x.FindDevice(s.Subject, s.Device.ID)) > 0 {
		p.Release()
		return nil, sessiond.ErrExists
	}
	if lim.Max > 0 && x.liveCount(s.Subject) >= lim.Max {
		live := x.Live(s.Subject)
		if over := len(live) - lim.Max + 1; over > 0 {
			if !lim.EvictOldest {
				p.Release()
				return nil, sessiond.ErrLimitReached
			}
			for _, old := range live[:over] {
				n, ev := sessiond.Ending(old, x.Conns(old.ID), sessiond.EndEvicted, lim.Now)
				p.Evicted = append(p.Evicted, n)
				p.Events = append(p.Events, ev...)
			}
		}
	}
	p.Events = append(p.Events, c.Events...)
	return p, nil
}

// liveCount returns how many live sessions the subject has.
func (x *Index) liveCount(subj string) int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if e := x.subjects[subj]; e != nil {
		return int(e.live)
	}
	return 0
}

// checkConns returns an error matching ErrInvalidArgument unless every
// connection c puts or drops is c.Session's: a connection id names its
// session (sessiond.ConnectionSession). Without it a change could
// overwrite or delete another session's connection record.
func checkConns(c sessiond.Change) error {
	id := c.Session.ID
	mine := func(connID string) error {
		if sid, err := sessiond.ConnectionSession(connID); err != nil || sid != id {
			return sessiond.Errorf(sessiond.CodeInvalidArgument, "connection", "%q is not a connection id of session %s", connID, id)
		}
		return nil
	}
	for i := range c.PutConns {
		if err := mine(c.PutConns[i].ID); err != nil {
			return err
		}
	}
	for _, connID := range c.DropConns {
		if err := mine(connID); err != nil {
			return err
		}
	}
	return nil
}

// CheckUpdate returns ErrNotFound or ErrConflict unless c may apply to the
// stored session (its version is c.Session.Version-1), and an error
// matching ErrInvalidArgument for a connection put or dropped that is not
// the session's. The caller holds s.Subject's lock.
func (x *Index) CheckUpdate(c sessiond.Change) error {
	s := c.Session
	if err := checkConns(c); err != nil {
		return err
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	r := x.byID[s.ID]
	switch {
	case r == nil:
		return sessiond.ErrNotFound
	case r.version != s.Version-1:
		return sessiond.ErrConflict
	case r.subj.name != s.Subject:
		return sessiond.Errorf(sessiond.CodeInvalidArgument, "subject", "a session's subject cannot change")
	}
	return nil
}

// CheckDelete returns ErrNotFound or ErrConflict unless the session with the
// id is at the version. The caller holds the session's subject lock.
func (x *Index) CheckDelete(id string, version uint64) error {
	x.mu.RLock()
	defer x.mu.RUnlock()
	r := x.byID[id]
	switch {
	case r == nil:
		return sessiond.ErrNotFound
	case r.version != version:
		return sessiond.ErrConflict
	}
	return nil
}

// ApplyCreate installs a create planned without a reservation (and its
// evictions) unless its id is taken, which it checks in the same step:
// ErrExists. after, if not nil, runs in that step too.
func (x *Index) ApplyCreate(c sessiond.Change, plan *CreatePlan, after func()) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	_, taken := x.byID[c.Session.ID]
	if _, reserved := x.pending[c.Session.ID]; taken || reserved {
		return sessiond.ErrExists
	}
	for _, ch := range plan.Changes(c) {
		x.putLocked(ch)
	}
	if after != nil {
		after()
	}
	return nil
}

// Apply installs changes (new sessions or new versions, with their
// connections) and removes deleted ids, in one step as seen by readers.
func (x *Index) Apply(changes []sessiond.Change, deletes []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, c := range changes {
		x.putLocked(c)
	}
	for _, id := range deletes {
		x.deleteLocked(id)
	}
}

// Load installs sessions and connections read back from storage, in as
// many calls as the caller likes, sessions first: a connection is
// installed only if its session is held, loaded by this call or an
// earlier one, and live. Load returns the connections it did not install,
// orphans (their session did not load, or is no longer live), for the
// caller to report and set aside: they count nowhere. Every session
// loaded, and every connection but WebSockets (which their edge times),
// is due at once in the deadline index (dueAtOnce).
func (x *Index) Load(sessions []*sessiond.Session, conns []sessiond.Connection) (orphans []sessiond.Connection) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, s := range sessions {
		x.putLocked(sessiond.Change{Session: s})
		x.dues.set(s.ID, dueAtOnce)
	}
	for _, c := range conns {
		sid, err := sessiond.ConnectionSession(c.ID)
		if r := x.byID[sid]; err == nil && r != nil && r.live() {
			x.putConnLocked(r, c)
			if c.Kind != sessiond.KindWebSocket {
				x.dues.set(c.ID, dueAtOnce)
			}
		} else {
			orphans = append(orphans, c)
		}
	}
	return orphans
}

func (x *Index) putLocked(c sessiond.Change) {
	s := c.Session
	r := x.byID[s.ID]
	if r == nil {
		e := x.subjects[s.Subject]
		if e == nil {
			e = &subject{name: strings.Clone(s.Subject)}
			x.subjects[e.name] = e
		}
		r = &rec{id: strings.Clone(s.ID), subj: e, next: e.head}
		e.head = r
		x.byID[r.id] = r
		x.order.ReplaceOrInsert(r)
	} else {
		x.unindex(r)
	}
	r.set(s, x.intern(s.Policy))
	x.index(r)
	x.dues.set(r.id, nanos(c.Due))
	if !r.live() {
		x.dropConnsLocked(r)
		return
	}
	for _, id := range c.DropConns {
		x.dropConnLocked(r, id)
	}
	for _, conn := range c.PutConns {
		x.putConnLocked(r, conn)
	}
	for _, d := range c.ConnDue {
		if r.conns.find(d.ID) >= 0 {
			x.dues.set(d.ID, nanos(d.At))
		}
	}
}

func (x *Index) putConnLocked(r *rec, c sessiond.Connection) {
	if r.conns == nil {
		r.conns = &connSet{}
	}
	if old, replaced := r.conns.put(c); replaced {
		x.unindexConn(r, old)
	}
	x.indexConn(r, c)
}

func (x *Index) dropConnLocked(r *rec, id string) {
	if c, ok := r.conns.remove(id); ok {
		x.unindexConn(r, c)
		x.dues.set(id, 0)
	}
	if r.conns.len() == 0 {
		r.conns = nil
	}
}

func (x *Index) dropConnsLocked(r *rec) {
	if r.conns == nil {
		return
	}
	for _, c := range r.conns.list {
		x.unindexConn(r, c)
		x.dues.set(c.ID, 0)
	}
	r.conns = nil
}

// indexConn counts a live session's connection by kind and by node.
func (x *Index) indexConn(r *rec, c sessiond.Connection) {
	x.conns[c.Kind]++
	if c.Node != "" {
		m := x.nodes[c.Node]
		if m == nil {
			m = make(map[string]*rec)
			x.nodes[c.Node] = m
		}
		m[c.ID] = r
	}
}

func (x *Index) unindexConn(_ *rec, c sessiond.Connection) {
	if x.conns[c.Kind]--; x.conns[c.Kind] <= 0 {
		delete(x.conns, c.Kind)
	}
	if c.Node != "" {
		if m := x.nodes[c.Node]; m != nil {
			delete(m, c.ID)
			if len(m) == 0 {
				delete(x.nodes, c.Node)
			}
		}
	}
}

// holdsToken reports whether h is r's current, previous or a retired token.
func (r *rec) holdsToken(h sessiond.TokenHash) bool {
	if r.token == h {
		return true
	}
	if r.extra == nil {
		return false
	}
	return r.extra.prevToken == h || slices.Contains(r.extra.retired, h)
}

// index counts r and makes its tokens and device find it; unindex undoes
// it. A record changes between the two. Its connections are indexed apart.
func (x *Index) index(r *rec) {
	x.count[r.state]++
	x.byToken[keyOf(r.token)] = r
	if r.extra != nil {
		if !r.extra.prevToken.IsZero() {
			x.byToken[keyOf(r.extra.prevToken)] = r
		}
		for _, h := range r.extra.retired {
			x.byToken[keyOf(h)] = r
		}
	}
	if r.live() {
		if r.subj.live++; r.subj.live == 1 {
			x.nlive++
		}
		if d := r.deviceID(); d != "" {
			if r.subj.devices == nil {
				r.subj.devices = make(map[string][]*rec)
			}
			r.subj.devices[d] = append(r.subj.devices[d], r)
		}
	}
}

func (x *Index) unindex(r *rec) {
	x.count[r.state]--
	drop := func(h sessiond.TokenHash) {
		if k := keyOf(h); x.byToken[k] == r {
			delete(x.byToken, k)
		}
	}
	drop(r.token)
	if r.extra != nil {
		if !r.extra.prevToken.IsZero() {
			drop(r.extra.prevToken)
		}
		for _, h := range r.extra.retired {
			drop(h)
		}
	}
	if r.live() {
		if r.subj.live--; r.subj.live == 0 {
			x.nlive--
		}
		if d := r.deviceID(); d != "" {
			list := slices.DeleteFunc(r.subj.devices[d], func(o *rec) bool { return o == r })
			if len(list) == 0 {
				delete(r.subj.devices, d)
			} else {
				r.subj.devices[d] = list
			}
		}
	}
}

func (r *rec) deviceID() string {
	if r.extra == nil {
		return ""
	}
	return r.extra.device.ID
}

func (x *Index) deleteLocked(id string) {
	r := x.byID[id]
	if r == nil {
		return
	}
	x.unindex(r)
	x.dropConnsLocked(r)
	x.dues.set(id, 0)
	delete(x.byID, id)
	x.order.Delete(r)
	e := r.subj
	if e.head == r {
		e.head = r.next
	} else {
		for p := e.head; p != nil; p = p.next {
			if p.next == r {
				p.next = r.next
				break
			}
		}
	}
	if e.head == nil {
		delete(x.subjects, e.name)
	}
}

// intern returns the one copy of a policy name.
func (x *Index) intern(name string) string {
	if v, ok := x.policies[name]; ok {
		return v
	}
	name = strings.Clone(name)
	x.policies[name] = name
	return name
}

// Stats returns counts by state and live subjects.
func (x *Index) Stats() sessiond.StoreStats {
	x.mu.RLock()
	defer x.mu.RUnlock()
	st := sessiond.StoreStats{
		ByState: make(map[sessiond.State]int, len(sessiond.States)), Subjects: x.nlive,
		Connections: make(map[string]int, len(x.conns)), Due: len(x.dues.at),
	}
	for _, s := range sessiond.States {
		st.ByState[s] = x.count[s]
		st.Total += x.count[s]
	}
	for k, n := range x.conns {
		st.Connections[k] = n
	}
	return st
}

// Len returns the number of sessions held.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.byID)
}

const (
	defaultLimit = 100
	maxLimit     = 1000
	cursorPrefix = "c1."
)

// EncodeCursor makes an opaque cursor that resumes after id.
func EncodeCursor(id string) string {
	return cursorPrefix + base64.RawURLEncoding.EncodeToString([]byte(id))
}

// DecodeCursor returns the id a cursor resumes after.
func DecodeCursor(c string) (string, error) {
	if c == "" {
		return "", nil
	}
	bad := sessiond.Errorf(sessiond.CodeInvalidArgument, "cursor", "not a cursor this server issued")
	rest, ok := strings.CutPrefix(c, cursorPrefix)
	if !ok {
		return "", bad
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || !sessiond.ValidID(string(b)) {
		return "", bad
	}
	return string(b), nil
}

// List implements Store.List. Without a subject filter it walks the id order
// and looks at no more than 10 pages' worth of sessions per call.
func (x *Index) List(q sessiond.Query) (sessiond.Page, error) {
	after, err := DecodeCursor(q.Cursor)
	if err != nil {
		return sessiond.Page{}, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	limit = min(limit, maxLimit)
	match := func(r *rec) bool { return q.State == 0 || r.state == q.State }

	x.mu.RLock()
	defer x.mu.RUnlock()
	var page sessiond.Page
	if q.Subject != "" {
		e := x.subjects[q.Subject]
		if e == nil {
			return page, nil
		}
		var recs []*rec
		for r := e.head; r != nil; r = r.next {
			if r.id > after && match(r) {
				recs = append(recs, r)
			}
		}
		slices.SortFunc(recs, func(a, b *rec) int { return strings.Compare(a.id, b.id) })
		if len(recs) > limit {
			recs = recs[:limit]
			page.Next = EncodeCursor(recs[limit-1].id)
		}
		for _, r := range recs {
			page.Sessions = append(page.Sessions, r.session())
		}
		return page, nil
	}
	budget := limit * 10
	last := ""
	x.order.AscendGreaterOrEqual(&rec{id: after}, func(r *rec) bool {
		if r.id == after {
			return true
		}
		if len(page.Sessions) == limit || budget == 0 {
			page.Next = EncodeCursor(last)
			return false
		}
		budget--
		last = r.id
		if match(r) {
			page.Sessions = append(page.Sessions, r.session())
		}
		return true
	})
	return page, nil
}
