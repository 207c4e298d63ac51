package ws

import (
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/wire"
)

// counters are this node's edge counts since it started.
type counters struct {
	connects          atomic.Int64 // connections attached
	created           atomic.Int64 // ... that created their session
	resumed           atomic.Int64 // ... that resumed a disconnected session
	refused           atomic.Int64 // connection attempts refused
	refusedRate       atomic.Int64 // ... for a connect rate limit
	refusedFull       atomic.Int64 // ... because the node held its most sockets
	heartbeatTimeouts atomic.Int64
	clientClosed      atomic.Int64 // closed by the client or the network
	messages          atomic.Int64
	pongs             atomic.Int64 // answers to the server's pings
	unknown           atomic.Int64 // messages of unknown type
	reconciled        atomic.Int64 // records detached or sockets closed by a reconcile

	mu     sync.Mutex
	closes map[wire.CloseCode]int64 // close codes sent by the server
}

func newCounters() counters { return counters{closes: make(map[wire.CloseCode]int64)} }

func (s *counters) connected(a *sessiond.Connected) {
	s.connects.Add(1)
	if a.Created {
		s.created.Add(1)
	}
	if a.Resumed {
		s.resumed.Add(1)
	}
}

func (s *counters) closedWith(code wire.CloseCode) {
	s.mu.Lock()
	s.closes[code]++
	s.mu.Unlock()
}

// Stats returns this node's counts.
func (e *Edge) Stats() wire.WebSocketStats {
	st := wire.WebSocketStats{
		Open: e.Open(), Connects: e.stats.connects.Load(), Created: e.stats.created.Load(),
		Resumed: e.stats.resumed.Load(), Refused: e.stats.refused.Load(),
		RefusedRate: e.stats.refusedRate.Load(), RefusedFull: e.stats.refusedFull.Load(),
		HeartbeatTimeouts: e.stats.heartbeatTimeouts.Load(), ClientClosed: e.stats.clientClosed.Load(),
		Messages: e.stats.messages.Load(), Pongs: e.stats.pongs.Load(), UnknownMessages: e.stats.unknown.Load(),
		DetachesPending: e.detacher.count(), Reconciled: e.stats.reconciled.Load(),
		CloseCodes: map[string]int{},
	}
	e.stats.mu.Lock()
	codes := make([]wire.CloseCode, 0, len(e.stats.closes))
	for c := range e.stats.closes {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		st.CloseCodes[strconv.Itoa(int(c))] = int(e.stats.closes[c])
	}
	e.stats.mu.Unlock()
	return st
}
