// Package memindex holds sessions in memory with the indexes every Store
// needs: by id (in id order, for listing), by token hash, by subject, and
// counts by state. The inmem store is this index alone; the pebble store
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
// Every change to a session goes through its subject's lock, so a check made
// under the lock still holds when Apply runs. Readers never take that lock.
package memindex

import (
	"encoding/base64"
	"hash/maphash"
	"slices"
	"strings"
	"sync"

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
	byToken  map[tokenKey]*rec // current and previous token hashes
	subjects map[string]*subject
	order    *btree.BTreeG[*rec] // all sessions by id
	pending  map[string]struct{} // ids reserved by creates in flight
	policies map[string]string   // interned policy names
	count    [sessiond.StateEnded + 1]int
	nlive    int            // subjects with a live session
	conns    map[string]int // connections of live sessions by kind
}

// subject is the list of one subject's sessions, live and ended.
type subject struct {
	name string
	head *rec
	live int32
}

// New returns an empty index.
func New() *Index {
	return &Index{
		seed:     maphash.MakeSeed(),
		byID:     make(map[string]*rec),
		byToken:  make(map[tokenKey]*rec),
		subjects: make(map[string]*subject),
		order:    btree.NewG(32, func(a, b *rec) bool { return a.id < b.id }),
		pending:  make(map[string]struct{}),
		policies: make(map[string]string),
		conns:    make(map[string]int),
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
	if r == nil || (r.token != h && (r.extra == nil || r.extra.prevToken != h)) {
		return nil // a prefix of another hash: 2^-128 per pair, but checked
	}
	return r.session()
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
	Evicted []*sessiond.Session // evictees as they will be stored
	Events  []sessiond.Event    // eviction events then the create's own
	x       *Index
	id      string
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

// PlanCreate checks a create against the index (id free, subject under its
// limit or evicting, device free if asked). With reserve, it also reserves
// the id until Release, for a store that makes the create durable before
// applying it; a store that applies at once uses ApplyCreate, which checks
// the id in the same step as it inserts it. The caller holds s.Subject's
// lock.
func (x *Index) PlanCreate(s *sessiond.Session, lim sessiond.Limit, events []sessiond.Event, reserve bool) (*CreatePlan, error) {
	p := &CreatePlan{x: x}
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
	var live []*sessiond.Session
	if lim.UniqueDevice || lim.Max > 0 {
		live = x.Live(s.Subject)
	}
	if lim.UniqueDevice {
		for _, o := range live {
			if o.Device.ID == s.Device.ID {
				p.Release()
				return nil, sessiond.ErrExists
			}
		}
	}
	if lim.Max > 0 {
		if over := len(live) - lim.Max + 1; over > 0 {
			if !lim.EvictOldest {
				p.Release()
				return nil, sessiond.ErrLimitReached
			}
			for _, old := range live[:over] {
				n, ev := sessiond.Ending(old, sessiond.EndEvicted, lim.Now)
				p.Evicted = append(p.Evicted, n)
				p.Events = append(p.Events, ev...)
			}
		}
	}
	p.Events = append(p.Events, events...)
	return p, nil
}

// CheckUpdate returns ErrNotFound or ErrConflict unless s may replace the
// stored session (its version is s.Version-1). The caller holds
// s.Subject's lock.
func (x *Index) CheckUpdate(s *sessiond.Session) error {
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
func (x *Index) ApplyCreate(s *sessiond.Session, evicted []*sessiond.Session, after func()) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	_, taken := x.byID[s.ID]
	if _, reserved := x.pending[s.ID]; taken || reserved {
		return sessiond.ErrExists
	}
	for _, e := range evicted {
		x.putLocked(e)
	}
	x.putLocked(s)
	if after != nil {
		after()
	}
	return nil
}

// Apply installs sessions (new or replacing) and removes deleted ids, in one
// step as seen by readers.
func (x *Index) Apply(puts []*sessiond.Session, deletes []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, s := range puts {
		x.putLocked(s)
	}
	for _, id := range deletes {
		x.deleteLocked(id)
	}
}

func (x *Index) putLocked(s *sessiond.Session) {
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
}

// index counts r and makes its tokens find it; unindex undoes it. A
// record changes between the two.
func (x *Index) index(r *rec) {
	x.count[r.state]++
	x.byToken[keyOf(r.token)] = r
	if r.extra != nil && r.extra.prevToken != (sessiond.TokenHash{}) {
		x.byToken[keyOf(r.extra.prevToken)] = r
	}
	if r.live() {
		if r.subj.live++; r.subj.live == 1 {
			x.nlive++
		}
		if r.extra != nil {
			for _, c := range r.extra.conns {
				x.conns[c.Kind]++
			}
		}
	}
}

func (x *Index) unindex(r *rec) {
	x.count[r.state]--
	if x.byToken[keyOf(r.token)] == r {
		delete(x.byToken, keyOf(r.token))
	}
	if r.extra != nil && r.extra.prevToken != (sessiond.TokenHash{}) && x.byToken[keyOf(r.extra.prevToken)] == r {
		delete(x.byToken, keyOf(r.extra.prevToken))
	}
	if r.live() {
		if r.subj.live--; r.subj.live == 0 {
			x.nlive--
		}
		if r.extra != nil {
			for _, c := range r.extra.conns {
				if x.conns[c.Kind]--; x.conns[c.Kind] == 0 {
					delete(x.conns, c.Kind)
				}
			}
		}
	}
}

func (x *Index) deleteLocked(id string) {
	r := x.byID[id]
	if r == nil {
		return
	}
	x.unindex(r)
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
		Connections: make(map[string]int, len(x.conns)),
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
