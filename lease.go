package sessiond

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// DefaultLeaseTTL is how long a node's lease lasts unless renewed, when
// Config leaves LeaseTTL zero. A node renews it every third of that.
const DefaultLeaseTTL = 15 * time.Second

// leases is this node's side of the node leases (see NodeLease): it keeps
// its own lease renewed, and watches the others' so that the connections
// of a node that is gone count as lost, once.
type leases struct {
	mu      sync.Mutex
	own     NodeLease // as stored; Version 0 while this node holds none
	timer   Timer
	fenced  []func()
	stopped bool
	// A lease is renewed through the store, so one that lapsed while this
	// node could not reach the store either (Redis down for every node)
	// says nothing of its node. unreachable is set while this node's own
	// renewals fail; once one succeeds again, it takes no other node's
	// lease for dead before trustAt, a whole lease later: each node has had
	// the store for a lease's life to renew its own.
	unreachable bool
	trustAt     time.Time
}

// OnFenced registers f to run when this node finds that its lease was
// claimed by another node (it was taken for dead: a long pause, a lost
// store): the connections it recorded have been, or are being, treated as
// lost, so whatever it holds for them (sockets) must close, and clients
// reconnect. The WebSocket edge registers here. f must not block.
func (m *Manager) OnFenced(f func()) {
	m.lease.mu.Lock()
	defer m.lease.mu.Unlock()
	m.lease.fenced = append(m.lease.fenced, f)
}

// Lease returns this node's lease as last stored (Version 0: none held).
func (m *Manager) Lease() NodeLease {
	m.lease.mu.Lock()
	defer m.lease.mu.Unlock()
	return m.lease.own
}

// startLeases takes this node's lease (taking over the one its previous
// process left, if any), detaches the connections that process held, and
// schedules the expiry of every other node's lease, also of nodes that
// hold connections and no lease at all.
//
// If another node has claimed this node's lease and is working off its
// connections, it waits until that node is done (it deletes the lease) or
// its claim lapses (it died too): taking the lease over at once would let
// the claimer detach the connections this process records from then on.
func (m *Manager) startLeases(ctx context.Context) error {
	all, err := m.awaitOwnClaim(ctx)
	if err != nil {
		return err
	}
	now := m.now()
	own := NodeLease{Node: m.node, Until: now.Add(m.leaseTTL), Version: 1}
	leased := make(map[string]bool, len(all))
	for _, l := range all {
		leased[l.Node] = true
		if l.Node == m.node {
			own.Version = l.Version + 1
			continue
		}
		m.scheduleAt(schedKey{keyLease, l.Node}, l.Until)
	}
	if err := m.store.PutLease(ctx, own); err != nil {
		return err
	}
	m.lease.mu.Lock()
	m.lease.own = own
	m.lease.mu.Unlock()
	n, err := m.dropNodeConns(ctx, m.node, ClosedNodeRestarted)
	if err != nil {
		return err
	}
	if n > 0 {
		m.log.Info("connections of the previous process detached", "node", m.node, "connections", n)
	}
	nodes, err := m.store.ConnNodes(ctx)
	if err != nil {
		return err
	}
	for _, node := range nodes {
		if !leased[node] && node != m.node {
			m.scheduleAt(schedKey{keyLease, node}, now) // connections and no lease: gone
		}
	}
	m.armRenewal()
	return nil
}

// awaitOwnClaim returns every lease once this node's own is not claimed
// by another node that is still working it off.
func (m *Manager) awaitOwnClaim(ctx context.Context) ([]NodeLease, error) {
	for logged := false; ; {
		all, err := m.store.Leases(ctx)
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(all, func(l NodeLease) bool { return l.Node == m.node })
		now := m.now()
		if i < 0 || !all[i].Dead || !now.Before(all[i].Until) {
			return all, nil
		}
		if !logged {
			m.log.Warn("another node is working off this node's connections: waiting for it", "node", m.node, "until", all[i].Until)
			logged = true
		}
		if err := m.sleep(ctx, min(all[i].Until.Sub(now), m.leaseTTL/30)); err != nil {
			return nil, err
		}
	}
}

// sleep waits for d on the engine's clock, or for ctx.
func (m *Manager) sleep(ctx context.Context, d time.Duration) error { return Sleep(ctx, m.clock, d) }

func (m *Manager) armRenewal() {
	m.lease.mu.Lock()
	defer m.lease.mu.Unlock()
	if m.lease.stopped {
		return
	}
	d := m.leaseTTL / 3
	if m.lease.timer == nil {
		m.lease.timer = m.clock.AfterFunc(d, m.renewLease)
	} else {
		m.lease.timer.Reset(d)
	}
}

func (m *Manager) stopLeases() {
	m.lease.mu.Lock()
	defer m.lease.mu.Unlock()
	m.lease.stopped = true
	if m.lease.timer != nil {
		m.lease.timer.Stop()
	}
}

// renewLease runs every third of the lease's life: it renews this node's
// lease (or takes a new one after being fenced off) and schedules the
// expiry of leases of nodes that appeared since.
func (m *Manager) renewLease() {
	defer m.armRenewal()
	ctx, cancel := context.WithTimeout(m.ctx, m.leaseTTL/3)
	defer cancel()
	m.lease.mu.Lock()
	own := m.lease.own
	m.lease.mu.Unlock()
	next := NodeLease{Node: m.node, Until: m.now().Add(m.leaseTTL), Version: own.Version + 1}
	err := m.store.PutLease(ctx, next)
	switch {
	case err == nil:
		m.lease.mu.Lock()
		m.lease.own = next
		if m.lease.unreachable {
			m.lease.unreachable, m.lease.trustAt = false, m.now().Add(m.leaseTTL)
		}
		m.lease.mu.Unlock()
	case own.Version > 0 && (errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound)):
		m.fence()
	case errors.Is(err, ErrExists):
		// Fenced, and the claim on the old lease is still being worked
		// off: take a new one next time.
	default:
		if m.ctx.Err() == nil {
			m.log.Warn("renewing this node's lease", "node", m.node, "err", err)
		}
		m.lease.mu.Lock()
		m.lease.unreachable = true
		m.lease.mu.Unlock()
		return
	}
	all, err := m.store.Leases(ctx)
	if err != nil {
		return
	}
	for _, l := range all {
		if l.Node != m.node {
			m.scheduleAt(schedKey{keyLease, l.Node}, l.Until)
		}
	}
}

// fence runs when another node claimed this node's lease: what this node
// holds is taken for lost, so it closes it.
func (m *Manager) fence() {
	m.lease.mu.Lock()
	m.lease.own = NodeLease{}
	fs := slices.Clone(m.lease.fenced)
	m.lease.mu.Unlock()
	m.log.Error("this node's lease was claimed by another node: closing what it holds", "node", m.node)
	m.obs.Fenced()
	for _, f := range fs {
		f()
	}
}

// leaseDue handles another node's lease expiry: if the lease was not
// renewed, claim it (a compare-and-set, so one node works it off), detach
// every connection the node held (each a compare-and-set: once), and
// delete it. A node holding connections and no lease is handled alike.
func (m *Manager) leaseDue(ctx context.Context, node string) error {
	if node == m.node {
		return nil
	}
	m.lease.mu.Lock()
	unreachable, trustAt := m.lease.unreachable, m.lease.trustAt
	m.lease.mu.Unlock()
	if now := m.now(); unreachable || now.Before(trustAt) {
		// This node lost the store too: the lease may have lapsed for that.
		// Look again after the next renewal, or once trusted again.
		at := trustAt
		if unreachable {
			at = now.Add(m.leaseTTL / 3)
		}
		m.scheduleAt(schedKey{keyLease, node}, at)
		return nil
	}
	all, err := m.store.Leases(ctx)
	if err != nil {
		return err
	}
	now := m.now()
	claim := NodeLease{Node: node, Until: now.Add(m.leaseTTL), Dead: true, Version: 1}
	if i := slices.IndexFunc(all, func(l NodeLease) bool { return l.Node == node }); i >= 0 {
		l := all[i]
		if now.Before(l.Until) {
			m.scheduleAt(schedKey{keyLease, node}, l.Until) // renewed, or claimed by a live node
			return nil
		}
		claim.Version = l.Version + 1
	}
	switch err := m.store.PutLease(ctx, claim); {
	case errors.Is(err, ErrConflict), errors.Is(err, ErrExists), errors.Is(err, ErrNotFound):
		m.scheduleAt(schedKey{keyLease, node}, now) // changed meanwhile: look again
		return nil
	case err != nil:
		return err
	}
	// Working it off must finish before the claim lapses; if this node
	// dies meanwhile, another claims it again and finishes.
	m.scheduleAt(schedKey{keyLease, node}, claim.Until)
	n, err := m.dropNodeConns(ctx, node, ClosedNodeLost)
	if err != nil {
		return err
	}
	m.log.Warn("a node's lease expired: its connections are lost", "node", node, "connections", n)
	if err := m.store.DeleteLease(ctx, node, claim.Version); err != nil && !errors.Is(err, ErrConflict) && !errors.Is(err, ErrNotFound) {
		return err
	}
	if m.sched != nil {
		m.sched.Remove(schedKey{keyLease, node})
	}
	return nil
}
