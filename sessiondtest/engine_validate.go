package sessiondtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessiond/sessiond"
)

func testTTLNeverSlides(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, h, sessiond.Config{})
		c := e.create("alice")
		expires := c.Session.ExpiresAt
		token := c.Token
		rotations := 0
		// Stay active and rotate every 5 minutes for the whole hour.
		for range 11 {
			time.Sleep(5*time.Minute + time.Second)
			v, err := e.validate(token)
			if err != nil {
				t.Fatalf("validate at %v: %v", time.Since(c.Session.CreatedAt), err)
			}
			if v.Token != "" {
				token = v.Token
				rotations++
			}
			if !v.Session.ExpiresAt.Equal(expires) {
				t.Fatalf("ExpiresAt moved from %v to %v (generation %d)", expires, v.Session.ExpiresAt, v.Session.Generation)
			}
		}
		if rotations != 11 {
			t.Fatalf("%d rotations, want 11", rotations)
		}
		time.Sleep(time.Until(expires))
		_, err := e.validate(token)
		wantCode(t, err, sessiond.CodeExpired)
		s, _ := e.m.Get(t.Context(), c.Session.ID)
		if s.State != sessiond.StateEnded || s.EndReason != sessiond.EndExpired {
			t.Fatalf("after ttl: %v %v", s.State, s.EndReason)
		}
	})
}

func testIdleCheckedBeforeRotation(t *testing.T, h Harness) {
	clock := NewManualClock(clockStart)
	e := start(t, h, sessiond.Config{Clock: clock})
	c := e.create("alice")
	// Past both rotate_after (5m) and idle_timeout (10m), read before the
	// idle timer fires: the clock jumps without firing it.
	clock.Jump(10 * time.Minute)
	_, err := e.validate(c.Token)
	wantCode(t, err, sessiond.CodeExpired)
	got := e.eventsOf(c.Session.ID)
	if fmt.Sprint(got) != "[created ending:idle ended:idle]" {
		t.Fatalf("events %v: an idle session must end, not rotate", got)
	}
}

func testRotationOncePerGeneration(t *testing.T, h Harness) {
	race := func(t *testing.T, managers []*sessiond.Manager, e *env) {
		ctx := context.Background()
		c, err := managers[0].Create(ctx, sessiond.CreateRequest{Subject: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(6 * time.Minute)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var newTokens []string
		for i := range 64 {
			wg.Go(func() {
				v, err := managers[i%len(managers)].Validate(ctx, c.Token, sessiond.Device{})
				if err != nil {
					t.Errorf("racing validation: %v", err)
					return
				}
				if v.Token != "" {
					mu.Lock()
					newTokens = append(newTokens, v.Token)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(newTokens) != 1 {
			t.Fatalf("%d validations rotated, want exactly 1", len(newTokens))
		}
		s, _ := managers[0].Get(ctx, c.Session.ID)
		if s.Generation != 1 {
			t.Fatalf("generation %d, want 1", s.Generation)
		}
		if got := e.eventsOf(c.Session.ID); fmt.Sprint(got) != "[created rotated]" {
			t.Fatalf("events %v", got)
		}
		// Both tokens validate within the grace; the new one is current.
		for _, tok := range []string{c.Token, newTokens[0]} {
			if _, err := managers[0].Validate(ctx, tok, sessiond.Device{}); err != nil {
				t.Fatalf("validate after rotation: %v", err)
			}
		}
	}
	t.Run("OneEngine", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := start(t, h, sessiond.Config{})
			race(t, []*sessiond.Manager{e.m}, e)
		})
	})
	t.Run("TwoEnginesOneStore", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := start(t, h, sessiond.Config{})
			other := start(t, h, sessiond.Config{Store: e.store.Store})
			race(t, []*sessiond.Manager{e.m, other.m}, e)
		})
	})
}

func testRotationGraceAndReuse(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, h, sessiond.Config{})
		c := e.create("alice")
		time.Sleep(5 * time.Minute)
		v, err := e.validate(c.Token)
		if err != nil || v.Token == "" {
			t.Fatalf("expected a rotation: %+v, %v", v, err)
		}
		// Another tab still holds the old token: fine within the grace.
		time.Sleep(29 * time.Second)
		old, err := e.validate(c.Token)
		if err != nil || old.Token != "" || old.Session.Generation != 1 {
			t.Fatalf("old token within grace: %+v, %v", old, err)
		}
		// After the grace, the old token is theft: the session ends.
		time.Sleep(time.Second)
		_, err = e.validate(c.Token)
		wantCode(t, err, sessiond.CodeTokenReused)
		_, err = e.validate(v.Token)
		wantCode(t, err, sessiond.CodeEnded)
		s, _ := e.m.Get(t.Context(), c.Session.ID)
		if s.State != sessiond.StateEnded || s.EndReason != sessiond.EndRotatedReuse {
			t.Fatalf("after reuse: %v %v", s.State, s.EndReason)
		}
		if got := e.eventsOf(c.Session.ID); fmt.Sprint(got) != "[created rotated ending:rotated_reuse ended:rotated_reuse]" {
			t.Fatalf("events %v", got)
		}
	})
}

// Reuse detection covers the token family: after T1→T2→T3, replaying T1
// (two rotations old) is theft too, up to MaxRetiredTokens rotations back.
// Older tokens than that are forgotten: unknown.
func testReuseOfAnyRotatedOutToken(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, h, sessiond.Config{})
		for _, back := range []int{2, 3, sessiond.MaxRetiredTokens + 1} {
			c := e.create("alice")
			tokens := []string{c.Token}
			for range back {
				v, err := e.m.Rotate(t.Context(), c.Session.ID)
				if err != nil {
					t.Fatal(err)
				}
				tokens = append(tokens, v.Token)
				time.Sleep(31 * time.Second) // each rotation's grace ends
			}
			_, err := e.validate(tokens[0])
			wantCode(t, err, sessiond.CodeTokenReused)
			_, err = e.validate(tokens[len(tokens)-1])
			wantCode(t, err, sessiond.CodeEnded)
			if s := e.session(c.Session.ID); s.State != sessiond.StateEnded || s.EndReason != sessiond.EndRotatedReuse {
				t.Fatalf("replaying the token of %d rotations back: %v %v; want ended, rotated_reuse", back, s.State, s.EndReason)
			}
		}
		// Past the bounded family, a token is just unknown.
		c := e.create("bob")
		first := c.Token
		for range sessiond.MaxRetiredTokens + 2 {
			if _, err := e.m.Rotate(t.Context(), c.Session.ID); err != nil {
				t.Fatal(err)
			}
			time.Sleep(31 * time.Second)
		}
		_, err := e.validate(first)
		wantCode(t, err, sessiond.CodeNotFound)
		if s := e.session(c.Session.ID); s.State != sessiond.StateActive || len(s.RetiredTokens) != sessiond.MaxRetiredTokens {
			t.Fatalf("after %d rotations: %v with %d retired tokens, want active with %d", sessiond.MaxRetiredTokens+2, s.State, len(s.RetiredTokens), sessiond.MaxRetiredTokens)
		}
	})
}

func testBindDevice(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		p := web()
		p.BindDevice = true
		p.RotateAfter, p.RotationGrace = 0, 0
		e := start(t, h, sessiond.Config{Policies: []sessiond.Policy{p}})
		c, err := e.m.Create(t.Context(), sessiond.CreateRequest{Subject: "alice", Device: sessiond.Device{ID: "phone-1"}})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Minute) // past touch_interval: a valid use would write
		before := e.store.updates.Load()
		_, err = e.m.Validate(t.Context(), c.Token, sessiond.Device{ID: "laptop-9"})
		wantCode(t, err, sessiond.CodeDeviceMismatch)
		_, err = e.m.Validate(t.Context(), c.Token, sessiond.Device{})
		wantCode(t, err, sessiond.CodeDeviceMismatch)
		s, _ := e.m.Get(t.Context(), c.Session.ID)
		if !s.LastActive.Equal(c.Session.LastActive) || e.store.updates.Load() != before {
			t.Fatalf("a mismatched validation moved last_active to %v", s.LastActive)
		}
		v, err := e.m.Validate(t.Context(), c.Token, sessiond.Device{ID: "phone-1"})
		if err != nil || !v.Session.LastActive.After(c.Session.LastActive) {
			t.Fatalf("matching device: %+v, %v", v, err)
		}
	})
}

func testActivityWrittenOncePerTouchInterval(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		p := web()
		p.RotateAfter, p.RotationGrace = 0, 0
		e := start(t, h, sessiond.Config{Policies: []sessiond.Policy{p}})
		c := e.create("alice")
		for range 1000 {
			if _, err := e.validate(c.Token); err != nil {
				t.Fatal(err)
			}
		}
		if n := e.store.updates.Load(); n != 0 {
			t.Fatalf("1000 validations within touch_interval wrote %d times; reads must stay reads", n)
		}
		time.Sleep(time.Minute)
		for range 1000 {
			if _, err := e.validate(c.Token); err != nil {
				t.Fatal(err)
			}
		}
		if n := e.store.updates.Load(); n != 1 {
			t.Fatalf("after touch_interval, 1000 validations wrote %d times, want 1", n)
		}
		if err := e.m.Touch(t.Context(), c.Session.ID); err != nil || e.store.updates.Load() != 1 {
			t.Fatalf("Touch within the interval wrote (%v)", err)
		}
		// Activity keeps the session past its idle timeout.
		for range 3 {
			time.Sleep(9 * time.Minute)
			if _, err := e.validate(c.Token); err != nil {
				t.Fatalf("active session expired: %v", err)
			}
		}
	})
}

// A token issued before tokens carried their session's id validates in a
// store that kept such tokens (a TokenFinder), and is unknown in one that
// never held them; a rotation replaces it with a token that carries the id.
func testTokensWithoutIDFoundByHash(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, h, sessiond.Config{})
		c := e.create("alice")
		legacy, lh := LegacyToken()
		old := e.session(c.Session.ID)
		n := old.Clone()
		n.TokenHash, n.Version = lh, old.Version+1 // as a store written before would hold it
		if err := e.store.Update(t.Context(), sessiond.Change{Session: n}); err != nil {
			t.Fatal(err)
		}
		v, err := e.validate(legacy)
		if tokenFinder(e.store.Store) == nil {
			wantCode(t, err, sessiond.CodeNotFound)
			return
		}
		if err != nil || v.Session.ID != c.Session.ID {
			t.Fatalf("validate(a token without id) = %+v, %v", v, err)
		}
		r, err := e.m.Rotate(t.Context(), c.Session.ID)
		if err != nil {
			t.Fatal(err)
		}
		if id, _, err := sessiond.ParseToken(r.Token); err != nil || id != c.Session.ID {
			t.Fatalf("the rotation's token carries %q, %v", id, err)
		}
		if v, err := e.validate(legacy); err != nil || v.Session.ID != c.Session.ID { // within the grace
			t.Fatalf("the replaced token without id, within the grace: %+v, %v", v, err)
		}
	})
}

// LegacyToken makes a token as sessiond issued them before they carried
// their session's id, and its hash: sd_, then the base64url of 32 random
// bytes and their CRC-32C.
func LegacyToken() (string, sessiond.TokenHash) {
	var raw [36]byte
	_, _ = rand.Read(raw[:32])
	binary.BigEndian.PutUint32(raw[32:], crc32.Checksum(raw[:32], crc32.MakeTable(crc32.Castagnoli)))
	return "sd_" + base64.RawURLEncoding.EncodeToString(raw[:]), sha256.Sum256(raw[:32])
}
