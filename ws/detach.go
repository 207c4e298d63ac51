package ws

import (
	"context"
	"sync"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/deadline"
	"github.com/sessiond/sessiond/wire"
)

// What a closed socket leaves behind must leave its session too: a detach
// that fails (the store slow or unreachable) is retried until it lands, and
// a slow reconcile compares what this node holds with what the store
// records for it, both ways. A node that dies takes its records with it
// through its lease (sessiond.NodeLease).

// DefaultReconcileInterval is how often the edge compares its sockets with
// the store's records of this node, when Config leaves ReconcileInterval zero.
const DefaultReconcileInterval = time.Minute

// settleAge is how old a connection must be before a reconcile judges it:
// younger ones may be between their attach in the store and their
// registration here.
const settleAge = 30 * time.Second

// Detach retries back off from retryMin to retryMax.
const (
	retryMin = time.Second
	retryMax = 30 * time.Second
)

// detachWorkers bounds the retries that run at once.
const detachWorkers = 4

// pendingDetach is a detach that failed and waits for its next attempt.
type pendingDetach struct {
	backoff time.Duration // the wait before the next attempt
	why     sessiond.CloseCause
}

type detacher struct {
	e     *Edge
	sched *deadline.Scheduler[string] // connection id -> its next attempt

	mu      sync.Mutex
	pending map[string]pendingDetach // by connection id
	recon   sessiond.Timer
	every   time.Duration
	stopped bool
}

func (d *detacher) start() {
	clock := d.e.clock
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending = make(map[string]pendingDetach)
	d.sched = deadline.New(deadline.Clock{
		Now:       clock.Now,
		AfterFunc: func(t time.Duration, f func()) deadline.Timer { return clock.AfterFunc(t, f) },
	}, detachWorkers, d.retry)
	d.recon = clock.AfterFunc(d.every, d.reconcile)
}

func (d *detacher) stop() {
	d.mu.Lock()
	d.stopped = true
	if d.recon != nil {
		d.recon.Stop()
	}
	if n := len(d.pending); n > 0 {
		d.e.log.Warn("stopping with detaches still failing; the node's lease hands them to whoever starts next", "connections", n)
	}
	d.mu.Unlock()
	d.sched.Close() // waits for running retries, which may call later
}

// count returns how many detaches are waiting to be retried.
func (d *detacher) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pending)
}

// detach tells the engine that a connection is gone, and why; if that
// fails, it is retried (with the same cause) until it lands.
func (d *detacher) detach(connID string, why sessiond.CloseCause) {
	if err := d.try(connID, why); err != nil {
		d.e.log.Warn("detaching a connection failed; retrying", "err", err)
		d.later(connID, pendingDetach{backoff: retryMin, why: why})
	}
}

// try detaches once. A detach the engine refuses as invalid (which no
// retry would change) is logged and counts as done.
func (d *detacher) try(connID string, why sessiond.CloseCause) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := d.e.m.DisconnectWith(ctx, connID, why)
	if sessiond.ErrorCode(err) == sessiond.CodeInvalidArgument {
		d.e.log.Error("a detach was refused; the node's reconcile or lease settles the connection", "err", err)
		return nil
	}
	return err
}

// later schedules another attempt after between half of p.backoff and all
// of it.
func (d *detacher) later(connID string, p pendingDetach) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	d.pending[connID] = p
	d.sched.Set(connID, d.e.clock.Now().Add(p.backoff/2+jitter(p.backoff/2)))
}

// retry is the scheduler's Func: it tries a detach whose time came, and on
// failure schedules the next attempt after twice the wait. The detach
// counts as pending until it lands.
func (d *detacher) retry(connID string, _ time.Time) {
	d.mu.Lock()
	p := d.pending[connID]
	d.mu.Unlock()
	if err := d.try(connID, p.why); err != nil {
		p.backoff = min(2*p.backoff, retryMax)
		d.later(connID, p)
		return
	}
	d.mu.Lock()
	delete(d.pending, connID)
	d.mu.Unlock()
}

// isPending reports whether a failed detach of the connection waits for
// its next attempt.
func (d *detacher) isPending(connID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.pending[connID]
	return ok
}

// reconcile compares the sockets this node holds with the store's records
// of its connections: a record without a socket is detached, a socket
// without a record is closed (its client reconnects). Connections younger
// than settleAge are left alone: they may be on their way.
func (d *detacher) reconcile() {
	e := d.e
	defer func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if !d.stopped {
			d.recon.Reset(d.every)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), d.every)
	defer cancel()
	now := e.clock.Now()
	e.mu.Lock()
	held := make(map[string]*conn, len(e.conns))
	for id, c := range e.conns {
		held[id] = c
	}
	e.mu.Unlock()
	recorded, err := e.m.NodeConnections(ctx, 2*len(held)+1024)
	if err != nil {
		e.log.Warn("reconciling this node's connections with the store", "err", err)
		return
	}
	inStore := make(map[string]bool, len(recorded))
	for _, r := range recorded {
		inStore[r.ID] = true
		// A record without a socket, whose detach is not already on its
		// way (with the cause its socket closed for), was lost here.
		if held[r.ID] == nil && now.Sub(r.ConnectedAt) >= settleAge && !d.isPending(r.ID) {
			e.stats.reconciled.Add(1)
			d.detach(r.ID, sessiond.CloseCause{Reason: sessiond.ClosedLost})
		}
	}
	for id, c := range held {
		if inStore[id] || now.Sub(time.Unix(0, c.registered)) < settleAge {
			continue
		}
		// Not among the records read: check it alone (the list may have
		// been cut at its limit, or the connection changed since).
		if _, err := e.m.Connection(ctx, id); err == nil || !isGone(err) {
			continue
		}
		e.stats.reconciled.Add(1)
		c.close(wire.CloseReconnect)
	}
}

func isGone(err error) bool { return sessiond.ErrorCode(err) == sessiond.CodeConnectionNotFound }
