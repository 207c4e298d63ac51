package memindex

import (
	"time"

	"github.com/google/btree"

	"github.com/sessiond/sessiond"
)

// dueItem is an entry of the deadline index: a session's or a connection's
// id, and when it is due (Unix nanoseconds).
type dueItem struct {
	at int64
	id string
}

func dueLess(a, b dueItem) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.id < b.id
}

// dues is the deadline index (sessiond.Store.ClaimDue): entries ordered by
// time, and each entry's time by id. The caller holds the index's write
// lock for every method.
type dues struct {
	order *btree.BTreeG[dueItem]
	at    map[string]int64
}

func newDues() dues {
	return dues{order: btree.NewG(32, dueLess), at: make(map[string]int64)}
}

// set puts id's entry at at (Unix nanoseconds); 0 removes it.
func (d *dues) set(id string, at int64) {
	if old, ok := d.at[id]; ok {
		if old == at {
			return
		}
		d.order.Delete(dueItem{old, id})
		delete(d.at, id)
	}
	if at != 0 {
		d.at[id] = at
		d.order.ReplaceOrInsert(dueItem{at, id})
	}
}

// dueAtOnce is the time of the entries of sessions and connections loaded
// from storage (Load): the durable store does not keep the index, so each
// is due at once, and the engine puts it at its deadline (Reschedule) or
// handles it.
const dueAtOnce = 1

// ClaimDue implements sessiond.Store.ClaimDue for the stores built on the
// index. Claims live in memory only: after a restart, what was claimed is
// due again.
func (x *Index) ClaimDue(now time.Time, hold time.Duration, limit int) ([]sessiond.Due, time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := now.UnixNano()
	var out []sessiond.Due
	x.dues.order.Ascend(func(it dueItem) bool {
		if it.at > n || len(out) >= limit {
			return false
		}
		d := sessiond.Due{ID: it.id, At: timeOf(it.at)}
		if r := x.byID[it.id]; r != nil {
			d.Session = r.session()
		}
		out = append(out, d)
		return true
	})
	until := now.Add(hold).UnixNano()
	for _, d := range out {
		x.dues.set(d.ID, until)
	}
	var next time.Time
	if it, ok := x.dues.order.Min(); ok {
		next = timeOf(it.at)
	}
	return out, next
}

// Reschedule implements sessiond.Store.Reschedule for the stores built on
// the index.
func (x *Index) Reschedule(d sessiond.Due, version uint64) {
	sid := d.ID
	if id, err := sessiond.ConnectionSession(d.ID); err == nil {
		sid = id
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	r := x.byID[sid]
	if r == nil || r.version != version {
		return
	}
	if sid != d.ID && r.conns.find(d.ID) < 0 {
		return
	}
	x.dues.set(d.ID, nanos(d.At))
}
