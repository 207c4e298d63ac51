package ws

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sessiond/sessiond"
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

type detacher struct {
	e *Edge

	mu      sync.Mutex
	pending map[string]*retry // connection id -> its next attempt
	timer   sessiond.Timer    // armed for the earliest attempt
	armed   time.Time
	recon   sessiond.Timer
	every   time.Duration
	stopped bool
}

type retry struct {
	at      time.Time
	backoff time.Duration
}

func (d *detacher) start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending = make(map[string]*retry)
	d.recon = d.e.clock.AfterFunc(d.every, d.reconcile)
}

func (d *detacher) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	if d.timer != nil {
		d.timer.Stop()
	}
	if d.recon != nil {
		d.recon.Stop()
	}
	if n := len(d.pending); n > 0 {
		d.e.log.Warn("stopping with detaches still failing; the node's lease hands them to whoever starts next", "connections", n)
	}
}

// Pending returns how many detaches are waiting to be retried.
func (d *detacher) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pending)
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

// later schedules another attempt after about backoff.
func (d *detacher) later(connID string, backoff time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	at := d.e.clock.Now().Add(backoff/2 + time.Duration(rand.Int64N(int64(backoff/2)+1))) //nolint:gosec // G404: jitter
	d.pending[connID] = &retry{at: at, backoff: backoff}
	d.armLocked()
}

// armLocked points the retry timer at the earliest pending attempt.
func (d *detacher) armLocked() {
	var first time.Time
	for _, r := range d.pending {
		if first.IsZero() || r.at.Before(first) {
			first = r.at
		}
	}
	if first.IsZero() || (!d.armed.IsZero() && !first.Before(d.armed)) {
		return
	}
	d.armed = first
	wait := first.Sub(d.e.clock.Now())
	if d.timer == nil {
		d.timer = d.e.clock.AfterFunc(wait, d.due)
	} else {
		d.timer.Reset(wait)
	}
}

// due retries the detaches whose time came.
func (d *detacher) due() {
	now := d.e.clock.Now()
	d.mu.Lock()
	d.armed = time.Time{}
	var ready []string
	var backoffs []time.Duration
	for id, r := range d.pending {
		if !r.at.After(now) {
			ready = append(ready, id)
			backoffs = append(backoffs, r.backoff)
			delete(d.pending, id)
		}
	}
	d.armLocked()
	d.mu.Unlock()
	for i, id := range ready {
		if err := d.try(id); err != nil {
			d.later(id, min(2*backoffs[i], retryMax))
		}
	}
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
