package sessiond

import (
	"fmt"
	"time"
)

// LimitAction says what a create does when its subject is at max_per_subject.
type LimitAction string

// Limit actions.
const (
	LimitReject      LimitAction = "reject"       // the create fails with limit_reached
	LimitEvictOldest LimitAction = "evict_oldest" // the oldest live session ends with reason evicted
)

// Policy is a named set of rules chosen when a session is created. A zero
// duration or count means the rule is off.
type Policy struct {
	Name string

	// TTL is the absolute lifetime. It never slides, not on activity and not
	// on rotation.
	TTL time.Duration
	// IdleTimeout ends a session with no activity for this long. It must be
	// smaller than TTL.
	IdleTimeout time.Duration
	// TouchInterval is how often activity is written at most, per session.
	// Idle expiry is exact to within this interval. Defaults to a tenth of
	// IdleTimeout, capped at one minute, when IdleTimeout is on.
	TouchInterval time.Duration

	// RotateAfter issues a new token on the first validation this long after
	// the current token was issued.
	RotateAfter time.Duration
	// RotationGrace is how long the replaced token keeps validating, so that
	// concurrent users of the old token (browser tabs) are not logged out.
	// Using it after the grace ends the session with reason rotated_reuse.
	RotationGrace time.Duration

	// MaxPerSubject caps the live sessions one subject holds; OnLimit says
	// what a create over the cap does (reject by default). Zero means
	// DefaultMaxPerSubject; negative means no cap.
	MaxPerSubject int
	OnLimit       LimitAction

	// BindDevice requires device.id at create and rejects validations from
	// another device with device_mismatch.
	BindDevice bool

	// DisconnectGrace: when the last live connection of a session is lost,
	// the session waits this long in StateDisconnected for a reconnect,
	// which resumes it, then ends with reason grace_elapsed. Zero: losing
	// connections does not change the session's state.
	DisconnectGrace time.Duration
	// HeartbeatInterval is how often connections are pinged (WebSocket) or
	// must send a heartbeat (other kinds). Zero means DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// HeartbeatTimeout: a connection not heard from for this long is lost.
	// Zero means twice HeartbeatInterval plus 10s.
	HeartbeatTimeout time.Duration
	// MaxConnections caps a session's live connections. Zero means
	// DefaultMaxConnections; negative means no cap.
	MaxConnections int
	// OnConnect says what a new connection does to the session's others:
	// allow_multiple (the default) or replace.
	OnConnect ConnectAction

	// HibernateAfter puts a session with no connection to sleep once this
	// long has passed since the later of its last activity and the moment
	// its last connection left (docs/hibernation.md): the session's
	// runtime is told to hibernate it, and the next connection wakes it.
	// A session with a connection never hibernates. With it on, the
	// disconnect grace only decides whether a reconnect counts as resumed:
	// a session is not ended for want of a reconnect, it hibernates. Zero
	// is off.
	HibernateAfter time.Duration
	// WakeTimeout bounds each hibernate and wake: a runtime that has not
	// answered by then fails the transition (docs/hibernation.md says
	// into which state). Zero means DefaultWakeTimeout.
	WakeTimeout time.Duration
}

// DefaultWakeTimeout is the wake timeout of policies that set none.
const DefaultWakeTimeout = time.Minute

// DefaultHeartbeatInterval is the heartbeat interval of policies that set none.
const DefaultHeartbeatInterval = 25 * time.Second

// Every per-user quantity has a finite default: one subject cannot take
// the server down by creating sessions (also through WebSocket connects
// with ever new device ids) or by attaching connections to one session.
const (
	// DefaultMaxPerSubject caps a subject's live sessions under a policy
	// that sets no MaxPerSubject.
	DefaultMaxPerSubject = 100
	// DefaultMaxConnections caps a session's connections under a policy
	// that sets no MaxConnections.
	DefaultMaxConnections = 100
)

// DevicePolicy is the built-in policy of sessions that a connection creates
// for a device (one per subject and device, like a pair of smart glasses):
// a connection replaces the previous one, and a dropped connection may come
// back within 30 seconds.
func DevicePolicy() Policy {
	return Policy{
		Name:            "device",
		TTL:             24 * time.Hour,
		IdleTimeout:     time.Hour,
		TouchInterval:   time.Minute,
		DisconnectGrace: 30 * time.Second,
		OnConnect:       ConnectReplace,
		MaxConnections:  1,
		OnLimit:         LimitReject,
	}
}

// DefaultPolicy is the policy used when the configuration names none.
func DefaultPolicy() Policy {
	return Policy{
		Name:          "default",
		TTL:           24 * time.Hour,
		IdleTimeout:   30 * time.Minute,
		TouchInterval: time.Minute,
		RotationGrace: 30 * time.Second,
		OnLimit:       LimitReject,
	}
}

// WithDefaults returns p with the defaults of its zero fields filled in:
// OnLimit reject, OnConnect allow_multiple, TouchInterval a tenth of the
// shorter of IdleTimeout and HibernateAfter (at most a minute) when either
// is on, WakeTimeout DefaultWakeTimeout, HeartbeatInterval
// DefaultHeartbeatInterval and HeartbeatTimeout twice that plus 10s,
// MaxPerSubject DefaultMaxPerSubject and MaxConnections
// DefaultMaxConnections.
func (p Policy) WithDefaults() Policy {
	if p.MaxPerSubject == 0 {
		p.MaxPerSubject = DefaultMaxPerSubject
	}
	if p.MaxConnections == 0 {
		p.MaxConnections = DefaultMaxConnections
	}
	if p.TouchInterval == 0 {
		// Activity is written often enough for the idle timeout and the
		// hibernation it feeds to be exact to a tenth of theirs.
		for _, d := range []time.Duration{p.IdleTimeout, p.HibernateAfter} {
			if d > 0 && (p.TouchInterval == 0 || d/10 < p.TouchInterval) {
				p.TouchInterval = min(d/10, time.Minute)
			}
		}
	}
	if p.WakeTimeout == 0 {
		p.WakeTimeout = DefaultWakeTimeout
	}
	if p.HeartbeatInterval == 0 {
		p.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if p.HeartbeatTimeout == 0 {
		p.HeartbeatTimeout = 2*p.HeartbeatInterval + 10*time.Second
	}
	if p.OnConnect == "" {
		p.OnConnect = ConnectAllowMultiple
	}
	if p.OnLimit == "" {
		p.OnLimit = LimitReject
	}
	return p
}

// Validate rejects nonsense with an error that names the field. It checks
// the policy as it applies, its zero fields standing for their defaults
// (WithDefaults), and changes nothing.
func (p *Policy) Validate() error {
	q := p.WithDefaults()
	return q.validate()
}

func (p *Policy) validate() error {
	field := func(name string) string { return "policies." + p.Name + "." + name }
	if !ValidID(p.Name) {
		return Errorf(CodeInvalidArgument, "policies", "policy name %q must be 1 to %d characters of A-Z a-z 0-9 . _ - : ~", p.Name, MaxIDLen)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ttl", p.TTL}, {"idle_timeout", p.IdleTimeout}, {"touch_interval", p.TouchInterval},
		{"rotate_after", p.RotateAfter}, {"rotation_grace", p.RotationGrace},
		{"disconnect_grace", p.DisconnectGrace}, {"heartbeat_interval", p.HeartbeatInterval},
		{"heartbeat_timeout", p.HeartbeatTimeout}, {"hibernate_after", p.HibernateAfter},
		{"wake_timeout", p.WakeTimeout},
	} {
		if d.v < 0 {
			return Errorf(CodeInvalidArgument, field(d.name), "must not be negative (got %v)", d.v)
		}
	}
	if p.TTL > 0 && p.IdleTimeout >= p.TTL {
		return Errorf(CodeInvalidArgument, field("idle_timeout"), "must be less than ttl (%v >= %v)", p.IdleTimeout, p.TTL)
	}
	if p.TTL > 0 && p.RotateAfter >= p.TTL {
		return Errorf(CodeInvalidArgument, field("rotate_after"), "must be less than ttl (%v >= %v)", p.RotateAfter, p.TTL)
	}
	if p.TTL > 0 && p.RotationGrace > p.TTL {
		return Errorf(CodeInvalidArgument, field("rotation_grace"), "must not exceed ttl (%v > %v)", p.RotationGrace, p.TTL)
	}
	if p.RotateAfter > 0 && p.RotationGrace >= p.RotateAfter {
		return Errorf(CodeInvalidArgument, field("rotation_grace"), "must be less than rotate_after (%v >= %v)", p.RotationGrace, p.RotateAfter)
	}
	if p.IdleTimeout > 0 && p.TouchInterval >= p.IdleTimeout {
		return Errorf(CodeInvalidArgument, field("touch_interval"), "must be less than idle_timeout (%v >= %v)", p.TouchInterval, p.IdleTimeout)
	}
	if p.TTL > 0 && p.DisconnectGrace >= p.TTL {
		return Errorf(CodeInvalidArgument, field("disconnect_grace"), "must be less than ttl (%v >= %v)", p.DisconnectGrace, p.TTL)
	}
	if err := p.validateHibernation(field); err != nil {
		return err
	}
	if p.HeartbeatTimeout <= p.HeartbeatInterval {
		return Errorf(CodeInvalidArgument, field("heartbeat_timeout"), "must exceed heartbeat_interval (%v <= %v)", p.HeartbeatTimeout, p.HeartbeatInterval)
	}
	switch p.OnConnect {
	case ConnectAllowMultiple, ConnectReplace:
	default:
		return Errorf(CodeInvalidArgument, field("on_connect"), "must be %q or %q (got %q)", ConnectAllowMultiple, ConnectReplace, p.OnConnect)
	}
	switch p.OnLimit {
	case LimitReject, LimitEvictOldest:
	default:
		return Errorf(CodeInvalidArgument, field("on_limit"), "must be %q or %q (got %q)", LimitReject, LimitEvictOldest, p.OnLimit)
	}
	return nil
}

// validateHibernation refuses hibernation settings that cannot work
// together with the others.
func (p *Policy) validateHibernation(field func(string) string) error {
	h := p.HibernateAfter
	if h == 0 {
		return nil
	}
	switch {
	case p.TTL > 0 && h >= p.TTL:
		return Errorf(CodeInvalidArgument, field("hibernate_after"), "must be less than ttl (%v >= %v): the session would end before it could hibernate", h, p.TTL)
	case p.IdleTimeout > 0 && p.IdleTimeout <= h:
		return Errorf(CodeInvalidArgument, field("idle_timeout"), "must exceed hibernate_after (%v <= %v): an idle session would end before it could hibernate", p.IdleTimeout, h)
	case p.DisconnectGrace > h:
		return Errorf(CodeInvalidArgument, field("disconnect_grace"), "must not exceed hibernate_after (%v > %v): a session hibernates, at the latest, hibernate_after after its last connection left", p.DisconnectGrace, h)
	case p.TouchInterval >= h:
		return Errorf(CodeInvalidArgument, field("touch_interval"), "must be less than hibernate_after (%v >= %v): activity written that seldom could not keep a session awake", p.TouchInterval, h)
	}
	return nil
}

// Overrides narrow a policy for one session. Each may only tighten it.
type Overrides struct {
	TTL         time.Duration // 0 keeps the policy's
	IdleTimeout time.Duration // 0 keeps the policy's
}

// apply returns the effective ttl and idle timeout for one session.
func (p *Policy) apply(o Overrides) (ttl, idle time.Duration, err error) {
	ttl, idle = p.TTL, p.IdleTimeout
	if o.TTL < 0 {
		return 0, 0, Errorf(CodeInvalidArgument, "ttl", "must not be negative")
	}
	if o.IdleTimeout < 0 {
		return 0, 0, Errorf(CodeInvalidArgument, "idle_timeout", "must not be negative")
	}
	if o.TTL > 0 {
		if p.TTL > 0 && o.TTL > p.TTL {
			return 0, 0, Errorf(CodeInvalidArgument, "ttl", "%v exceeds policy %q's ttl %v", o.TTL, p.Name, p.TTL)
		}
		ttl = o.TTL
	}
	if o.IdleTimeout > 0 {
		if p.IdleTimeout > 0 && o.IdleTimeout > p.IdleTimeout {
			return 0, 0, Errorf(CodeInvalidArgument, "idle_timeout", "%v exceeds policy %q's idle_timeout %v", o.IdleTimeout, p.Name, p.IdleTimeout)
		}
		if p.IdleTimeout == 0 {
			return 0, 0, Errorf(CodeInvalidArgument, "idle_timeout", "policy %q has no idle timeout to narrow", p.Name)
		}
		if o.IdleTimeout <= p.TouchInterval {
			return 0, 0, Errorf(CodeInvalidArgument, "idle_timeout", "%v must exceed policy %q's touch_interval %v", o.IdleTimeout, p.Name, p.TouchInterval)
		}
		idle = o.IdleTimeout
	}
	if ttl > 0 && idle >= ttl {
		if o.IdleTimeout == 0 { // only the ttl was narrowed, below the policy's idle timeout
			return 0, 0, Errorf(CodeInvalidArgument, "ttl", "%v must exceed policy %q's idle_timeout %v", ttl, p.Name, idle)
		}
		return 0, 0, Errorf(CodeInvalidArgument, "idle_timeout", "must be less than ttl (%v >= %v)", idle, ttl)
	}
	return ttl, idle, nil
}

func (p *Policy) String() string { return fmt.Sprintf("policy %q", p.Name) }
