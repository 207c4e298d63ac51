package sessiond

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sessiond/sessiond/internal/deadline"
)

// Manager is the session lifecycle engine: it creates, validates, rotates
// and ends sessions, keeps one deadline per session, and publishes every
// transition as an event. It is safe for concurrent use, and several
// Managers may share one Store: every change is a compare-and-set.
//
// The engine is spread over files by concept: config.go (Config), create.go,
// validate.go (validate, rotate, touch), read.go (get, list, stats,
// subscribe), end.go (revoke and ending), dispose.go (disposal workers),
// deadlines.go (the next deadline of a session and the scheduler),
// transition.go (the state table and the compare-and-set loop), connect.go
// and heartbeat.go (connections).
type Manager struct {
	store     Store
	clock     Clock
	policies  map[string]*Policy
	def       *Policy
	retention time.Duration
	maxMeta   int
	log       *slog.Logger
	obs       Observer
	workers   int

	node           string
	connectPolicy  *Policy
	disposeTimeout time.Duration
	hooks          []func(context.Context, *Session) error
	runtime        Runtime
	calls          runtimeCalls
	waiters        stateWaiters
	res            resources
	disposal       *disposal
	beats          heartbeats
	leaseTTL       time.Duration
	lease          leases

	sched *deadline.Scheduler[schedKey]
	poll  poller
	bus   *bus
	cache *validationCache // nil when off

	ctx       context.Context // background work; canceled by Close
	cancel    context.CancelFunc
	startOnce sync.Once
	closeOnce sync.Once
	started   bool
}

// New checks cfg and returns a Manager. Call Start before use and Close after.
func New(cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m := &Manager{
		store:     cfg.Store,
		clock:     cfg.Clock,
		policies:  make(map[string]*Policy, len(cfg.Policies)),
		retention: cfg.Retention,
		maxMeta:   cfg.MaxMetadata,
		log:       cfg.Logger,
		obs:       cfg.Observer,
		workers:   cfg.Workers,

		node:           cfg.Node,
		disposeTimeout: cfg.DisposeTimeout,
		hooks:          cfg.EndingHooks,
		runtime:        cfg.Runtime,
		leaseTTL:       cfg.LeaseTTL,
	}
	if m.runtime != nil {
		m.hooks = append(m.hooks[:len(m.hooks):len(m.hooks)], m.disposeRuntime)
	}
	for i := range cfg.Policies {
		p := cfg.Policies[i]
		m.policies[p.Name] = &p
	}
	m.def = m.policies[cfg.DefaultPolicy]
	m.connectPolicy = m.policies[cfg.ConnectPolicy]
	m.disposal = newDisposal(m, cfg.DisposeWorkers)
	m.bus = newBus(m.store, m.obs, cfg.SubscriberBuffer, cfg.MaxSubscribers)
	m.cache = newValidationCache(cfg.ValidationCache, cfg.ValidationCacheSize)
	m.bus.watching = func() bool { return m.cache != nil || m.res.any() || m.waiters.any() }
	m.bus.watch = func(ev Event) {
		m.sweep(ev)
		m.cache.seen(ev.SessionID, ev.Version, m.now())
		m.waiters.notify(ev.SessionID, ev)
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

// Start takes this node's lease, detaches the connections its previous
// process held, and starts the scheduler, which at once claims the
// deadlines that passed while nothing ran (ending those sessions and
// recording their events), and the event pump. It reads no session to
// find deadlines: they are in the store's index.
func (m *Manager) Start(ctx context.Context) error {
	err := errors.New("sessiond: Manager already started")
	m.startOnce.Do(func() { err = m.start(ctx) })
	return err
}

func (m *Manager) start(ctx context.Context) error {
	if err := m.bus.start(ctx); err != nil {
		return fmt.Errorf("sessiond: start: %w", err)
	}
	m.sched = deadline.New(deadline.Clock{
		Now:       m.clock.Now,
		AfterFunc: func(d time.Duration, f func()) deadline.Timer { return m.clock.AfterFunc(d, f) },
	}, m.workers, m.due)
	m.disposal.start()
	m.started = true
	if err := m.startLeases(ctx); err != nil {
		return fmt.Errorf("sessiond: start: node lease: %w", err)
	}

	// The deadlines due while nothing ran are claimed before Start
	// returns; the others when they come due (deadlines.go).
	handled, ended := m.claimDue()
	m.bus.notify()
	m.log.Info("deadlines due at start handled", "handled", handled, "ended", ended)
	return nil
}

// Close stops the scheduler, the disposal workers and the event pump, and
// ends all subscriptions. Sessions stay in the store; those still ending
// are finished at their ending deadline (endingTimeout after they began
// ending), by this node's next Start or by another node. Close is
// idempotent.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		m.cancel()
		m.stopLeases()
		m.calls.stop()
		if m.started {
			m.sched.Close()
			m.disposal.stop()
			m.bus.stop()
		}
	})
	return nil
}

// now is the engine's time: the clock's wall time, without a monotonic
// reading. Every stored time and every deadline is wall time (stores keep
// nothing else, and the scheduler counts Unix nanoseconds), so comparisons
// must be wall time too, or a deadline the scheduler finds due could look
// not yet due to the engine. It is in UTC, as everything the API shows.
func (m *Manager) now() time.Time { return m.clock.Now().Round(0).UTC() }

// Policy returns the named policy ("" for the default) and whether it
// exists, with its defaults filled in.
func (m *Manager) Policy(name string) (Policy, bool) {
	if name == "" {
		return *m.def, true
	}
	p, ok := m.policies[name]
	if !ok {
		return Policy{}, false
	}
	return *p, true
}

// policyOf returns the policy a stored session runs under. A session whose
// policy was removed from the configuration falls back to the default.
func (m *Manager) policyOf(s *Session) *Policy {
	if p, ok := m.policies[s.Policy]; ok {
		return p
	}
	return m.def
}

// get reads a session, timing the store.
func (m *Manager) get(ctx context.Context, id string) (*Session, error) {
	start := time.Now()
	s, err := m.store.Get(ctx, id)
	m.obs.StoreOp("get", time.Since(start), err)
	return s, err
}

// findToken finds the session of a token issued before tokens carried
// their session's id, in a store that kept such tokens.
func (m *Manager) findToken(ctx context.Context, h TokenHash) (*Session, error) {
	tf, ok := m.store.(TokenFinder)
	if !ok {
		return nil, ErrNotFound
	}
	start := time.Now()
	s, err := tf.FindToken(ctx, h)
	m.obs.StoreOp("find_token", time.Since(start), err)
	return s, err
}

// update writes c, with its deadlines, and when it lands makes sure the
// engine claims them in time and publishes its events. Only change writes
// sessions that exist.
func (m *Manager) update(ctx context.Context, c Change) error {
	m.setDeadlines(&c)
	start := time.Now()
	err := m.store.Update(ctx, c)
	m.obs.StoreOp("update", time.Since(start), err)
	if err != nil {
		return err
	}
	m.landed(c)
	return nil
}

// setDeadlines sets the deadlines a change writes to the store's index:
// its session's next one, and the heartbeat deadline of each connection
// it puts that the engine times (all but WebSockets, whose edge pings
// them), from the latest heartbeat this node heard.
func (m *Manager) setDeadlines(c *Change) {
	c.Due, _ = m.nextDeadline(c.Session)
	c.ConnDue = nil
	if !c.Session.State.Live() {
		return
	}
	p := m.policyOf(c.Session)
	for i := range c.PutConns {
		if conn := &c.PutConns[i]; conn.Kind != KindWebSocket {
			at := m.beats.latest(conn.ID, conn.LastHeartbeat).Add(p.HeartbeatTimeout)
			c.ConnDue = append(c.ConnDue, Due{ID: conn.ID, At: at})
		}
	}
}

// landed makes sure the engine claims a written change's deadlines in
// time, and publishes its events.
func (m *Manager) landed(c Change) {
	if m.cache != nil {
		m.cache.put(c.Session.Clone(), m.now())
	}
	m.pollAt(c.Due)
	for _, d := range c.ConnDue {
		m.pollAt(d.At)
	}
	for _, id := range c.DropConns {
		m.beats.forget(id)
	}
	m.waiters.notify(c.Session.ID, c.Events...)
	m.recorded(c.Events...)
}

// recorded counts events that landed and wakes the event pump.
func (m *Manager) recorded(events ...Event) {
	if len(events) == 0 {
		return
	}
	for i := range events {
		m.obs.Transitioned(&events[i])
	}
	m.bus.notify()
}
