package sessiond

import (
	"context"
	"slices"
	"time"
)

// Validation is the result of a successful Validate or Rotate.
type Validation struct {
	Session *Session
	// Token is the new token when this call rotated the session, else "".
	// The caller must hand it to the client: the old one only lasts the
	// rotation grace.
	Token string
}

// Validate checks a token and returns its session. In order, it:
//
//   - rejects malformed and unknown tokens alike (ErrNotFound: a tampered
//     cookie looks like any unknown token; the checksum rejects it before
//     any lookup), and sessions that are ended;
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
	tc, s, err := m.lookupToken(ctx, token, dev)
	if err != nil {
		return nil, "", err
	}
	n, err := m.change(ctx, s.ID, s, func(s *Session, now time.Time) (*Change, error) {
		n, events, err := tc.check(ctx, s, now)
		if err != nil || n == nil {
			return nil, err
		}
		return &Change{Session: n, Events: events}, nil
	})
	if err != nil {
		return nil, "", err
	}
	return &Validation{Session: n.Clone(), Token: tc.newToken}, tc.result, nil
}

// ValidateAndWake validates like Validate and, if the session is
// hibernated (or hibernating), begins waking it: the session it returns is
// then waking, and Wake or a connection's AwaitAwake waits for it.
func (m *Manager) ValidateAndWake(ctx context.Context, token string, dev Device) (*Validation, error) {
	v, err := m.Validate(ctx, token, dev)
	if err != nil {
		return nil, err
	}
	if st := v.Session.State; st == StateHibernated || st == StateHibernating {
		s, err := m.beginWake(ctx, v.Session)
		if err != nil {
			return nil, err
		}
		v.Session = s.Clone()
	}
	return v, nil
}

// tokenCheck is a validation of one token against its session, as the
// decide step of a compare-and-set: Validate's, and Connect's with a token,
// which attaches in the same write.
type tokenCheck struct {
	m          *Manager
	h          TokenHash
	dev        Device
	sawCurrent bool   // an attempt saw h as the current token
	result     string // "ok", "grace" or "rotated", once checked
	newToken   string // the token a rotation issued, or ""
}

// lookupToken finds the session of a token by the id it carries: unknown
// and malformed tokens alike are ErrNotFound (the checksum rejects a
// tampered one before any lookup), and so is a token that its session does
// not hold (check says so before anything about the session). A token
// from before tokens carried their session's id is looked up by hash, in a
// store that kept such tokens (TokenFinder).
func (m *Manager) lookupToken(ctx context.Context, token string, dev Device) (*tokenCheck, *Session, error) {
	id, h, err := ParseToken(token)
	if err != nil {
		return nil, nil, ErrNotFound
	}
	if err := dev.Validate(); err != nil {
		return nil, nil, err
	}
	var s *Session
	if id != "" {
		s, err = m.cachedGet(ctx, id)
	} else {
		s, err = m.findToken(ctx, h)
	}
	if err != nil {
		return nil, nil, err
	}
	return &tokenCheck{m: m, h: h, dev: dev}, s, nil
}

// cachedGet reads a session for a validation: from the validation cache
// when it holds it, else from the store, caching what it read.
func (m *Manager) cachedGet(ctx context.Context, id string) (*Session, error) {
	if m.cache == nil {
		return m.get(ctx, id)
	}
	now := m.now()
	if s := m.cache.get(id, now); s != nil {
		return s, nil
	}
	s, err := m.get(ctx, id)
	if err == nil {
		m.cache.put(s, now)
	}
	return s, err
}

// check validates the token against s as read now, in Validate's order. It
// returns the session's next version (activity recorded, the token
// rotated) and its events, or a nil session when there is nothing to
// write.
func (tc *tokenCheck) check(ctx context.Context, s *Session, now time.Time) (*Session, []Event, error) {
	m := tc.m
	if !s.holdsToken(tc.h) {
		// Not one of the session's tokens: nothing about the session
		// (ended, expired) may show to whoever knows only its id.
		return nil, nil, ErrNotFound
	}
	if _, err := m.checkLive(ctx, s); err != nil {
		return nil, nil, err
	}
	p := m.policyOf(s)
	current := s.TokenHash == tc.h
	tc.sawCurrent = tc.sawCurrent || current
	if !current {
		previous := s.PrevTokenHash == tc.h
		switch {
		case tc.sawCurrent:
			if !previous {
				return nil, nil, ErrNotFound // rotated out twice while we looked
			}
		case !previous && !slices.Contains(s.RetiredTokens, tc.h):
			return nil, nil, ErrNotFound
		case !previous || !now.Before(s.PrevTokenUntil):
			// A rotated-out token used after its grace, or one of the
			// token family rotated out before: theft. Whoever else holds
			// the session loses it too.
			if _, _, err := m.end(ctx, s, EndRotatedReuse, true); err != nil {
				return nil, nil, err
			}
			return nil, nil, ErrTokenReused
		}
	}
	if p.BindDevice && tc.dev.ID != s.Device.ID {
		return nil, nil, ErrDeviceMismatch
	}
	rotate := current && p.RotateAfter > 0 && !now.Before(issuedAt(s).Add(p.RotateAfter))
	touch := p.TouchInterval > 0 && now.Sub(s.LastActive) >= p.TouchInterval
	tc.result, tc.newToken = "ok", ""
	if !current {
		tc.result = "grace"
	}
	if s.State != StateActive && s.State != StateDisconnected {
		// Asleep, or on its way to sleep or back: a validation triggers
		// nothing, no activity and no rotation (ValidateAndWake wakes).
		return nil, nil, nil
	}
	if !rotate && !touch {
		return nil, nil, nil
	}
	n := s.Clone()
	n.LastActive = now
	if !rotate {
		return n, nil, nil
	}
	// A rotation lost to a racing one finds h the previous token on the
	// next attempt, within its grace.
	tc.newToken, tc.result = m.rotateInto(n, p, now), "rotated"
	return n, []Event{newEvent(EventRotated, n, now)}, nil
}

// holdsToken reports whether h is s's current token, its previous one or
// one of its token family rotated out before.
func (s *Session) holdsToken(h TokenHash) bool {
	return s.TokenHash == h || s.PrevTokenHash == h || slices.Contains(s.RetiredTokens, h)
}

// issuedAt is when the session's current token was issued.
func issuedAt(s *Session) time.Time {
	if !s.RotatedAt.IsZero() {
		return s.RotatedAt
	}
	return s.CreatedAt
}

// rotateInto gives n a new token, keeping the old one valid for the grace
// and the one before it in the token family. The absolute expiry does not
// move.
func (m *Manager) rotateInto(n *Session, p *Policy, now time.Time) string {
	token, hash := NewToken(n.ID)
	if !n.PrevTokenHash.IsZero() {
		retired := make([]TokenHash, 0, min(len(n.RetiredTokens)+1, MaxRetiredTokens))
		retired = append(retired, n.PrevTokenHash)
		n.RetiredTokens = append(retired, n.RetiredTokens[:min(len(n.RetiredTokens), MaxRetiredTokens-1)]...)
	}
	n.PrevTokenHash = n.TokenHash
	n.PrevTokenUntil = now.Add(p.RotationGrace)
	n.TokenHash = hash
	n.RotatedAt = now
	n.Generation++
	return token
}

// Rotate issues a new token for the session now, whatever rotate_after says.
// The replaced token stays valid for the policy's rotation grace.
func (m *Manager) Rotate(ctx context.Context, id string) (*Validation, error) {
	if err := checkID("id", id); err != nil {
		return nil, err
	}
	var token string
	n, err := m.change(ctx, id, nil, func(s *Session, now time.Time) (*Change, error) {
		if _, err := m.checkLive(ctx, s); err != nil {
			return nil, err
		}
		n := s.Clone()
		token = m.rotateInto(n, m.policyOf(s), now)
		return &Change{Session: n, Events: []Event{newEvent(EventRotated, n, now)}}, nil
	})
	if err != nil {
		return nil, err
	}
	return &Validation{Session: n.Clone(), Token: token}, nil
}

// Touch records activity on the session, at most once per touch_interval.
func (m *Manager) Touch(ctx context.Context, id string) error {
	if err := checkID("id", id); err != nil {
		return err
	}
	_, err := m.change(ctx, id, nil, func(s *Session, now time.Time) (*Change, error) {
		if _, err := m.checkLive(ctx, s); err != nil {
			return nil, err
		}
		if p := m.policyOf(s); p.TouchInterval > 0 && now.Sub(s.LastActive) < p.TouchInterval {
			return nil, nil
		}
		n := s.Clone()
		n.LastActive = now
		return &Change{Session: n}, nil
	})
	return err
}
