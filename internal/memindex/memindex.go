// Package memindex holds sessions in memory with the indexes every Store
// needs: by id, by token hash, live sessions per subject, id order for
// listing, and counts by state. The inmem store is this index alone; the
// pebble store keeps the same index in front of its durable log, so reads
// never touch disk.
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
	"cmp"
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
	byID     map[string]*sessiond.Session
	byToken  map[sessiond.TokenHash]*sessiond.Session
	subjects map[string]*subject
	order    *btree.BTreeG[string]
	pending  map[string]struct{} // ids reserved by creates in flight
	count    [sessiond.StateEnded + 1]int
	nlive    int            // subjects with a live session
	conns    map[string]int // connections of live sessions by kind
}

type subject struct {
	live  []string // ids of live sessions
	ended []string // ids of ending and ended sessions not yet purged
}

// New returns an empty index.
func New() *Index {
	return &Index{
		seed:     maphash.MakeSeed(),
		byID:     make(map[string]*sessiond.Session),
		byToken:  make(map[sessiond.TokenHash]*sessiond.Session),
		subjects: make(map[string]*subject),
		order:    btree.NewG(32, func(a, b string) bool { return a < b }),
		pending:  make(map[string]struct{}),
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
	s := x.byID[id]
	x.mu.RUnlock()
	return s
}

// FindToken returns the session holding h as its current or previous token, or nil.
func (x *Index) FindToken(h sessiond.TokenHash) *sessiond.Session {
	x.mu.RLock()
	s := x.byToken[h]
	x.mu.RUnlock()
	return s
}

// Live returns the subject's live sessions, oldest first.
func (x *Index) Live(subj string) []*sessiond.Session {
	x.mu.RLock()
	out := x.liveLocked(subj)
	x.mu.RUnlock()
	return out
}

func (x *Index) liveLocked(subj string) []*sessiond.Session {
	e := x.subjects[subj]
	if e == nil {
		return []*sessiond.Session{}
	}
	out := make([]*sessiond.Session, 0, len(e.live))
	for _, id := range e.live {
		out = append(out, x.byID[id])
	}
	slices.SortFunc(out, Oldest)
	return out
}

// Oldest orders sessions by CreatedAt, then ID.
func Oldest(a, b *sessiond.Session) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// CreatePlan is what a create will change, decided under the subject lock.
type CreatePlan struct {
	Evicted []*sessiond.Session // evictees as they will be stored
	Events  []sessiond.Event    // eviction events then the create's own
	x       *Index
	id      string
}

// Release gives up the id reservation. Call it once the create has been
// applied or abandoned.
func (p *CreatePlan) Release() {
	p.x.mu.Lock()
	delete(p.x.pending, p.id)
	p.x.mu.Unlock()
}

// PlanCreate checks a create against the index (id free, subject under its
// limit or evicting) and reserves the id. The caller holds s.Subject's lock.
func (x *Index) PlanCreate(s *sessiond.Session, lim sessiond.Limit, events []sessiond.Event) (*CreatePlan, error) {
	x.mu.Lock()
	if _, ok := x.byID[s.ID]; ok {
		x.mu.Unlock()
		return nil, sessiond.ErrExists
	}
	if _, ok := x.pending[s.ID]; ok {
		x.mu.Unlock()
		return nil, sessiond.ErrExists
	}
	x.pending[s.ID] = struct{}{}
	x.mu.Unlock()

	p := &CreatePlan{x: x, id: s.ID}
	if lim.UniqueDevice {
		for _, o := range x.Live(s.Subject) {
			if o.Device.ID == s.Device.ID {
				p.Release()
				return nil, sessiond.ErrExists
			}
		}
	}
	if lim.Max > 0 {
		live := x.Live(s.Subject)
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

// CheckUpdate returns the stored session that s replaces, or ErrNotFound or
// ErrConflict. The caller holds s.Subject's lock.
func (x *Index) CheckUpdate(s *sessiond.Session) (*sessiond.Session, error) {
	old := x.Get(s.ID)
	switch {
	case old == nil:
		return nil, sessiond.ErrNotFound
	case old.Version != s.Version-1:
		return nil, sessiond.ErrConflict
	case old.Subject != s.Subject:
		return nil, sessiond.Errorf(sessiond.CodeInvalidArgument, "subject", "a session's subject cannot change")
	}
	return old, nil
}

// CheckDelete returns the stored session to delete, or ErrNotFound or
// ErrConflict. The caller holds the session's subject lock.
func (x *Index) CheckDelete(id string, version uint64) (*sessiond.Session, error) {
	old := x.Get(id)
	switch {
	case old == nil:
		return nil, sessiond.ErrNotFound
	case old.Version != version:
		return nil, sessiond.ErrConflict
	}
	return old, nil
}

// Apply installs sessions (new or replacing) and removes deleted ids, in one
// step as seen by readers.
func (x *Index) Apply(puts []*sessiond.Session, deletes []string) {
	x.mu.Lock()
	for _, s := range puts {
		x.putLocked(s)
	}
	for _, id := range deletes {
		x.deleteLocked(id)
	}
	x.mu.Unlock()
}

// countConns adds (sign 1) or removes (sign -1) a session's connections
// from the counts; only live sessions' connections count.
func (x *Index) countConns(s *sessiond.Session, sign int) {
	if !s.State.Live() {
		return
	}
	for _, c := range s.Conns {
		if x.conns[c.Kind] += sign; x.conns[c.Kind] == 0 {
			delete(x.conns, c.Kind)
		}
	}
}

func (x *Index) putLocked(s *sessiond.Session) {
	old := x.byID[s.ID]
	x.byID[s.ID] = s
	x.countConns(s, 1)
	if old != nil {
		x.countConns(old, -1)
		x.count[old.State]--
		if old.TokenHash != s.TokenHash && old.TokenHash != s.PrevTokenHash {
			delete(x.byToken, old.TokenHash)
		}
		if !old.PrevTokenHash.IsZero() && old.PrevTokenHash != s.TokenHash && old.PrevTokenHash != s.PrevTokenHash {
			delete(x.byToken, old.PrevTokenHash)
		}
	} else {
		x.order.ReplaceOrInsert(s.ID)
	}
	x.count[s.State]++
	x.byToken[s.TokenHash] = s
	if !s.PrevTokenHash.IsZero() {
		x.byToken[s.PrevTokenHash] = s
	}

	e := x.subjects[s.Subject]
	if e == nil {
		e = &subject{}
		x.subjects[s.Subject] = e
	}
	wasLive := old != nil && old.State.Live()
	switch {
	case old == nil && s.State.Live():
		x.addLive(e, s.ID)
	case old == nil:
		e.ended = append(e.ended, s.ID)
	case wasLive && !s.State.Live():
		x.removeLive(e, s.ID)
		e.ended = append(e.ended, s.ID)
	case !wasLive && s.State.Live():
		// Ended sessions never come back; stores refuse nothing here, so keep
		// the index consistent anyway.
		e.ended = remove(e.ended, s.ID)
		x.addLive(e, s.ID)
	}
}

func (x *Index) addLive(e *subject, id string) {
	if len(e.live) == 0 {
		x.nlive++
	}
	e.live = append(e.live, id)
}

func (x *Index) removeLive(e *subject, id string) {
	e.live = remove(e.live, id)
	if len(e.live) == 0 {
		x.nlive--
		e.live = nil
	}
}

func (x *Index) deleteLocked(id string) {
	s := x.byID[id]
	if s == nil {
		return
	}
	delete(x.byID, id)
	x.order.Delete(id)
	x.count[s.State]--
	x.countConns(s, -1)
	if x.byToken[s.TokenHash] == s {
		delete(x.byToken, s.TokenHash)
	}
	if !s.PrevTokenHash.IsZero() && x.byToken[s.PrevTokenHash] == s {
		delete(x.byToken, s.PrevTokenHash)
	}
	if e := x.subjects[s.Subject]; e != nil {
		if s.State.Live() {
			x.removeLive(e, id)
		} else {
			e.ended = remove(e.ended, id)
		}
		if len(e.live) == 0 && len(e.ended) == 0 {
			delete(x.subjects, s.Subject)
		}
	}
}

// remove deletes id from ids, keeping order, and lets a drained slice go.
func remove(ids []string, id string) []string {
	i := slices.Index(ids, id)
	if i < 0 {
		return ids
	}
	ids = slices.Delete(ids, i, i+1)
	if len(ids) == 0 {
		return nil
	}
	return ids
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
	match := func(s *sessiond.Session) bool { return q.State == 0 || s.State == q.State }

	x.mu.RLock()
	defer x.mu.RUnlock()
	var page sessiond.Page
	if q.Subject != "" {
		e := x.subjects[q.Subject]
		if e == nil {
			return page, nil
		}
		ids := slices.Concat(e.live, e.ended)
		slices.Sort(ids)
		for _, id := range ids {
			if id <= after {
				continue
			}
			if s := x.byID[id]; match(s) {
				if len(page.Sessions) == limit {
					page.Next = EncodeCursor(page.Sessions[limit-1].ID)
					break
				}
				page.Sessions = append(page.Sessions, s)
			}
		}
		return page, nil
	}
	budget := limit * 10
	last := ""
	x.order.AscendGreaterOrEqual(after, func(id string) bool {
		if id == after {
			return true
		}
		if len(page.Sessions) == limit || budget == 0 {
			page.Next = EncodeCursor(last)
			return false
		}
		budget--
		last = id
		if s := x.byID[id]; match(s) {
			page.Sessions = append(page.Sessions, s)
		}
		return true
	})
	return page, nil
}
