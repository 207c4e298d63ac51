package sessiond

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// disposal runs the disposal of ending sessions on its own bounded set of
// workers: what this process holds for a session is disposed of, newest
// first, and for a session this engine is ending the ending hooks run and
// the session is recorded as ended. A disposer that hangs until its
// deadline holds up one disposal worker, never a deadline or a request.
type disposal struct {
	m       *Manager
	workers int

	mu       sync.Mutex
	inflight map[disposeKey]*disposeJob
	queue    chan *disposeJob
	closed   bool
	wg       sync.WaitGroup
}

// disposeQueue bounds the jobs waiting for a worker. Past it, submit
// refuses: a session that needs finishing stays ending, and its ending
// deadline submits it again.
const disposeQueue = 1 << 16

type disposeKey struct {
	id     string
	finish bool
}

// disposeJob is one session's disposal. done is closed when it is over;
// result and err are set before.
type disposeJob struct {
	s       *Session
	finish  bool // record the session ended once disposed of
	release func()
	done    chan struct{}
	result  *Session
	err     error
}

func newDisposal(m *Manager, workers int) *disposal {
	return &disposal{m: m, workers: workers, inflight: make(map[disposeKey]*disposeJob), queue: make(chan *disposeJob, disposeQueue)}
}

func (d *disposal) start() {
	d.wg.Add(d.workers)
	for range d.workers {
		go d.work()
	}
}

// stop refuses new jobs and waits for the workers; jobs still queued are
// dropped (their sessions stay ending until their ending deadline).
func (d *disposal) stop() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	close(d.queue)
	d.mu.Unlock()
	d.wg.Wait()
}

// finish queues the finish of an ending session: the disposal of what this
// process holds for it, the ending hooks, and its record as ended. It
// returns the job (the one in flight already, if there is one), or nil
// when it cannot queue.
func (d *disposal) finish(s *Session) *disposeJob { return d.submit(s, true) }

// release queues the disposal of what this process holds for a session
// another engine ended (its hooks are that engine's to run), if it holds
// anything.
func (d *disposal) release(s *Session) { d.submit(s, false) }

func (d *disposal) submit(s *Session, finish bool) *disposeJob {
	k := disposeKey{s.ID, finish}
	if !k.finish && !d.m.res.holds(s.ID) {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	if j := d.inflight[k]; j != nil {
		return j
	}
	j := &disposeJob{s: s, finish: k.finish, done: make(chan struct{})}
	// The job owns the session's disposal until it is done: the event
	// sweeper keeps off.
	j.release = d.m.res.owning(s.ID)
	select {
	case d.queue <- j:
		d.inflight[k] = j
		return j
	default:
		j.release()
		d.m.log.Warn("disposal queue full; the session is finished later", "sid", LogID(s.ID))
		return nil
	}
}

func (d *disposal) work() {
	defer d.wg.Done()
	m := d.m
	for j := range d.queue {
		if m.ctx.Err() != nil {
			// Closing: the jobs still queued are dropped, not run (their
			// sessions stay ending until their ending deadline).
			j.err = m.ctx.Err()
			d.done(j)
			continue
		}
		if j.finish {
			j.result, j.err = m.finish(m.ctx, j.s)
			if j.err != nil && m.ctx.Err() == nil {
				m.retryFinish(j.s, j.err)
			}
		} else {
			// Disposers see the session as stored, if it still is.
			s := j.s
			if stored, err := m.get(m.ctx, s.ID); err == nil {
				s = stored
			}
			m.dispose(m.ctx, s, false)
			j.result = s
		}
		d.done(j)
	}
}

// done ends a job: the session's disposal is no longer owned by it.
func (d *disposal) done(j *disposeJob) {
	j.release()
	d.mu.Lock()
	delete(d.inflight, disposeKey{j.s.ID, j.finish})
	d.mu.Unlock()
	close(j.done)
}

// dispose runs the disposers of what this process holds for s, newest
// first, then (with hooks, for the engine that ended the session) the
// ending hooks. It never fails: errors, panics and timeouts are logged and
// counted, and the next disposer runs.
func (m *Manager) dispose(ctx context.Context, s *Session, hooks bool) {
	held := m.res.take(s.ID)
	if len(held) == 0 && !hooks {
		return
	}
	ctx = context.WithValue(context.WithoutCancel(ctx), endingKey{}, s)
	for i := len(held) - 1; i >= 0; i-- {
		m.disposeOne(ctx, s, held[i].name, held[i].r.Dispose)
	}
	if !hooks {
		return
	}
	for i, hook := range m.hooks {
		m.disposeOne(ctx, s, fmt.Sprintf("ending hook %d", i+1), func(ctx context.Context) error { return hook(ctx, s) })
	}
}

func (m *Manager) disposeOne(ctx context.Context, s *Session, name string, f func(context.Context) error) {
	ctx, cancel := context.WithTimeout(ctx, m.disposeTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- panicError{p}
			}
		}()
		done <- f(ctx)
	}()
	var err error
	result := "ok"
	select {
	case err = <-done:
		if _, panicked := err.(panicError); panicked {
			result = "panic"
		} else if err != nil {
			result = "error"
		}
	case <-ctx.Done():
		// A disposer that ignores its deadline is abandoned, not waited for.
		err, result = fmt.Errorf("still running after %v; abandoned", m.disposeTimeout), "timeout"
	}
	m.obs.Disposed(result)
	if err != nil {
		m.log.Warn("disposing a resource failed", "sid", LogID(s.ID), "resource", name, "result", result, "err", err)
	}
}

type panicError struct{ v any }

func (p panicError) Error() string { return fmt.Sprintf("panic: %v", p.v) }

// sweep disposes of what this process holds for a session that ended,
// when another engine ended it (this engine disposes of its own ends as
// part of ending). It is the bus's watcher and must not block.
func (m *Manager) sweep(ev Event) {
	if ev.Type != EventEnding && ev.Type != EventEnded || !m.res.sweepable(ev.SessionID) {
		return
	}
	s := &Session{ID: ev.SessionID, Subject: ev.Subject, State: StateEnded, EndReason: ev.Reason}
	m.disposal.release(s)
}

// retryFinish has an ending session whose last write failed finished again
// in a second (by any node); if even that cannot be written, its ending
// deadline stands.
func (m *Manager) retryFinish(s *Session, err error) {
	at := m.now().Add(time.Second)
	if rerr := m.store.Reschedule(m.ctx, Due{ID: s.ID, At: at}, s.Version); rerr != nil {
		m.log.Warn("finishing an ending session; retrying at its ending deadline", "sid", LogID(s.ID), "err", err)
		return
	}
	m.log.Warn("finishing an ending session; retrying in 1s", "sid", LogID(s.ID), "err", err)
	m.pollAt(at)
}
