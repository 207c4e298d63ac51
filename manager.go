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
	res            resources
	disposal       *disposal
	beats          heartbeats
	leaseTTL       time.Duration
	lease          leases

	sched *deadline.Scheduler[schedKey]
	bus   *bus

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
		leaseTTL:       cfg.LeaseTTL,
	}
	for i := range cfg.Policies {
		p := cfg.Policies[i]
		m.policies[p.Name] = &p
	}
	m.def = m.policies[cfg.DefaultPolicy]
	m.connectPolicy = m.policies[cfg.ConnectPolicy]
	m.disposal = newDisposal(m, cfg.DisposeWorkers)
	m.bus = newBus(m.store, m.obs, cfg.SubscriberBuffer, cfg.MaxSubscribers)
	m.bus.watching = m.res.any
	m.bus.watch = m.sweep
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

// Start takes this node's lease, detaches the connections its previous
// process held, rebuilds the deadlines from the store, ends the sessions
// whose deadline passed while nothing ran (recording their events), and
// starts the scheduler and the event pump. It returns once overdue
// sessions are handled.
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

	// Walk every stored session once: schedule what is in the future, and
	// settle what is already due on a few workers.
	overdue := make(chan *Session)
	var wg sync.WaitGroup
	for range m.workers {
		wg.Go(func() {
			for s := range overdue {
				if err := m.settle(ctx, s); err != nil && !errors.Is(err, ErrNotFound) {
					m.retryLater(sessionKey(s.ID), "settling an overdue session", err)
				}
			}
		})
	}
	var n, due int
	var walkErr error
	cursor := ""
walk:
	for {
		page, err := m.store.List(ctx, Query{Cursor: cursor, Limit: 1000})
		if err != nil {
			walkErr = err
			break
		}
		now := m.now()
		for _, s := range page.Sessions {
			n++
			if at, _ := m.nextDeadline(s); !at.IsZero() && !now.Before(at) {
				due++
				overdue <- s
				continue
			}
			m.schedule(s)
			if s.ConnCount > 0 {
				// Heartbeat deadlines of the connections of other kinds.
				conns, err := m.store.Conns(ctx, s.ID)
				if err != nil {
					walkErr = err
					break walk
				}
				m.scheduleConns(s, conns)
			}
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	close(overdue)
	wg.Wait()
	if walkErr != nil {
		return fmt.Errorf("sessiond: start: loading sessions: %w", walkErr)
	}
	m.bus.notify()
	m.log.Info("sessions loaded", "sessions", n, "overdue", due, "scheduled", m.sched.Len())
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

// update writes c and, when it lands, reschedules its session and its
// connections and publishes its events. Only change writes sessions that
// exist.
func (m *Manager) update(ctx context.Context, c Change) error {
	start := time.Now()
	err := m.store.Update(ctx, c)
	m.obs.StoreOp("update", time.Since(start), err)
	if err != nil {
		return err
	}
	m.landed(c)
	return nil
}

// landed schedules what a written change needs and publishes its events.
func (m *Manager) landed(c Change) {
	m.schedule(c.Session)
	for _, id := range c.DropConns {
		m.forgetConn(id)
	}
	if c.Session.State.Live() {
		m.scheduleConns(c.Session, c.PutConns)
	}
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
