package sessiond

import (
	"context"
	"slices"
	"strings"
	"time"
)

// NodeConnsCounted bounds how many connections Nodes counts per node.
const NodeConnsCounted = 1000

// NodeInfo is one node as the store knows it: its lease, and the
// connections recorded as held by it.
type NodeInfo struct {
	Node  string
	Until time.Time // the lease's end; zero for a node that holds connections and no lease
	Dead  bool      // the lease was claimed by another node, which is releasing its connections
	// Self: the node this Manager runs as.
	Self bool
	// Connections held by the node (Connection.Node: its WebSocket
	// connections; those tracked by heartbeats belong to no node), counted
	// up to NodeConnsCounted; ConnectionsMore tells there were more.
	Connections     int
	ConnectionsMore bool
}

// Nodes lists the nodes sharing the store, by name: every node with a
// lease, and every node that holds connections without one (a node that
// died before its lease was claimed, or whose lease is being worked off).
// It reads one index entry per node and up to NodeConnsCounted
// connections of each: an admin's view, not a hot path.
func (m *Manager) Nodes(ctx context.Context) ([]NodeInfo, error) {
	start := time.Now()
	leases, err := m.store.Leases(ctx)
	m.obs.StoreOp("leases", time.Since(start), err)
	if err != nil {
		return nil, err
	}
	start = time.Now()
	holders, err := m.store.ConnNodes(ctx)
	m.obs.StoreOp("conn_nodes", time.Since(start), err)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*NodeInfo, len(leases)+len(holders))
	for _, l := range leases {
		byName[l.Node] = &NodeInfo{Node: l.Node, Until: l.Until, Dead: l.Dead}
	}
	for _, n := range holders {
		if byName[n] == nil {
			byName[n] = &NodeInfo{Node: n}
		}
	}
	out := make([]NodeInfo, 0, len(byName))
	for name, info := range byName {
		start = time.Now()
		conns, err := m.store.NodeConns(ctx, name, NodeConnsCounted+1)
		m.obs.StoreOp("node_conns", time.Since(start), err)
		if err != nil {
			return nil, err
		}
		info.Connections = min(len(conns), NodeConnsCounted)
		info.ConnectionsMore = len(conns) > NodeConnsCounted
		info.Self = name == m.node
		out = append(out, *info)
	}
	slices.SortFunc(out, func(a, b NodeInfo) int { return strings.Compare(a.Node, b.Node) })
	return out, nil
}
