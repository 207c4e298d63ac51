package memindex

import (
	"slices"
	"strings"

	"github.com/sessiond/sessiond"
)

// connSet is one session's connections. Small sets (the common case: one
// or a few) are a plain slice searched linearly; past smallSet an index by
// id is kept too, so that adding, finding and removing a connection costs
// the same whatever the number of connections.
type connSet struct {
	list []sessiond.Connection // in no particular order
	idx  map[string]int32      // id -> position in list, once len(list) > smallSet
}

const smallSet = 8

func (cs *connSet) len() int {
	if cs == nil {
		return 0
	}
	return len(cs.list)
}

func (cs *connSet) find(id string) int {
	if cs == nil {
		return -1
	}
	if cs.idx != nil {
		if i, ok := cs.idx[id]; ok {
			return int(i)
		}
		return -1
	}
	for i := range cs.list {
		if cs.list[i].ID == id {
			return i
		}
	}
	return -1
}

// put adds c, or replaces the connection with its id; it returns the one
// replaced, if any.
func (cs *connSet) put(c sessiond.Connection) (old sessiond.Connection, replaced bool) {
	if i := cs.find(c.ID); i >= 0 {
		old, cs.list[i] = cs.list[i], c
		return old, true
	}
	cs.list = append(cs.list, c)
	switch {
	case cs.idx != nil:
		cs.idx[c.ID] = int32(len(cs.list) - 1)
	case len(cs.list) > smallSet:
		cs.idx = make(map[string]int32, len(cs.list)*2)
		for i := range cs.list {
			cs.idx[cs.list[i].ID] = int32(i)
		}
	}
	return sessiond.Connection{}, false
}

// remove drops the connection with the id and returns it.
func (cs *connSet) remove(id string) (sessiond.Connection, bool) {
	i := cs.find(id)
	if i < 0 {
		return sessiond.Connection{}, false
	}
	c := cs.list[i]
	last := len(cs.list) - 1
	if i != last {
		cs.list[i] = cs.list[last]
		if cs.idx != nil {
			cs.idx[cs.list[i].ID] = int32(i)
		}
	}
	cs.list[last] = sessiond.Connection{}
	cs.list = cs.list[:last]
	if cs.idx != nil {
		delete(cs.idx, id)
		if len(cs.list) <= smallSet/2 {
			cs.idx = nil
		}
	}
	if cap(cs.list) > 4*smallSet && len(cs.list) < cap(cs.list)/4 {
		cs.list = slices.Clip(slices.Clone(cs.list))
	}
	return c, true
}

// sorted returns a copy of the connections, oldest first by ConnectedAt
// then ID.
func (cs *connSet) sorted() []sessiond.Connection {
	if cs.len() == 0 {
		return []sessiond.Connection{}
	}
	out := slices.Clone(cs.list)
	slices.SortFunc(out, func(a, b sessiond.Connection) int {
		if c := a.ConnectedAt.Compare(b.ConnectedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}
