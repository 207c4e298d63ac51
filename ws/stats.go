package ws

import (
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/sessiond/sessiond"
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
	closes map[int]int64 // close codes sent by the server
}

func newCounters() counters { return counters{closes: make(map[int]int64)} }

func (s *counters) connected(a *sessiond.Connected) {
	s.connects.Add(1)
	if a.Created {
		s.created.Add(1)
	}
	if a.Resumed {
		s.resumed.Add(1)
	}
}

func (s *counters) closedWith(code int) {
	s.mu.Lock()
	s.closes[code]++
	s.mu.Unlock()
}

// Stats are this node's WebSocket counts.
type Stats struct {
	Open              int            `json:"open"`               // connections open now
	Connects          int64          `json:"connects"`           // attached since start
	Created           int64          `json:"created"`            // of which created their session
	Resumed           int64          `json:"resumed"`            // of which resumed a disconnected session
	Refused           int64          `json:"refused"`            // attempts refused (credential, session, connection limits)
	RefusedRate       int64          `json:"refused_rate"`       // attempts refused by a connect rate limit (429)
	RefusedFull       int64          `json:"refused_full"`       // attempts refused because this node held its most sockets (503)
	HeartbeatTimeouts int64          `json:"heartbeat_timeouts"` // connections lost for silence
	ClientClosed      int64          `json:"client_closed"`      // closed by the client or the network
	Messages          int64          `json:"messages"`           // messages received
	Pongs             int64          `json:"pongs"`              // answers to the server's pings
	UnknownMessages   int64          `json:"unknown_messages"`
	DetachesPending   int            `json:"detaches_pending"` // failed detaches waiting to be retried
	Reconciled        int64          `json:"reconciled"`       // records detached or sockets closed by a reconcile
	CloseCodes        map[string]int `json:"close_codes"`      // close codes sent, by code
}

// Stats returns this node's counts.
func (e *Edge) Stats() Stats {
	st := Stats{
		Open: e.Open(), Connects: e.stats.connects.Load(), Created: e.stats.created.Load(),
		Resumed: e.stats.resumed.Load(), Refused: e.stats.refused.Load(),
		RefusedRate: e.stats.refusedRate.Load(), RefusedFull: e.stats.refusedFull.Load(),
		HeartbeatTimeouts: e.stats.heartbeatTimeouts.Load(), ClientClosed: e.stats.clientClosed.Load(),
		Messages: e.stats.messages.Load(), Pongs: e.stats.pongs.Load(), UnknownMessages: e.stats.unknown.Load(),
		DetachesPending: e.detacher.count(), Reconciled: e.stats.reconciled.Load(),
		CloseCodes: map[string]int{},
	}
	e.stats.mu.Lock()
	codes := make([]int, 0, len(e.stats.closes))
	for c := range e.stats.closes {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		st.CloseCodes[strconv.Itoa(c)] = int(e.stats.closes[c])
	}
	e.stats.mu.Unlock()
	return st
}
