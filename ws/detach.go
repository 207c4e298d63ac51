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

type detacher struct {
	e     *Edge
	sched *deadline.Scheduler[string] // connection id -> its next attempt

	mu      sync.Mutex
	backoff map[string]time.Duration // the wait before each pending attempt
	recon   sessiond.Timer
	every   time.Duration
	stopped bool
}

func (d *detacher) start() {
	clock := d.e.clock
	d.mu.Lock()
	defer d.mu.Unlock()
	d.backoff = make(map[string]time.Duration)
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
	if n := len(d.backoff); n > 0 {
		d.e.log.Warn("stopping with detaches still failing; the node's lease hands them to whoever starts next", "connections", n)
	}
	d.mu.Unlock()
	d.sched.Close() // waits for running retries, which may call later
}

// count returns how many detaches are waiting to be retried.
func (d *detacher) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.backoff)
}

// detach tells the engine that a connection is gone; if that fails, it is
// retried until it lands.
func (d *detacher) detach(connID string) {
	if err := d.try(connID); err != nil {
		d.e.log.Warn("detaching a connection failed; retrying", "err", err)
		d.later(connID, retryMin)
	}
}

func (d *detacher) try(connID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return d.e.m.Disconnect(ctx, connID)
}

// later schedules another attempt after between half of backoff and all
// of it.
func (d *detacher) later(connID string, backoff time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	d.backoff[connID] = backoff
	d.sched.Set(connID, d.e.clock.Now().Add(backoff/2+jitter(backoff/2)))
}

// retry is the scheduler's Func: it tries a detach whose time came, and on
// failure schedules the next attempt after twice the wait. The detach
// counts as pending until it lands.
func (d *detacher) retry(connID string, _ time.Time) {
	d.mu.Lock()
	backoff := d.backoff[connID]
	d.mu.Unlock()
	if err := d.try(connID); err != nil {
		d.later(connID, min(2*backoff, retryMax))
		return
	}
	d.mu.Lock()
	delete(d.backoff, connID)
	d.mu.Unlock()
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
		if held[r.ID] == nil && now.Sub(r.ConnectedAt) >= settleAge {
			e.stats.reconciled.Add(1)
			d.detach(r.ID)
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
