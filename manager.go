package sessiond

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/sessiond/sessiond/internal/deadline"
)

// DefaultRetention is how long ended sessions stay readable when Config
// leaves Retention zero.
const DefaultRetention = 24 * time.Hour

// endingTimeout is how long a session may stay in StateEnding before any
// node's scheduler finishes it: the owner of its disposal must have died.
const endingTimeout = time.Minute

// Config configures a Manager. Only Store is required.
type Config struct {
	// Store keeps the sessions. Required. The Manager does not close it.
	Store Store
	// Policies are the named policies sessions are created under. Empty
	// means one policy, DefaultPolicy().
	Policies []Policy
	// DefaultPolicy names the policy of creates that name none. Empty means
	// the first of Policies.
	DefaultPolicy string
	// Clock defaults to SystemClock.
	Clock Clock
	// Retention is how long ended sessions stay readable (Get, List) before
	// they are purged. 0 means DefaultRetention; negative purges at once.
	Retention time.Duration
	// MaxMetadata caps a session's metadata in bytes. 0 means DefaultMaxMetadata.
	MaxMetadata int
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Observer receives measurements; nil measures nothing.
	Observer Observer
	// Workers is how many deadlines are handled at once. 0 means 8.
	Workers int
	// SubscriberBuffer is each event subscriber's queue length; a subscriber
	// that falls this far behind is dropped. 0 means 4096.
	SubscriberBuffer int

	// Node names this process among those sharing a store; WebSocket
	// connections are recorded with the node holding them. It must stay the
	// same across restarts: on Start, connections recorded on this node are
	// known to have died with the previous process. "" means the host name.
	Node string
	// ConnectPolicy is the policy of sessions that Connect creates for a
	// device. "" means the policy named "device" if there is one, else the
	// default policy.
	ConnectPolicy string
	// DisposeTimeout bounds each resource disposal and ending hook.
	// 0 means DefaultDisposeTimeout.
	DisposeTimeout time.Duration
	// EndingHooks run for every session that ends, after its resources are
	// disposed, each with DisposeTimeout; failures are logged and counted
	// and do not stop the session from ending.
	EndingHooks []func(ctx context.Context, s *Session) error
}

// Manager is the session lifecycle engine: it creates, validates, rotates
// and ends sessions, keeps one deadline per session, and publishes every
// transition as an event. It is safe for concurrent use, and several
// Managers may share one Store: every change is a compare-and-set.
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

	sched *deadline.Scheduler
	bus   *bus

	ctx       context.Context // background work; canceled by Close
	cancel    context.CancelFunc
	startOnce sync.Once
	closeOnce sync.Once
	started   bool
}

// New checks cfg and returns a Manager. Call Start before use and Close after.
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil {
		return nil, errors.New("sessiond: Config.Store is required")
	}
	m := &Manager{
		store:     cfg.Store,
		clock:     cfg.Clock,
		policies:  make(map[string]*Policy),
		retention: cfg.Retention,
		maxMeta:   cfg.MaxMetadata,
		log:       cfg.Logger,
		obs:       cfg.Observer,
		workers:   cfg.Workers,

		node:           cfg.Node,
		disposeTimeout: cfg.DisposeTimeout,
		hooks:          cfg.EndingHooks,
	}
	if m.node == "" {
		m.node, _ = os.Hostname()
	}
	if m.disposeTimeout <= 0 {
		m.disposeTimeout = DefaultDisposeTimeout
	}
	if m.clock == nil {
		m.clock = SystemClock{}
	}
	if m.retention == 0 {
		m.retention = DefaultRetention
	}
	if m.maxMeta <= 0 {
		m.maxMeta = DefaultMaxMetadata
	}
	if m.log == nil {
		m.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if m.obs == nil {
		m.obs = NopObserver{}
	}
	if m.workers <= 0 {
		m.workers = 8
	}
	policies := cfg.Policies
	if len(policies) == 0 {
		policies = []Policy{DefaultPolicy(), DevicePolicy()}
	}
	for i := range policies {
		p := policies[i]
		if err := p.Validate(); err != nil {
			return nil, err
		}
		if _, dup := m.policies[p.Name]; dup {
			return nil, Errorf(CodeInvalidArgument, "policies", "policy %q is defined twice", p.Name)
		}
		m.policies[p.Name] = &p
	}
	name := cfg.DefaultPolicy
	if name == "" {
		name = policies[0].Name
	}
	if m.def = m.policies[name]; m.def == nil {
		return nil, Errorf(CodeInvalidArgument, "default_policy", "names no policy (%q)", name)
	}
	switch {
	case cfg.ConnectPolicy != "":
		if m.connectPolicy = m.policies[cfg.ConnectPolicy]; m.connectPolicy == nil {
			return nil, Errorf(CodeInvalidArgument, "connect_policy", "names no policy (%q)", cfg.ConnectPolicy)
		}
	case m.policies["device"] != nil:
		m.connectPolicy = m.policies["device"]
	default:
		m.connectPolicy = m.def
	}
	buffer := cfg.SubscriberBuffer
	if buffer <= 0 {
		buffer = 4096
	}
	m.bus = newBus(m.store, m.obs, buffer)
	m.bus.watching = m.res.any
	m.bus.watch = m.sweep
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

// Start rebuilds the deadlines from the store, ends the sessions whose
// deadline passed while nothing ran (recording their events), and starts the
// scheduler and the event pump. It returns once overdue sessions are handled.
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
	m.started = true

	// Walk every stored session once: schedule what is in the future, and
	// settle what is already due on a few workers.
	overdue := make(chan *Session)
	var wg sync.WaitGroup
	for range m.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range overdue {
				err := m.dropStaleConns(ctx, s)
				if err == nil {
					if s, err = m.get(ctx, s.ID); err == nil {
						err = m.settle(ctx, s)
					}
				}
				if err != nil && !errors.Is(err, ErrNotFound) {
					m.log.Warn("settling overdue session; retrying in 1s", "sid", LogID(s.ID), "err", err)
					m.scheduleAt(s.ID, m.now().Add(time.Second))
				}
			}
		}()
	}
	var n, due int
	var walkErr error
	cursor := ""
	for {
		page, err := m.store.List(ctx, Query{Cursor: cursor, Limit: 1000})
		if err != nil {
			walkErr = err
			break
		}
		now := m.now()
		for _, s := range page.Sessions {
			n++
			at := m.deadline(s)
			if s.State == StateEnding || (!at.IsZero() && !now.Before(at)) || m.holdsStale(s) {
				due++
				overdue <- s
			} else {
				m.schedule(s)
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

// Close stops the scheduler and the event pump and ends all subscriptions.
// Sessions stay in the store. Close is idempotent.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		m.cancel()
		if m.started {
			m.sched.Close()
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

// Policy returns the named policy ("" for the default) and whether it exists.
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

// CreateRequest describes a session to create.
type CreateRequest struct {
	// ID is optional: a caller-chosen id, for sessions named elsewhere (a
	// transport SDK's session id). It must be unique. The token is still
	// sessiond's.
	ID       string
	Subject  string
	Device   Device
	Metadata json.RawMessage
	Policy   string    // "" for the default policy
	Override Overrides // may only narrow the policy
}

// Created is the result of a Create. Token is returned once and never again.
type Created struct {
	Session *Session
	Token   string
	Evicted []*Session // sessions ended to make room, as they ended
}

// Create makes a new session for req.Subject under a policy, enforcing the
// policy's per-subject limit atomically.
func (m *Manager) Create(ctx context.Context, req CreateRequest) (*Created, error) {
	return m.create(ctx, req, false)
}

// create is Create; uniqueDevice makes it fail with ErrExists if the
// subject has a live session for the device already.
func (m *Manager) create(ctx context.Context, req CreateRequest, uniqueDevice bool) (*Created, error) {
	if err := checkSubject(req.Subject); err != nil {
		return nil, err
	}
	if req.ID != "" {
		if err := checkID("id", req.ID); err != nil {
			return nil, err
		}
	}
	if err := req.Device.Validate(); err != nil {
		return nil, err
	}
	meta, err := normalizeMetadata(req.Metadata, m.maxMeta)
	if err != nil {
		return nil, err
	}
	p := m.def
	if req.Policy != "" {
		if p = m.policies[req.Policy]; p == nil {
			return nil, Errorf(CodeInvalidArgument, "policy", "no policy named %q", req.Policy)
		}
	}
	if p.BindDevice && req.Device.ID == "" {
		return nil, Errorf(CodeInvalidArgument, "device.id", "is required by policy %q (bind_device)", p.Name)
	}
	ttl, idle, err := p.apply(req.Override)
	if err != nil {
		return nil, err
	}

	now := m.now()
	token, hash := NewToken()
	s := &Session{
		ID: req.ID, Subject: req.Subject, Device: req.Device, Metadata: meta, Policy: p.Name,
		State: StateActive, CreatedAt: now, LastActive: now, IdleTimeout: idle,
		Version: 1, TokenHash: hash,
	}
	if s.ID == "" {
		s.ID = NewID(now)
	}
	if ttl > 0 {
		s.ExpiresAt = now.Add(ttl)
	}
	events := []Event{newEvent(EventCreated, s, now)}
	lim := Limit{Max: p.MaxPerSubject, EvictOldest: p.OnLimit == LimitEvictOldest, Now: now, UniqueDevice: uniqueDevice}

	start := time.Now()
	evicted, err := m.store.Create(ctx, s, lim, events)
	m.obs.StoreOp("create", time.Since(start), err)
	if err != nil {
		if errors.Is(err, ErrLimitReached) {
			return nil, &Error{Code: CodeLimitReached, Message: fmt.Sprintf("subject has %d live sessions, the limit of policy %q", p.MaxPerSubject, p.Name)}
		}
		return nil, err
	}
	for _, e := range evicted {
		m.recorded(newEvent(EventEnding, e, now))
		m.log.Info("session evicted", "sid", LogID(e.ID), "by", LogID(s.ID))
	}
	m.recorded(events...)
	m.schedule(s)
	out := &Created{Session: s, Token: token} // the store keeps its own copy
	for _, e := range evicted {
		if done, err := m.finish(ctx, e); err == nil {
			out.Evicted = append(out.Evicted, done.Clone())
		} else {
			m.log.Warn("finishing evicted session; retrying in 1s", "sid", LogID(e.ID), "err", err)
			m.scheduleAt(e.ID, now.Add(time.Second))
			out.Evicted = append(out.Evicted, e.Clone())
		}
	}
	return out, nil
}

// Validation is the result of a successful Validate or Rotate.
type Validation struct {
	Session *Session
	// Token is the new token when this call rotated the session, else "".
	// The caller must hand it to the client: the old one only lasts the
	// rotation grace.
	Token string
}

// maxAttempts bounds compare-and-set retries. Each retry means another
// writer changed the same session in between, so this is never reached
// under any realistic contention; reaching it returns ErrConflict.
const maxAttempts = 32

// Validate checks a token and returns its session. In order, it:
//
//   - rejects malformed and unknown tokens, and sessions that are ended;
//   - ends the session if it is past its absolute or idle deadline (idle is
//     checked before rotation: an idle-expired session is ended, not rotated);
//   - accepts the replaced token within the rotation grace, and treats its
//     use after the grace as theft: the session ends with rotated_reuse and
//     the caller gets token_reused;
//   - with bind_device, rejects another device with device_mismatch without
//     touching the session;
//   - rotates the token once rotate_after has passed (once per generation,
//     however many validations race), and records activity at most once per
//     touch_interval. Other validations write nothing.
func (m *Manager) Validate(ctx context.Context, token string, dev Device) (*Validation, error) {
	v, result, err := m.validate(ctx, token, dev)
	if err != nil {
		result = string(ErrorCode(err))
	}
	m.obs.Validated(result)
	return v, err
}

func (m *Manager) validate(ctx context.Context, token string, dev Device) (*Validation, string, error) {
	h, err := ParseToken(token)
	if err != nil {
		return nil, "", err
	}
	if err := dev.Validate(); err != nil {
		return nil, "", err
	}
	s, err := m.findToken(ctx, h)
	if err != nil {
		return nil, "", err
	}
	sawCurrent := false // this call saw h as the current token
	for range maxAttempts {
		if !s.State.Live() {
			return nil, "", endedError(s)
		}
		now := m.now()
		if reason, due := m.expiry(s, now); due {
			return nil, "", m.endFor(ctx, s, reason)
		}
		p := m.policyOf(s)
		current := s.TokenHash == h
		sawCurrent = sawCurrent || current
		if !current && !sawCurrent && s.PrevTokenHash != h {
			return nil, "", ErrNotFound // rotated out twice while we looked
		}
		if !current && !sawCurrent && !now.Before(s.PrevTokenUntil) {
			// Theft: whoever else holds the session loses it too.
			if _, _, err := m.end(ctx, s, EndRotatedReuse); err != nil {
				return nil, "", err
			}
			return nil, "", ErrTokenReused
		}
		if p.BindDevice && dev.ID != s.Device.ID {
			return nil, "", ErrDeviceMismatch
		}
		rotate := current && p.RotateAfter > 0 && !now.Before(issuedAt(s).Add(p.RotateAfter))
		touch := p.TouchInterval > 0 && now.Sub(s.LastActive) >= p.TouchInterval
		if !rotate && !touch {
			result := "ok"
			if !current {
				result = "grace"
			}
			return &Validation{Session: s.Clone()}, result, nil
		}
		n := s.Clone()
		n.Version++
		n.LastActive = now
		var events []Event
		var newToken string
		if rotate {
			newToken = m.rotateInto(n, p, now)
			events = append(events, newEvent(EventRotated, n, now))
		}
		err := m.update(ctx, n, events)
		switch {
		case err == nil:
			if rotate {
				return &Validation{Session: n.Clone(), Token: newToken}, "rotated", nil
			}
			return &Validation{Session: n.Clone()}, "ok", nil
		case errors.Is(err, ErrConflict):
			// Someone else changed the session (maybe rotated it): re-read
			// and decide again. A rotation lost to a racing one finds h now
			// the previous token, within its grace.
			if s, err = m.get(ctx, s.ID); err != nil {
				return nil, "", err
			}
		default:
			return nil, "", err
		}
	}
	return nil, "", ErrConflict
}

// issuedAt is when the session's current token was issued.
func issuedAt(s *Session) time.Time {
	if !s.RotatedAt.IsZero() {
		return s.RotatedAt
	}
	return s.CreatedAt
}

// rotateInto gives n a new token, keeping the old one valid for the grace.
// The absolute expiry does not move.
func (m *Manager) rotateInto(n *Session, p *Policy, now time.Time) string {
	token, hash := NewToken()
	n.PrevTokenHash = n.TokenHash
	n.PrevTokenUntil = now.Add(p.RotationGrace)
	n.TokenHash = hash
	n.RotatedAt = now
	n.Generation++
	return token
}

// liveDeadlines returns a live session's deadlines: its absolute expiry,
// its idle expiry, and the end of its disconnect grace. Zero times are off.
//
// A session with connections attached is not idle: their heartbeats are its
// activity. So the idle timeout counts only while none is attached, from the
// moment the last one left (Disconnect records it), and a connected session
// costs no store write for its heartbeats.
func (m *Manager) liveDeadlines(s *Session) (expires, idle, grace time.Time) {
	expires = s.ExpiresAt
	if s.IdleTimeout > 0 && len(s.Conns) == 0 && (s.State == StateActive || s.State == StateDisconnected) {
		idle = s.LastActive.Add(s.IdleTimeout)
	}
	if s.State == StateDisconnected {
		grace = s.DisconnectedAt.Add(m.policyOf(s).DisconnectGrace)
	}
	return expires, idle, grace
}

// expiry reports whether a live session is past a deadline at now, and the
// reason of the one that came first.
func (m *Manager) expiry(s *Session, now time.Time) (EndReason, bool) {
	var reason EndReason
	var first time.Time
	expires, idle, grace := m.liveDeadlines(s)
	for _, d := range []struct {
		at     time.Time
		reason EndReason
	}{{expires, EndExpired}, {idle, EndIdle}, {grace, EndGraceElapsed}} {
		if !d.at.IsZero() && !now.Before(d.at) && (reason == "" || d.at.Before(first)) {
			reason, first = d.reason, d.at
		}
	}
	return reason, reason != ""
}

// deadline is when the session next needs the scheduler: the earliest of
// its deadlines while live, the end of its disposal while ending, and its
// purge once ended. Zero means never.
func (m *Manager) deadline(s *Session) time.Time {
	switch s.State {
	case StateEnded:
		if m.retention < 0 {
			return s.EndedAt
		}
		return s.EndedAt.Add(m.retention)
	case StateEnding:
		return s.EndedAt.Add(endingTimeout)
	}
	var at time.Time
	expires, idle, grace := m.liveDeadlines(s)
	for _, d := range []time.Time{expires, idle, grace} {
		if !d.IsZero() && (at.IsZero() || d.Before(at)) {
			at = d
		}
	}
	return at
}

func (m *Manager) schedule(s *Session) {
	m.scheduleAt(s.ID, m.deadline(s))
	m.scheduleConns(s)
}

// holdsStale reports whether s records WebSocket connections of this node,
// which a starting Manager knows to be dead.
func (m *Manager) holdsStale(s *Session) bool {
	for _, c := range s.Conns {
		if c.Kind == KindWebSocket && c.Node == m.node {
			return true
		}
	}
	return false
}

func (m *Manager) scheduleAt(id string, at time.Time) {
	if m.sched != nil {
		m.sched.Set(id, at)
	}
}

// Rotate issues a new token for the session now, whatever rotate_after says.
// The replaced token stays valid for the policy's rotation grace.
func (m *Manager) Rotate(ctx context.Context, id string) (*Validation, error) {
	if err := checkID("id", id); err != nil {
		return nil, err
	}
	s, err := m.get(ctx, id)
	for range maxAttempts {
		if err != nil {
			return nil, err
		}
		if s, err = m.checkLive(ctx, s); err != nil {
			return nil, err
		}
		now := m.now()
		n := s.Clone()
		n.Version++
		token := m.rotateInto(n, m.policyOf(s), now)
		err = m.update(ctx, n, []Event{newEvent(EventRotated, n, now)})
		if err == nil {
			return &Validation{Session: n.Clone(), Token: token}, nil
		}
		if errors.Is(err, ErrConflict) {
			s, err = m.get(ctx, id)
		}
	}
	return nil, ErrConflict
}

// Touch records activity on the session, at most once per touch_interval.
func (m *Manager) Touch(ctx context.Context, id string) error {
	if err := checkID("id", id); err != nil {
		return err
	}
	s, err := m.get(ctx, id)
	for range maxAttempts {
		if err != nil {
			return err
		}
		if s, err = m.checkLive(ctx, s); err != nil {
			return err
		}
		now := m.now()
		if p := m.policyOf(s); p.TouchInterval > 0 && now.Sub(s.LastActive) < p.TouchInterval {
			return nil
		}
		n := s.Clone()
		n.Version++
		n.LastActive = now
		if err = m.update(ctx, n, nil); err == nil {
			return nil
		}
		if errors.Is(err, ErrConflict) {
			s, err = m.get(ctx, id)
		}
	}
	return ErrConflict
}

// checkLive returns s if it is live and not past a deadline; otherwise it
// ends it if due and returns the error a caller of a live-only operation gets.
func (m *Manager) checkLive(ctx context.Context, s *Session) (*Session, error) {
	if !s.State.Live() {
		return nil, endedError(s)
	}
	if reason, due := m.expiry(s, m.now()); due {
		return nil, m.endFor(ctx, s, reason)
	}
	return s, nil
}

// Get returns the session with the id, in any state. A session past its
// deadline is ended first, so it is never returned as live.
func (m *Manager) Get(ctx context.Context, id string) (*Session, error) {
	if err := checkID("id", id); err != nil {
		return nil, err
	}
	s, err := m.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if s, err = m.fresh(ctx, s); err != nil {
		return nil, err
	}
	return s.Clone(), nil
}

// fresh returns s, or s ended if it is live and past its deadline.
func (m *Manager) fresh(ctx context.Context, s *Session) (*Session, error) {
	if !s.State.Live() {
		return s, nil
	}
	reason, due := m.expiry(s, m.now())
	if !due {
		return s, nil
	}
	s, _, err := m.end(ctx, s, reason)
	return s, err
}

// ListBySubject returns the subject's live sessions, oldest first.
func (m *Manager) ListBySubject(ctx context.Context, subject string) ([]*Session, error) {
	if err := checkSubject(subject); err != nil {
		return nil, err
	}
	start := time.Now()
	live, err := m.store.Live(ctx, subject)
	m.obs.StoreOp("live", time.Since(start), err)
	if err != nil {
		return nil, err
	}
	out := make([]*Session, 0, len(live))
	for _, s := range live {
		if s, err = m.fresh(ctx, s); err != nil {
			return nil, err
		}
		if s.State.Live() {
			out = append(out, s.Clone())
		}
	}
	return out, nil
}

// List returns a page of sessions in id order, filtered by subject and
// state. Sessions past their deadline are ended before they are shown.
func (m *Manager) List(ctx context.Context, q Query) (Page, error) {
	if q.Subject != "" {
		if err := checkSubject(q.Subject); err != nil {
			return Page{}, err
		}
	}
	if q.State != 0 && !q.State.Valid() {
		return Page{}, Errorf(CodeInvalidArgument, "state", "unknown state")
	}
	start := time.Now()
	page, err := m.store.List(ctx, q)
	m.obs.StoreOp("list", time.Since(start), err)
	if err != nil {
		return Page{}, err
	}
	out := page.Sessions[:0:0]
	for _, s := range page.Sessions {
		if s, err = m.fresh(ctx, s); err != nil {
			return Page{}, err
		}
		if q.State == 0 || s.State == q.State {
			out = append(out, s.Clone())
		}
	}
	page.Sessions = out
	return page, nil
}

// Revoke ends the session with the reason (EndRevoked if empty). Revoking a
// session that is already ending or ended does nothing and returns nil.
func (m *Manager) Revoke(ctx context.Context, id string, reason EndReason) error {
	if err := checkID("id", id); err != nil {
		return err
	}
	if reason == "" {
		reason = EndRevoked
	}
	if !reason.Valid() {
		return Errorf(CodeInvalidArgument, "reason", "unknown end reason %q", reason)
	}
	s, err := m.get(ctx, id)
	if err != nil {
		return err
	}
	_, _, err = m.end(ctx, s, m.reasonAt(s, reason))
	return err
}

// reasonAt is why a session being ended for reason really ends: a session
// already past its deadline ends for that deadline, so that its end reason
// and events say what happened first.
func (m *Manager) reasonAt(s *Session, reason EndReason) EndReason {
	if r, due := m.expiry(s, m.now()); due {
		return r
	}
	return reason
}

// RevokeSubject ends all of the subject's live sessions and returns how many
// this call ended.
func (m *Manager) RevokeSubject(ctx context.Context, subject string) (int, error) {
	if err := checkSubject(subject); err != nil {
		return 0, err
	}
	start := time.Now()
	live, err := m.store.Live(ctx, subject)
	m.obs.StoreOp("live", time.Since(start), err)
	if err != nil {
		return 0, err
	}
	var (
		mu    sync.Mutex
		n     int
		first error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, 16)
	)
	for _, s := range live {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			reason := m.reasonAt(s, EndRevoked)
			_, won, err := m.end(ctx, s, reason)
			won = won && reason == EndRevoked // an expired one was not revoked by this call
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = err
			}
			if won {
				n++
			}
		}()
	}
	wg.Wait()
	return n, first
}

// Stats are the engine's counts.
type Stats struct {
	Sessions    map[State]int // by state
	Total       int
	Subjects    int            // with at least one live session
	Connections map[string]int // connections of live sessions, by kind
	Scheduled   int            // deadlines held by this node's scheduler
}

// Stats returns counts by state from the store and the scheduler's size.
func (m *Manager) Stats(ctx context.Context) (Stats, error) {
	start := time.Now()
	st, err := m.store.Stats(ctx)
	m.obs.StoreOp("stats", time.Since(start), err)
	if err != nil {
		return Stats{}, err
	}
	out := Stats{Sessions: st.ByState, Total: st.Total, Subjects: st.Subjects, Connections: st.Connections}
	if m.sched != nil {
		out.Scheduled = m.sched.Len()
	}
	return out, nil
}

// Subscribe streams events recorded after the given Seq, replaying from the
// store's log what was recorded before the call; FromNow starts with what is
// recorded from now on, and 0 replays the whole retained log. A subscription that falls more than SubscriberBuffer events behind is
// dropped (Next returns ErrSubscriberTooSlow) and can resume by subscribing
// after the last Seq it handled. Close it when done.
func (m *Manager) Subscribe(ctx context.Context, after uint64) (*Subscription, error) {
	return m.bus.subscribe(ctx, after)
}

// endFor ends s for a deadline or theft found while serving a caller, and
// returns the error that caller gets.
func (m *Manager) endFor(ctx context.Context, s *Session, reason EndReason) error {
	e, _, err := m.end(ctx, s, reason)
	if err != nil {
		return err
	}
	return endedError(e)
}

// end moves s to ending and then ended, with the reason. Of racing ends
// exactly one wins and gets won true; the others find the session already
// ending or ended and get it as they found it. Ending a session never
// touches another: the write is a compare-and-set on s alone.
func (m *Manager) end(ctx context.Context, s *Session, reason EndReason) (_ *Session, won bool, err error) {
	// While this call may end the session, it owns the disposal of what
	// this process holds for it: the event sweeper keeps off.
	defer m.res.owning(s.ID)()
	for attempt := range maxAttempts {
		if !s.State.Live() {
			// Someone else ended it: release what this process holds.
			m.dispose(ctx, s, false)
			return s, false, nil
		}
		now := m.now()
		if attempt > 0 && reason.deadline() {
			// A deadline seen before a lost compare-and-set may no longer
			// hold (a reconnect resumed the session, activity moved it).
			r, due := m.expiry(s, now)
			if !due {
				m.schedule(s)
				return s, false, nil
			}
			reason = r
		}
		n, events := Ending(s, reason, now)
		twoPhase := len(m.hooks) > 0 || m.res.holds(s.ID)
		if !twoPhase {
			// Nothing to dispose of: record ending and ended in one write.
			n.State = StateEnded
			n.Conns = nil
			events = append(events, newEvent(EventEnded, n, now))
		}
		switch err := m.update(ctx, n, events); {
		case err == nil:
			m.log.Info("session ended", "sid", LogID(s.ID), "reason", reason)
			if twoPhase {
				n, err = m.finish(ctx, n)
				return n, true, err
			}
			return n, true, nil
		case errors.Is(err, ErrConflict):
			if s, err = m.get(ctx, s.ID); err != nil {
				return nil, false, err
			}
		default:
			return nil, false, err
		}
	}
	return nil, false, ErrConflict
}

// finish moves a session from ending to ended. Racing finishers are
// harmless: one records ended, the others see it and return it.
func (m *Manager) finish(ctx context.Context, s *Session) (*Session, error) {
	m.dispose(ctx, s, true)
	for range maxAttempts {
		if s.State != StateEnding {
			return s, nil
		}
		n := s.Clone()
		n.State = StateEnded
		n.Conns = nil
		n.Version++
		err := m.update(ctx, n, []Event{newEvent(EventEnded, n, m.now())})
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, ErrConflict):
			if s, err = m.get(ctx, s.ID); err != nil {
				return nil, err
			}
		default:
			return nil, err
		}
	}
	return nil, ErrConflict
}

// due is the scheduler's callback.
func (m *Manager) due(id string, at time.Time) {
	m.obs.SchedulerLag(m.now().Sub(at))
	if connID, ok := isConnKey(id); ok {
		if err := m.connDue(m.ctx, connID); err != nil && m.ctx.Err() == nil {
			m.log.Warn("handling a heartbeat deadline; retrying in 1s", "err", err)
			m.scheduleAt(id, m.now().Add(time.Second))
		}
		return
	}
	s, err := m.get(m.ctx, id)
	if errors.Is(err, ErrNotFound) {
		return
	}
	if err == nil {
		err = m.settle(m.ctx, s)
	}
	if err != nil && m.ctx.Err() == nil {
		m.log.Warn("handling deadline; retrying in 1s", "sid", LogID(id), "err", err)
		m.scheduleAt(id, m.now().Add(time.Second))
	}
}

// settle does what is due for s now: ends it, finishes its ending, purges
// it, or reschedules it for its next deadline.
func (m *Manager) settle(ctx context.Context, s *Session) error {
	now := m.now()
	switch s.State {
	case StateEnded:
		at := m.deadline(s)
		if now.Before(at) {
			m.scheduleAt(s.ID, at)
			return nil
		}
		start := time.Now()
		err := m.store.Delete(ctx, s.ID, s.Version)
		m.obs.StoreOp("delete", time.Since(start), err)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
			return nil // purged or changed by someone else, who scheduled it
		}
		return err
	case StateEnding:
		_, err := m.finish(ctx, s)
		return err
	}
	if reason, due := m.expiry(s, now); due {
		_, _, err := m.end(ctx, s, reason)
		return err
	}
	m.schedule(s)
	return nil
}

// get reads a session, timing the store.
func (m *Manager) get(ctx context.Context, id string) (*Session, error) {
	start := time.Now()
	s, err := m.store.Get(ctx, id)
	m.obs.StoreOp("get", time.Since(start), err)
	return s, err
}

func (m *Manager) findToken(ctx context.Context, h TokenHash) (*Session, error) {
	start := time.Now()
	s, err := m.store.FindToken(ctx, h)
	m.obs.StoreOp("find_token", time.Since(start), err)
	return s, err
}

// update writes n with its events and, when it lands, reschedules n and
// publishes the events.
func (m *Manager) update(ctx context.Context, n *Session, events []Event) error {
	start := time.Now()
	err := m.store.Update(ctx, n, events)
	m.obs.StoreOp("update", time.Since(start), err)
	if err != nil {
		return err
	}
	m.schedule(n)
	m.recorded(events...)
	return nil
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
