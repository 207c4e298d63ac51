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
	h, err := ParseToken(token)
	if err != nil {
		return nil, "", ErrNotFound
	}
	if err := dev.Validate(); err != nil {
		return nil, "", err
	}
	s, err := m.findToken(ctx, h)
	if err != nil {
		return nil, "", err
	}
	sawCurrent := false // this call saw h as the current token
	result, newToken := "ok", ""
	n, err := m.change(ctx, s.ID, s, func(s *Session, now time.Time) (*Change, error) {
		if !s.State.Live() {
			return nil, endedError(s)
		}
		if reason, due := m.expiry(s, now); due {
			return nil, m.endFor(ctx, s, reason)
		}
		p := m.policyOf(s)
		current := s.TokenHash == h
		sawCurrent = sawCurrent || current
		if !current {
			previous := s.PrevTokenHash == h
			switch {
			case sawCurrent:
				if !previous {
					return nil, ErrNotFound // rotated out twice while we looked
				}
			case !previous && !slices.Contains(s.RetiredTokens, h):
				return nil, ErrNotFound
			case !previous || !now.Before(s.PrevTokenUntil):
				// A rotated-out token used after its grace, or one of the
				// token family rotated out before: theft. Whoever else
				// holds the session loses it too.
				if _, _, err := m.end(ctx, s, EndRotatedReuse, true); err != nil {
					return nil, err
				}
				return nil, ErrTokenReused
			}
		}
		if p.BindDevice && dev.ID != s.Device.ID {
			return nil, ErrDeviceMismatch
		}
		rotate := current && p.RotateAfter > 0 && !now.Before(issuedAt(s).Add(p.RotateAfter))
		touch := p.TouchInterval > 0 && now.Sub(s.LastActive) >= p.TouchInterval
		result, newToken = "ok", ""
		if !current {
			result = "grace"
		}
		if !rotate && !touch {
			return nil, nil
		}
		n := s.Clone()
		n.LastActive = now
		c := &Change{Session: n}
		if rotate {
			newToken = m.rotateInto(n, p, now)
			result = "rotated"
			c.Events = []Event{newEvent(EventRotated, n, now)}
		}
		// A rotation lost to a racing one finds h the previous token on
		// the next attempt, within its grace.
		return c, nil
	})
	if err != nil {
		return nil, "", err
	}
	return &Validation{Session: n.Clone(), Token: newToken}, result, nil
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
	token, hash := NewToken()
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
