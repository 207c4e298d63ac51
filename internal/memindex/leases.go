package memindex

import (
	"slices"
	"strings"
	"sync"

	"github.com/sessiond/sessiond"
)

// Leases holds the nodes' leases. Writers hold Lock from their check to
// their Apply, so that a durable store can write in between.
type Leases struct {
	mu sync.Mutex // writers
	rd sync.RWMutex
	m  map[string]sessiond.NodeLease
}

// Lock serialises lease writers; call the result to unlock.
func (l *Leases) Lock() func() {
	l.mu.Lock()
	return l.mu.Unlock
}

// CheckPut returns the error Store.PutLease gives for lease, or nil. The
// caller holds Lock.
func (l *Leases) CheckPut(lease sessiond.NodeLease) error {
	if lease.Node == "" {
		return sessiond.Errorf(sessiond.CodeInvalidArgument, "node", "is required")
	}
	l.rd.RLock()
	defer l.rd.RUnlock()
	old, ok := l.m[lease.Node]
	switch {
	case lease.Version == 1 && ok:
		return sessiond.ErrExists
	case lease.Version == 1:
		return nil
	case !ok:
		return sessiond.ErrNotFound
	case old.Version != lease.Version-1:
		return sessiond.ErrConflict
	}
	return nil
}

// CheckDelete returns the error Store.DeleteLease gives, or nil. The caller
// holds Lock.
func (l *Leases) CheckDelete(node string, version uint64) error {
	l.rd.RLock()
	defer l.rd.RUnlock()
	old, ok := l.m[node]
	switch {
	case !ok:
		return sessiond.ErrNotFound
	case old.Version != version:
		return sessiond.ErrConflict
	}
	return nil
}

// Put installs a lease (checked, and durable if the store is).
func (l *Leases) Put(lease sessiond.NodeLease) {
	l.rd.Lock()
	defer l.rd.Unlock()
	if l.m == nil {
		l.m = make(map[string]sessiond.NodeLease)
	}
	lease.Node = strings.Clone(lease.Node)
	l.m[lease.Node] = lease
}

// Delete removes a node's lease.
func (l *Leases) Delete(node string) {
	l.rd.Lock()
	defer l.rd.Unlock()
	delete(l.m, node)
}

// All returns every lease, by node name.
func (l *Leases) All() []sessiond.NodeLease {
	l.rd.RLock()
	defer l.rd.RUnlock()
	out := make([]sessiond.NodeLease, 0, len(l.m))
	for _, v := range l.m {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b sessiond.NodeLease) int { return strings.Compare(a.Node, b.Node) })
	return out
}
