package sessiond_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

func TestPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*sessiond.Policy)
		field string
	}{
		{"negative ttl", func(p *sessiond.Policy) { p.TTL = -time.Second }, "policies.p.ttl"},
		{"idle >= ttl", func(p *sessiond.Policy) { p.IdleTimeout = p.TTL }, "policies.p.idle_timeout"},
		{"grace > ttl", func(p *sessiond.Policy) { p.RotationGrace = 2 * p.TTL; p.RotateAfter = 0 }, "policies.p.rotation_grace"},
		{"grace >= rotate_after", func(p *sessiond.Policy) { p.RotationGrace = p.RotateAfter }, "policies.p.rotation_grace"},
		{"rotate_after >= ttl", func(p *sessiond.Policy) { p.RotateAfter = p.TTL }, "policies.p.rotate_after"},
		{"touch >= idle", func(p *sessiond.Policy) { p.TouchInterval = p.IdleTimeout }, "policies.p.touch_interval"},
		{"bad on_limit", func(p *sessiond.Policy) { p.OnLimit = "drop" }, "policies.p.on_limit"},
		{"bad name", func(p *sessiond.Policy) { p.Name = "a b" }, "policies"},
		{"negative hibernate_after", func(p *sessiond.Policy) { p.HibernateAfter = -time.Second }, "policies.p.hibernate_after"},
		{"negative wake_timeout", func(p *sessiond.Policy) { p.WakeTimeout = -time.Second }, "policies.p.wake_timeout"},
		{"hibernate_after >= ttl", func(p *sessiond.Policy) { p.IdleTimeout = 0; p.HibernateAfter = p.TTL }, "policies.p.hibernate_after"},
		{"idle <= hibernate_after", func(p *sessiond.Policy) { p.HibernateAfter = p.IdleTimeout }, "policies.p.idle_timeout"},
		{"disconnect_grace > hibernate_after", func(p *sessiond.Policy) { p.HibernateAfter, p.DisconnectGrace = time.Minute, 2*time.Minute }, "policies.p.disconnect_grace"},
		{"touch >= hibernate_after", func(p *sessiond.Policy) { p.HibernateAfter, p.TouchInterval = time.Minute, time.Minute }, "policies.p.touch_interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := sessiond.Policy{Name: "p", TTL: time.Hour, IdleTimeout: 10 * time.Minute, RotateAfter: 5 * time.Minute, RotationGrace: time.Second}
			tc.edit(&p)
			err := p.Validate()
			var se *sessiond.Error
			if !errors.As(err, &se) || se.Code != sessiond.CodeInvalidArgument || se.Field != tc.field {
				t.Fatalf("Validate = %v; want invalid_argument naming %q", err, tc.field)
			}
		})
	}
	p := sessiond.Policy{Name: "ok", TTL: time.Hour, IdleTimeout: 20 * time.Minute}
	before := p
	if err := p.Validate(); err != nil || p != before {
		t.Fatalf("Validate changed the policy or failed: %+v %v", p, err)
	}
	if d := p.WithDefaults(); d.TouchInterval != time.Minute || d.OnLimit != sessiond.LimitReject || d.OnConnect != sessiond.ConnectAllowMultiple ||
		d.MaxPerSubject != sessiond.DefaultMaxPerSubject || d.MaxConnections != sessiond.DefaultMaxConnections {
		t.Fatalf("defaults: %+v", d)
	}
	// Negative caps mean none; the defaults are finite.
	unlimited := sessiond.Policy{Name: "u", MaxPerSubject: -1, MaxConnections: -1}
	if err := unlimited.Validate(); err != nil {
		t.Fatalf("a policy without caps: %v", err)
	}
	// Hibernation writes activity often enough to be exact to a tenth.
	ws := sessiond.Policy{Name: "ws", TTL: 8 * time.Hour, IdleTimeout: time.Hour, HibernateAfter: 3 * time.Second, DisconnectGrace: 3 * time.Second}
	if err := ws.Validate(); err != nil {
		t.Fatalf("a hibernating policy: %v", err)
	}
	if d := ws.WithDefaults(); d.TouchInterval != 300*time.Millisecond || d.WakeTimeout != sessiond.DefaultWakeTimeout {
		t.Fatalf("hibernation defaults: touch %v, wake timeout %v", d.TouchInterval, d.WakeTimeout)
	}
	d := sessiond.DefaultPolicy()
	if err := d.Validate(); err != nil {
		t.Fatalf("DefaultPolicy invalid: %v", err)
	}
}
