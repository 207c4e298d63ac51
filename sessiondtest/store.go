package sessiondtest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// Harness tells the conformance suites (TestStore, TestEngine) how to get
// stores.
type Harness struct {
	// Open returns a new, empty store. The suite closes it.
	//
	// The engine suite calls it inside the testing/synctest bubble of the
	// test that uses the store, with that bubble's t, so that whatever the
	// store starts (goroutines, timers) belongs to the bubble and runs on
	// its fake time; Close must stop it all. Tests that move time with a
	// ManualClock call it outside any bubble.
	Open func(t testing.TB) sessiond.Store
	// Reopen, if set, closes s and opens the same store again, to check that
	// what was acknowledged survives. Stores that keep nothing leave it nil.
	Reopen func(t testing.TB, s sessiond.Store) sessiond.Store
}

// TestStore runs the Store conformance suite: the contract documented on
// sessiond.Store, method by method.
func TestStore(t *testing.T, h Harness) {
	open := func(t *testing.T) sessiond.Store {
		t.Helper()
		s := h.Open(t)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	t.Run("CreateGet", func(t *testing.T) { testCreateGet(t, open(t)) })
	t.Run("CreateExists", func(t *testing.T) { testCreateExists(t, open(t)) })
	if tokenFinder(open(t)) != nil {
		t.Run("FindToken", func(t *testing.T) { testFindToken(t, open(t)) })
	}
	t.Run("UpdateCAS", func(t *testing.T) { testUpdateCAS(t, open(t)) })
	t.Run("UpdateRace", func(t *testing.T) { testUpdateRace(t, open(t)) })
	t.Run("LiveIndex", func(t *testing.T) { testLiveIndex(t, open(t)) })
	t.Run("LimitReject", func(t *testing.T) { testLimitReject(t, open(t)) })
	t.Run("LimitEvict", func(t *testing.T) { testLimitEvict(t, open(t)) })
	t.Run("LimitEvictClosesConnections", func(t *testing.T) { testLimitEvictClosesConnections(t, open(t)) })
	t.Run("UniqueDevice", func(t *testing.T) { testUniqueDevice(t, open(t)) })
	t.Run("Connections", func(t *testing.T) { testConnections(t, open(t)) })
	t.Run("ManyConnections", func(t *testing.T) { testManyConnections(t, open(t)) })
	t.Run("FindDevice", func(t *testing.T) { testFindDevice(t, open(t)) })
	t.Run("TokenFamily", func(t *testing.T) { testTokenFamily(t, open(t)) })
	t.Run("Leases", func(t *testing.T) { testLeases(t, open(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, open(t)) })
	t.Run("List", func(t *testing.T) { testList(t, open(t)) })
	t.Run("Stats", func(t *testing.T) { testStats(t, open(t)) })
	t.Run("DueIndex", func(t *testing.T) { testDueIndex(t, open(t)) })
	t.Run("DueEvicted", func(t *testing.T) { testDueEvicted(t, open(t)) })
	t.Run("DueClaimRace", func(t *testing.T) { testDueClaimRace(t, open(t)) })
	t.Run("Events", func(t *testing.T) { testEvents(t, open(t)) })
	if _, ok := open(t).(sessiond.EventWaiter); ok {
		t.Run("WaitEvents", func(t *testing.T) { testWaitEvents(t, open(t)) })
	}
	t.Run("EventsFollowChanges", func(t *testing.T) { testEventsFollowChanges(t, open(t)) })
	t.Run("Isolation", func(t *testing.T) { testIsolation(t, open(t)) })
	if _, ok := open(t).(sessiond.Consumers); ok {
		t.Run("Consumers", func(t *testing.T) { testConsumers(t, open(t)) })
		t.Run("ConsumersBadInput", func(t *testing.T) { testConsumersBadInput(t, open(t)) })
		t.Run("ConsumersRace", func(t *testing.T) { testConsumersRace(t, open(t)) })
	}
	t.Run("Closed", func(t *testing.T) { testClosed(t, h.Open(t)) })
	if h.Reopen != nil {
		t.Run("Reopen", func(t *testing.T) {
			s := h.Open(t)
			s = testReopen(t, s, h.Reopen)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
		if _, ok := open(t).(sessiond.Consumers); ok {
			t.Run("ConsumersReopen", func(t *testing.T) {
				s := testConsumersReopen(t, h.Open(t), h.Reopen)
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// Epoch is the time the suite's sessions are created at.
var Epoch = time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)

// NewSession returns a fresh active session of subject with a random token,
// created at the given time, as the engine would make it.
func NewSession(subject string, created time.Time) (*sessiond.Session, string) {
	id := sessiond.NewID(created, subject)
	token, hash := sessiond.NewToken(id)
	return &sessiond.Session{
		ID: id, Subject: subject, Policy: "default",
		State: sessiond.StateActive, CreatedAt: created, LastActive: created, StateSince: created,
		ExpiresAt: created.Add(time.Hour), IdleTimeout: 10 * time.Minute,
		Version: 1, TokenHash: hash,
	}, token
}

func created(s *sessiond.Session) []sessiond.Event {
	return []sessiond.Event{{Type: sessiond.EventCreated, SessionID: s.ID, Subject: s.Subject, Time: s.CreatedAt, State: s.State, Version: s.Version}}
}

func mustCreate(t testing.TB, st sessiond.Store, s *sessiond.Session) {
	t.Helper()
	if _, err := st.Create(context.Background(), sessiond.Change{Session: s, Events: created(s)}, sessiond.Limit{}); err != nil {
		t.Fatalf("Create(%s): %v", s.ID, err)
	}
}

// next returns s changed by f, one version on.
func next(s *sessiond.Session, f func(*sessiond.Session)) *sessiond.Session {
	n := s.Clone()
	n.Version++
	if f != nil {
		f(n)
	}
	return n
}

func ended(reason sessiond.EndReason, at time.Time) func(*sessiond.Session) {
	return func(s *sessiond.Session) {
		s.State, s.EndReason, s.EndedAt = sessiond.StateEnded, reason, at
	}
}

// SameSession fails t unless got and want agree on every stored field.
func SameSession(t testing.TB, got, want *sessiond.Session) {
	t.Helper()
	if got == nil {
		t.Fatalf("got no session, want %s", want.ID)
	}
	g, w := *got, *want
	for _, p := range []struct {
		name string
		a, b time.Time
	}{
		{"CreatedAt", g.CreatedAt, w.CreatedAt}, {"LastActive", g.LastActive, w.LastActive},
		{"ExpiresAt", g.ExpiresAt, w.ExpiresAt}, {"RotatedAt", g.RotatedAt, w.RotatedAt},
		{"EndedAt", g.EndedAt, w.EndedAt}, {"PrevTokenUntil", g.PrevTokenUntil, w.PrevTokenUntil},
		{"DisconnectedAt", g.DisconnectedAt, w.DisconnectedAt}, {"StateSince", g.StateSince, w.StateSince},
	} {
		if !p.a.Equal(p.b) {
			t.Errorf("session %s: %s = %v, want %v", w.ID, p.name, p.a, p.b)
		}
	}
	for _, t := range []*time.Time{&g.CreatedAt, &g.LastActive, &g.ExpiresAt, &g.RotatedAt, &g.EndedAt, &g.PrevTokenUntil, &g.DisconnectedAt, &g.StateSince,
		&w.CreatedAt, &w.LastActive, &w.ExpiresAt, &w.RotatedAt, &w.EndedAt, &w.PrevTokenUntil, &w.DisconnectedAt, &w.StateSince} {
		*t = time.Time{}
	}
	if string(g.Metadata) != string(w.Metadata) {
		t.Errorf("session %s: Metadata = %s, want %s", w.ID, g.Metadata, w.Metadata)
	}
	g.Metadata, w.Metadata = nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("session %s:\n got %+v\nwant %+v", w.ID, g, w)
	}
}

func wantErr(t testing.TB, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func testCreateGet(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	s, _ := NewSession("alice", Epoch)
	s.Device = sessiond.Device{ID: "d1", Type: "phone", Name: "Alice's", IP: "10.0.0.1", UserAgent: "ua/1"}
	s.Metadata = []byte(`{"plan":"pro","n":1}`)
	mustCreate(t, st, s)
	got, err := st.Get(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	SameSession(t, got, s)
	_, err = st.Get(ctx, "no-such-id")
	wantErr(t, err, sessiond.ErrNotFound, "Get(unknown)")
}

func testCreateExists(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	s, _ := NewSession("alice", Epoch)
	mustCreate(t, st, s)
	dup, _ := NewSession("bob", Epoch)
	dup.ID = s.ID
	_, err := st.Create(ctx, sessiond.Change{Session: dup, Events: created(dup)}, sessiond.Limit{})
	wantErr(t, err, sessiond.ErrExists, "Create(same id, other subject)")
	if err := st.Update(ctx, sessiond.Change{Session: next(s, ended(sessiond.EndRevoked, Epoch))}); err != nil {
		t.Fatal(err)
	}
	_, err = st.Create(ctx, sessiond.Change{Session: dup, Events: created(dup)}, sessiond.Limit{})
	wantErr(t, err, sessiond.ErrExists, "Create(id of an ended session)")
	if tf := tokenFinder(st); tf != nil {
		if _, err := tf.FindToken(ctx, dup.TokenHash); !errors.Is(err, sessiond.ErrNotFound) {
			t.Fatalf("a refused create left its token findable: %v", err)
		}
	}

	// Racing creates of one id: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 20 {
		wg.Go(func() {
			c, _ := NewSession(fmt.Sprintf("racer-%d", i), Epoch)
			c.ID = "contested"
			_, err := st.Create(ctx, sessiond.Change{Session: c, Events: created(c)}, sessiond.Limit{})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, sessiond.ErrExists):
				t.Errorf("racing create: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d racing creates of one id succeeded, want 1", wins)
	}
}

// tokenFinder returns st as a TokenFinder, or nil: FindToken's checks apply
// to the stores that keep the tokens issued before tokens carried their
// session's id.
func tokenFinder(st sessiond.Store) sessiond.TokenFinder {
	tf, _ := st.(sessiond.TokenFinder)
	return tf
}

func testFindToken(t *testing.T, store sessiond.Store) {
	ctx := context.Background()
	st := struct {
		sessiond.Store
		sessiond.TokenFinder
	}{store, tokenFinder(store)}
	s, _ := NewSession("alice", Epoch)
	mustCreate(t, st, s)
	got, err := st.FindToken(ctx, s.TokenHash)
	if err != nil || got.ID != s.ID {
		t.Fatalf("FindToken(current) = %v, %v", got, err)
	}
	_, err = st.FindToken(ctx, sessiond.TokenHash{1, 2, 3})
	wantErr(t, err, sessiond.ErrNotFound, "FindToken(unknown)")

	// Rotate: both the new and the previous hash find it.
	_, h2 := sessiond.NewToken("x")
	r1 := next(s, func(n *sessiond.Session) {
		n.PrevTokenHash, n.TokenHash, n.PrevTokenUntil, n.RotatedAt, n.Generation = n.TokenHash, h2, Epoch.Add(time.Minute), Epoch, 1
	})
	if err := st.Update(ctx, sessiond.Change{Session: r1}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []sessiond.TokenHash{s.TokenHash, h2} {
		if got, err := st.FindToken(ctx, h); err != nil || got.Version != 2 {
			t.Fatalf("after rotation FindToken = %v, %v; want version 2", got, err)
		}
	}
	// Rotate again: the first hash is gone.
	_, h3 := sessiond.NewToken("x")
	r2 := next(r1, func(n *sessiond.Session) { n.PrevTokenHash, n.TokenHash, n.Generation = n.TokenHash, h3, 2 })
	if err := st.Update(ctx, sessiond.Change{Session: r2}); err != nil {
		t.Fatal(err)
	}
	_, err = st.FindToken(ctx, s.TokenHash)
	wantErr(t, err, sessiond.ErrNotFound, "FindToken(token rotated out twice)")
	// Ended sessions are still found by token (the engine reports why).
	if err := st.Update(ctx, sessiond.Change{Session: next(r2, ended(sessiond.EndRevoked, Epoch))}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.FindToken(ctx, h3); err != nil || got.State != sessiond.StateEnded {
		t.Fatalf("FindToken(ended) = %v, %v", got, err)
	}
}

func testUpdateCAS(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	s, _ := NewSession("alice", Epoch)
	mustCreate(t, st, s)
	stale := next(s, func(n *sessiond.Session) { n.LastActive = Epoch.Add(time.Second) })
	if err := st.Update(ctx, sessiond.Change{Session: stale}); err != nil {
		t.Fatal(err)
	}
	again := next(s, func(n *sessiond.Session) { n.LastActive = Epoch.Add(2 * time.Second) })
	err := st.Update(ctx, sessiond.Change{Session: again, Events: []sessiond.Event{{Type: sessiond.EventRotated, SessionID: s.ID}}})
	wantErr(t, err, sessiond.ErrConflict, "Update(stale version)")
	got, _ := st.Get(ctx, s.ID)
	SameSession(t, got, stale)
	if evs, _ := st.Events(ctx, sessiond.Cursor{}, 10); len(evs) != 1 {
		t.Fatalf("a refused update recorded events: %+v", evs)
	}
	ghost, _ := NewSession("alice", Epoch)
	ghost.Version = 2
	wantErr(t, st.Update(ctx, sessiond.Change{Session: ghost}), sessiond.ErrNotFound, "Update(unknown)")
}

func testUpdateRace(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	s, _ := NewSession("alice", Epoch)
	mustCreate(t, st, s)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 50 {
		wg.Go(func() {
			err := st.Update(ctx, sessiond.Change{Session: next(s, nil), Events: []sessiond.Event{{Type: sessiond.EventRotated, SessionID: s.ID}}})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, sessiond.ErrConflict):
				t.Errorf("racing update: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d racing updates from one version succeeded, want exactly 1", wins)
	}
	if evs, _ := st.Events(ctx, sessiond.Cursor{}, 100); len(evs) != 2 {
		t.Fatalf("got %d events, want 2 (created and the one winning update)", len(evs))
	}
}

func ids(ss []*sessiond.Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}

func testLiveIndex(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	var all []*sessiond.Session
	for i := range 4 {
		s, _ := NewSession("alice", Epoch.Add(time.Duration(3-i)*time.Second)) // created in reverse
		mustCreate(t, st, s)
		all = append(all, s)
	}
	other, _ := NewSession("bob", Epoch)
	mustCreate(t, st, other)
	live, err := st.Live(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{all[3].ID, all[2].ID, all[1].ID, all[0].ID} // oldest first
	if got := ids(live); !slices.Equal(got, want) {
		t.Fatalf("Live = %v, want oldest first %v", got, want)
	}
	// Ending, rotating, deleting: the index follows, and never holds stale entries.
	if err := st.Update(ctx, sessiond.Change{Session: next(all[1], ended(sessiond.EndRevoked, Epoch))}); err != nil {
		t.Fatal(err)
	}
	ending := next(all[2], func(n *sessiond.Session) { n.State, n.EndReason = sessiond.StateEnding, sessiond.EndEvicted })
	if err := st.Update(ctx, sessiond.Change{Session: ending}); err != nil {
		t.Fatal(err)
	}
	_, h := sessiond.NewToken("x")
	if err := st.Update(ctx, sessiond.Change{Session: next(all[3], func(n *sessiond.Session) { n.PrevTokenHash, n.TokenHash = n.TokenHash, h })}); err != nil {
		t.Fatal(err)
	}
	live, _ = st.Live(ctx, "alice")
	if got, want := ids(live), []string{all[3].ID, all[0].ID}; !slices.Equal(got, want) {
		t.Fatalf("Live after end/ending/rotate = %v, want %v", got, want)
	}
	if live[0].TokenHash != h {
		t.Fatalf("Live returned a stale version of a rotated session")
	}
	if live, _ := st.Live(ctx, "nobody"); live == nil || len(live) != 0 {
		t.Fatalf("Live(unknown subject) = %#v, want empty non-nil", live)
	}
	if live, _ := st.Live(ctx, "bob"); len(live) != 1 {
		t.Fatalf("ending alice's sessions changed bob's: %v", ids(live))
	}
}

func testLimitReject(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, rejected := 0, 0
	for i := range 100 {
		wg.Go(func() {
			s, _ := NewSession("alice", Epoch.Add(time.Duration(i)*time.Millisecond))
			_, err := st.Create(ctx, sessiond.Change{Session: s, Events: created(s)}, sessiond.Limit{Max: 5, Now: Epoch})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, sessiond.ErrLimitReached):
				rejected++
			default:
				t.Errorf("Create: %v", err)
			}
		})
	}
	wg.Wait()
	live, _ := st.Live(ctx, "alice")
	if ok != 5 || rejected != 95 || len(live) != 5 {
		t.Fatalf("100 concurrent creates with limit 5: %d ok, %d rejected, %d live; want 5, 95, 5", ok, rejected, len(live))
	}
	// Ending one frees a place.
	if err := st.Update(ctx, sessiond.Change{Session: next(live[0], ended(sessiond.EndRevoked, Epoch))}); err != nil {
		t.Fatal(err)
	}
	s, _ := NewSession("alice", Epoch)
	if _, err := st.Create(ctx, sessiond.Change{Session: s, Events: created(s)}, sessiond.Limit{Max: 5}); err != nil {
		t.Fatalf("create after one ended: %v", err)
	}
}

func testLimitEvict(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var evicted []*sessiond.Session
	for i := range 100 {
		wg.Go(func() {
			s, _ := NewSession("alice", Epoch.Add(time.Duration(i)*time.Millisecond))
			ev, err := st.Create(ctx, sessiond.Change{Session: s, Events: created(s)}, sessiond.Limit{Max: 5, EvictOldest: true, Now: Epoch.Add(time.Hour)})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("Create: %v", err)
			}
			evicted = append(evicted, ev...)
		})
	}
	wg.Wait()
	live, _ := st.Live(ctx, "alice")
	if len(live) != 5 || len(evicted) != 95 {
		t.Fatalf("100 concurrent evicting creates with limit 5: %d live, %d evicted; want 5 and 95", len(live), len(evicted))
	}
	for _, e := range evicted {
		got, err := st.Get(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != sessiond.StateEnding || got.EndReason != sessiond.EndEvicted || got.Version != 2 || !got.EndedAt.Equal(Epoch.Add(time.Hour)) {
			t.Fatalf("evicted session stored as %+v; want ending/evicted, version 2, ended at Limit.Now", got)
		}
	}
	// Each eviction recorded an ending event before the create that caused it.
	evs, _ := st.Events(ctx, sessiond.Cursor{}, 1000)
	pos := map[string]int{}
	for i, e := range evs {
		pos[string(e.Type)+"/"+e.SessionID] = i
	}
	for _, e := range evicted {
		if _, ok := pos["ending/"+e.ID]; !ok {
			t.Fatalf("no ending event for evicted session %s", e.ID)
		}
	}
	if len(evs) != 195 {
		t.Fatalf("got %d events, want 100 created + 95 ending", len(evs))
	}
	// The oldest were evicted: no live session is older than an evicted one
	// that it outlived when it was created. Simplest check: with a single
	// creator, the evictee is exactly the oldest.
	solo, _ := NewSession("solo", Epoch)
	mustCreate(t, st, solo)
	newer, _ := NewSession("solo", Epoch.Add(time.Second))
	ev, err := st.Create(ctx, sessiond.Change{Session: newer, Events: created(newer)}, sessiond.Limit{Max: 1, EvictOldest: true, Now: Epoch})
	if err != nil || len(ev) != 1 || ev[0].ID != solo.ID {
		t.Fatalf("evicting create: %v, %v; want the oldest session %s evicted", ids(ev), err, solo.ID)
	}
}

// An evicted session loses its connections in the evicting create, and
// each is recorded closed there (sessiond.Ending with them): after the
// ending event, a connection_closed per connection, session_ended, with
// what the connection was.
func testLimitEvictClosesConnections(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	old, _ := NewSession("alice", Epoch)
	a, b := conn(old, "a", "websocket", "n1", Epoch), conn(old, "b", "vnc", "", Epoch.Add(time.Second))
	a.ClientIP, b.UserAgent = "203.0.113.7", "vncviewer"
	old.ConnCount = 2
	if _, err := st.Create(ctx, sessiond.Change{Session: old, PutConns: []sessiond.Connection{a, b}, Events: created(old)}, sessiond.Limit{}); err != nil {
		t.Fatal(err)
	}
	now := Epoch.Add(time.Minute)
	newer, _ := NewSession("alice", now)
	evicted, err := st.Create(ctx, sessiond.Change{Session: newer, Events: created(newer)}, sessiond.Limit{Max: 1, EvictOldest: true, Now: now})
	if err != nil || len(evicted) != 1 || evicted[0].ID != old.ID {
		t.Fatalf("evicting create: %v, %v", ids(evicted), err)
	}
	if conns, _ := st.Conns(ctx, old.ID); len(conns) != 0 {
		t.Fatalf("the evicted session keeps connections %+v", conns)
	}
	evs, err := st.Events(ctx, sessiond.Cursor{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	closed := map[string]*sessiond.ConnDetail{}
	for _, ev := range evs {
		if ev.SessionID != old.ID {
			continue
		}
		got = append(got, string(ev.Type))
		if ev.Type == sessiond.EventConnectionClosed {
			if ev.State != sessiond.StateEnding || ev.Reason != sessiond.EndEvicted || !ev.Time.Equal(now) || ev.Conn == nil {
				t.Fatalf("connection_closed of an evicted session: %+v", ev)
			}
			closed[ev.Connection] = ev.Conn
		}
	}
	if fmt.Sprint(got) != "[created ending connection_closed connection_closed]" {
		t.Fatalf("events of the evicted session: %v", got)
	}
	for _, c := range []sessiond.Connection{a, b} {
		d := closed[c.ID]
		if d == nil || d.CloseReason != sessiond.ClosedSessionEnded || d.Kind != c.Kind || d.Node != c.Node || d.ClientIP != c.ClientIP ||
			d.UserAgent != c.UserAgent || !d.OpenedAt.Equal(c.ConnectedAt) || !d.ClosedAt.Equal(now) {
			t.Fatalf("connection %s closed as %+v; want it as attached, session_ended at %v", c.ID, d, now)
		}
	}
}

func testDelete(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	s, _ := NewSession("alice", Epoch)
	mustCreate(t, st, s)
	e := next(s, ended(sessiond.EndExpired, Epoch))
	if err := st.Update(ctx, sessiond.Change{Session: e}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, st.Delete(ctx, s.ID, 1), sessiond.ErrConflict, "Delete(old version)")
	wantErr(t, st.Delete(ctx, "no-such", 1), sessiond.ErrNotFound, "Delete(unknown)")
	if err := st.Delete(ctx, s.ID, e.Version); err != nil {
		t.Fatal(err)
	}
	_, err := st.Get(ctx, s.ID)
	wantErr(t, err, sessiond.ErrNotFound, "Get(deleted)")
	if tf := tokenFinder(st); tf != nil {
		_, err = tf.FindToken(ctx, s.TokenHash)
		wantErr(t, err, sessiond.ErrNotFound, "FindToken(deleted)")
	}
	page, err := st.List(ctx, sessiond.Query{Subject: "alice"})
	if err != nil || len(page.Sessions) != 0 {
		t.Fatalf("List after delete = %v, %v", ids(page.Sessions), err)
	}
	st2, _ := st.Stats(ctx)
	if st2.Total != 0 {
		t.Fatalf("Stats after delete: %+v", st2)
	}
	// The id is free again.
	again, _ := NewSession("alice", Epoch)
	again.ID = s.ID
	mustCreate(t, st, again)
}

func testList(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	want := map[string]*sessiond.Session{}
	for i := range 250 {
		s, _ := NewSession(fmt.Sprintf("user-%d", i%7), Epoch.Add(time.Duration(i)*time.Millisecond))
		mustCreate(t, st, s)
		if i%5 == 0 {
			e := next(s, ended(sessiond.EndRevoked, Epoch))
			if err := st.Update(ctx, sessiond.Change{Session: e}); err != nil {
				t.Fatal(err)
			}
			s = e
		}
		want[s.ID] = s
	}
	collect := func(q sessiond.Query) []*sessiond.Session {
		t.Helper()
		var out []*sessiond.Session
		for pages := 0; ; pages++ {
			if pages > 1000 {
				t.Fatal("List does not terminate")
			}
			page, err := st.List(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if q.Limit > 0 && len(page.Sessions) > q.Limit {
				t.Fatalf("page of %d sessions, limit %d", len(page.Sessions), q.Limit)
			}
			out = append(out, page.Sessions...)
			if page.Next == "" {
				return out
			}
			q.Cursor = page.Next
		}
	}
	all := collect(sessiond.Query{Limit: 17})
	if len(all) != 250 {
		t.Fatalf("paging all: %d sessions, want 250", len(all))
	}
	if !slices.IsSortedFunc(all, func(a, b *sessiond.Session) int { return strings.Compare(a.ID, b.ID) }) {
		t.Fatal("List is not in id order")
	}
	seen := map[string]bool{}
	for _, s := range all {
		if seen[s.ID] {
			t.Fatalf("session %s listed twice", s.ID)
		}
		seen[s.ID] = true
		SameSession(t, s, want[s.ID])
	}
	alice := collect(sessiond.Query{Subject: "user-3", Limit: 4})
	endedOnes := collect(sessiond.Query{State: sessiond.StateEnded, Limit: 9})
	aliceEnded := collect(sessiond.Query{Subject: "user-3", State: sessiond.StateEnded})
	var wantAlice, wantEnded, wantAliceEnded int
	for _, s := range want {
		if s.Subject == "user-3" {
			wantAlice++
			if s.State == sessiond.StateEnded {
				wantAliceEnded++
			}
		}
		if s.State == sessiond.StateEnded {
			wantEnded++
		}
	}
	if len(alice) != wantAlice || len(endedOnes) != wantEnded || len(aliceEnded) != wantAliceEnded {
		t.Fatalf("filters: subject %d/%d, state %d/%d, both %d/%d", len(alice), wantAlice, len(endedOnes), wantEnded, len(aliceEnded), wantAliceEnded)
	}
	for _, s := range aliceEnded {
		if s.Subject != "user-3" || s.State != sessiond.StateEnded {
			t.Fatalf("filter let through %+v", s)
		}
	}
	if none := collect(sessiond.Query{Subject: "nobody"}); len(none) != 0 {
		t.Fatalf("List(unknown subject) = %v", ids(none))
	}
	_, err := st.List(ctx, sessiond.Query{Cursor: "garbage!"})
	wantErr(t, err, sessiond.ErrInvalidArgument, "List(bad cursor)")
}

func testStats(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	a1, _ := NewSession("alice", Epoch)
	a2, _ := NewSession("alice", Epoch)
	b1, _ := NewSession("bob", Epoch)
	for _, s := range []*sessiond.Session{a1, a2, b1} {
		mustCreate(t, st, s)
	}
	if err := st.Update(ctx, sessiond.Change{Session: next(b1, ended(sessiond.EndRevoked, Epoch))}); err != nil {
		t.Fatal(err)
	}
	got, err := st.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Total != 3 || got.Subjects != 1 || got.ByState[sessiond.StateActive] != 2 || got.ByState[sessiond.StateEnded] != 1 {
		t.Fatalf("Stats = %+v; want total 3, 1 live subject, 2 active, 1 ended", got)
	}
}

// testWaitEvents: WaitEvents answers at once when the log is past after,
// waits for the next write otherwise (made through the store, as another
// engine would), and gives up with ctx.
func testWaitEvents(t *testing.T, st sessiond.Store) {
	w := st.(sessiond.EventWaiter)
	ctx := context.Background()
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := w.WaitEvents(done, sessiond.Cursor{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitEvents(cancelled, 0) on an empty log = %v; want context.Canceled", err)
	}
	s, _ := NewSession("alice", Epoch)
	mustCreate(t, st, s)
	one, err := w.WaitEvents(ctx, sessiond.Cursor{})
	if err != nil || !(sessiond.Cursor{}).Behind(one) {
		t.Fatalf("WaitEvents(0) after one event = %v, %v; want a head past it at once", one, err)
	}
	type result struct {
		head sessiond.Cursor
		err  error
	}
	got := make(chan result, 1)
	go func() {
		head, err := w.WaitEvents(ctx, one)
		got <- result{head, err}
	}()
	n := next(s, func(n *sessiond.Session) { n.LastActive = Epoch.Add(time.Second) })
	if err := st.Update(ctx, sessiond.Change{Session: n, Events: []sessiond.Event{{Type: sessiond.EventRotated, SessionID: s.ID, Subject: "alice", Version: 2}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if r.err != nil || !one.Behind(r.head) {
			t.Fatalf("WaitEvents(%v) across a write = %v, %v; want a head past it", one, r.head, r.err)
		}
	case <-time.After(EventuallyTimeout):
		t.Fatalf("WaitEvents(1) still waiting %v after the log grew to 2", EventuallyTimeout)
	}
}

// checkSeqs fails t unless each partition's events, read from the log's
// beginning, are numbered 1, 2, 3... in order.
func checkSeqs(t testing.TB, evs []sessiond.Event) {
	t.Helper()
	last := map[int]uint64{}
	for i, e := range evs {
		if e.Seq != last[e.Partition]+1 {
			t.Fatalf("event %d is Seq %d of partition %d after Seq %d: want 1, 2, 3... without gaps in each partition", i, e.Seq, e.Partition, last[e.Partition])
		}
		last[e.Partition] = e.Seq
	}
}

func testEvents(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	if head, err := st.Head(ctx); err != nil || (sessiond.Cursor{}).Behind(head) {
		t.Fatalf("Head of an empty store = %v, %v", head, err)
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			s, _ := NewSession(fmt.Sprintf("u%d", i), Epoch)
			evs := created(s)
			if _, err := st.Create(ctx, sessiond.Change{Session: s, Events: evs}, sessiond.Limit{}); err != nil {
				t.Error(err)
				return
			}
			if evs[0].Seq == 0 {
				t.Error("Create did not assign the event's Seq")
			}
			if p := evs[0].Partition; p < 0 {
				t.Errorf("Create assigned partition %d", p)
			}
			r := next(s, nil)
			ev := []sessiond.Event{{Type: sessiond.EventRotated, SessionID: s.ID, Subject: s.Subject, Version: 2}}
			if err := st.Update(ctx, sessiond.Change{Session: r, Events: ev}); err != nil {
				t.Error(err)
			}
			if ev[0].Partition != evs[0].Partition || ev[0].Seq <= evs[0].Seq {
				t.Errorf("update's event %d/%d not after create's %d/%d in its partition", ev[0].Partition, ev[0].Seq, evs[0].Partition, evs[0].Seq)
			}
		})
	}
	wg.Wait()
	all, err := st.Events(ctx, sessiond.Cursor{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 80 {
		t.Fatalf("got %d events, want 80", len(all))
	}
	checkSeqs(t, all)
	perSession := map[string][]sessiond.EventType{}
	var mid sessiond.Cursor // past the first 40
	for i, e := range all {
		perSession[e.SessionID] = append(perSession[e.SessionID], e.Type)
		if i < 40 {
			mid = mid.After(e)
		}
	}
	for id, types := range perSession {
		if !slices.Equal(types, []sessiond.EventType{sessiond.EventCreated, sessiond.EventRotated}) {
			t.Fatalf("session %s events out of order: %v", id, types)
		}
	}
	head, _ := st.Head(ctx)
	var end sessiond.Cursor
	for _, e := range all {
		end = end.After(e)
	}
	if head.Behind(end) || end.Behind(head) {
		t.Fatalf("Head = %v, want %v: past the 80 events", head, end)
	}
	// From a cursor: the events it is not past, once each.
	rest, err := st.Events(ctx, mid, 100)
	if err != nil || len(rest) != 40 {
		t.Fatalf("Events(past the first 40) = %d events, %v; want 40", len(rest), err)
	}
	for _, e := range rest {
		if mid.Covers(e) {
			t.Fatalf("Events(%v) returned %d/%d, which it is past", mid, e.Partition, e.Seq)
		}
	}
	// A limited read is a prefix of each partition's log.
	limited, _ := st.Events(ctx, sessiond.Cursor{}, 5)
	if len(limited) != 5 {
		t.Fatalf("Events(limit 5) = %d events", len(limited))
	}
	checkSeqs(t, limited)
	if none, _ := st.Events(ctx, head, 10); len(none) != 0 {
		t.Fatalf("Events(Head) = %d events", len(none))
	}
	foreign := sessiond.CursorOf(append(make([]uint64, sessiond.MaxCursorPartitions-1), 1)...)
	_, err = st.Events(ctx, foreign, 10)
	wantErr(t, err, sessiond.ErrInvalidArgument, "Events(a cursor of another deployment)")
	e := all[0]
	if e.Type != sessiond.EventCreated || e.SessionID == "" || e.Subject == "" || !e.Time.Equal(Epoch) || e.State != sessiond.StateActive || e.Version != 1 {
		t.Fatalf("event fields not kept: %+v", e)
	}
}

// testEventsFollowChanges: an event is readable from the log only once
// the change it records is: after Events returns an event, Get returns
// its session at the event's version or a newer one. Writers of several
// subjects (whose writes a store may commit together) race a reader
// following the log, many times over.
func testEventsFollowChanges(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	const writers, updates = 8, 60
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			s, _ := NewSession(fmt.Sprint("follow-", w), Epoch)
			if _, err := st.Create(ctx, sessiond.Change{Session: s, Events: created(s)}, sessiond.Limit{}); err != nil {
				t.Errorf("Create: %v", err)
				return
			}
			for cur := s; cur.Version <= updates; {
				n := next(cur, func(n *sessiond.Session) { n.LastActive = n.LastActive.Add(time.Second) })
				ev := []sessiond.Event{{Type: sessiond.EventRotated, SessionID: s.ID, Subject: s.Subject, Version: n.Version}}
				if err := st.Update(ctx, sessiond.Change{Session: n, Events: ev}); err != nil {
					t.Errorf("Update: %v", err)
					return
				}
				cur = n
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var after sessiond.Cursor
	seen := 0
	for finished := false; ; {
		select {
		case <-done:
			finished = true // the read below sees every event
		default:
		}
		evs, err := st.Events(ctx, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			got, err := st.Get(ctx, e.SessionID)
			if err != nil || got.Version < e.Version {
				var v uint64
				if got != nil {
					v = got.Version
				}
				<-done
				t.Fatalf("after Events returned event %d (%s of session %s at version %d), Get gave version %d, %v: the event was readable before its change", e.Seq, e.Type, e.SessionID, e.Version, v, err)
			}
			after = after.After(e)
			seen++
		}
		if finished && len(evs) == 0 {
			break
		}
	}
	if want := writers * (updates + 1); seen != want {
		t.Fatalf("followed %d events, want %d", seen, want)
	}
}

func testIsolation(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	s, _ := NewSession("alice", Epoch)
	s.Metadata = []byte(`{"a":1}`)
	mustCreate(t, st, s)
	s.Subject = "mallory"
	s.Metadata[2] = 'b'
	got, _ := st.Get(ctx, s.ID)
	if got.Subject != "alice" || string(got.Metadata) != `{"a":1}` {
		t.Fatalf("changing a session after Create changed the stored one: %+v", got)
	}
}

func testClosed(t *testing.T, st sessiond.Store) {
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(context.Background(), "x"); err == nil || errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("Get after Close = %v, want a fault", err)
	}
}

func testReopen(t *testing.T, st sessiond.Store, reopen func(testing.TB, sessiond.Store) sessiond.Store) sessiond.Store {
	ctx := context.Background()
	a, _ := NewSession("alice", Epoch)
	a.Device = sessiond.Device{ID: "d", Type: "t", Name: "n", IP: "::1", UserAgent: "u"}
	a.Metadata = []byte(`{"k":"v"}`)
	mustCreate(t, st, a)
	_, h := sessiond.NewToken("x")
	_, retired := sessiond.NewToken("x")
	held := conn(a, "w", "websocket", "n1", Epoch)
	a2 := next(a, func(n *sessiond.Session) {
		n.PrevTokenHash, n.TokenHash, n.PrevTokenUntil, n.RotatedAt, n.Generation = n.TokenHash, h, Epoch.Add(time.Minute), Epoch.Add(time.Second), 1
		n.RetiredTokens, n.ConnCount = []sessiond.TokenHash{retired}, 1
		n.StateSince, n.Cycle = Epoch.Add(2*time.Second), 3
	})
	if err := st.Update(ctx, sessiond.Change{Session: a2, PutConns: []sessiond.Connection{held}, Events: []sessiond.Event{{Type: sessiond.EventRotated, SessionID: a.ID, Subject: "alice", Version: 2}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutLease(ctx, sessiond.NodeLease{Node: "n1", Until: Epoch.Add(time.Minute), Version: 1}); err != nil {
		t.Fatal(err)
	}
	b, _ := NewSession("alice", Epoch)
	mustCreate(t, st, b)
	b2 := next(b, ended(sessiond.EndRevoked, Epoch.Add(time.Second)))
	if err := st.Update(ctx, sessiond.Change{Session: b2}); err != nil {
		t.Fatal(err)
	}
	c, _ := NewSession("carol", Epoch)
	mustCreate(t, st, c)
	if err := st.Delete(ctx, c.ID, 1); err != nil {
		t.Fatal(err)
	}

	st = reopen(t, st)
	got, err := st.Get(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	SameSession(t, got, a2)
	for _, h := range []sessiond.TokenHash{a.TokenHash, h, retired} {
		if tf := tokenFinder(st); tf != nil {
			if _, err := tf.FindToken(ctx, h); err != nil {
				t.Fatalf("token index not rebuilt: %v", err)
			}
		}
	}
	conns, _ := st.Conns(ctx, a.ID)
	sameConns(t, "connections after reopen", conns, []sessiond.Connection{held})
	if got, _ := st.NodeConns(ctx, "n1", 10); len(got) != 1 {
		t.Fatalf("node index after reopen: %+v", got)
	}
	if all, _ := st.Leases(ctx); len(all) != 1 || all[0].Node != "n1" || all[0].Version != 1 || !all[0].Until.Equal(Epoch.Add(time.Minute)) {
		t.Fatalf("leases after reopen: %+v", all)
	}
	got, _ = st.Get(ctx, b.ID)
	SameSession(t, got, b2)
	_, err = st.Get(ctx, c.ID)
	wantErr(t, err, sessiond.ErrNotFound, "Get(deleted, after reopen)")
	live, _ := st.Live(ctx, "alice")
	if len(live) != 1 || live[0].ID != a.ID {
		t.Fatalf("live index after reopen: %v", ids(live))
	}
	evs, _ := st.Events(ctx, sessiond.Cursor{}, 10)
	checkSeqs(t, evs)
	var types []sessiond.EventType
	var end sessiond.Cursor
	for _, e := range evs {
		types = append(types, e.Type)
		end = end.After(e)
	}
	if want := []sessiond.EventType{sessiond.EventCreated, sessiond.EventRotated, sessiond.EventCreated, sessiond.EventCreated}; !slices.Equal(types, want) {
		t.Fatalf("events after reopen: %v, want %v", types, want)
	}
	if head, _ := st.Head(ctx); head.Behind(end) || end.Behind(head) {
		t.Fatalf("Head after reopen = %v, want %v", head, end)
	}
	// New events continue the sequence.
	d, _ := NewSession("dave", Epoch)
	ev := created(d)
	if _, err := st.Create(ctx, sessiond.Change{Session: d, Events: ev}, sessiond.Limit{}); err != nil || ev[0].Seq != end.Seq(ev[0].Partition)+1 {
		t.Fatalf("create after reopen: %d/%d, %v; want the next Seq after %v", ev[0].Partition, ev[0].Seq, err, end)
	}
	return st
}

func testUniqueDevice(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 50 {
		wg.Go(func() {
			s, _ := NewSession("alice", Epoch)
			s.Device.ID = "glasses-1"
			_, err := st.Create(ctx, sessiond.Change{Session: s, Events: created(s)}, sessiond.Limit{UniqueDevice: true})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, sessiond.ErrExists):
				t.Errorf("Create: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d racing creates for one subject and device succeeded, want 1", wins)
	}
	// Other devices, other subjects, and sessions without the flag are free.
	for _, c := range []struct {
		subject, device string
		unique          bool
	}{{"alice", "glasses-2", true}, {"bob", "glasses-1", true}, {"alice", "glasses-1", false}} {
		s, _ := NewSession(c.subject, Epoch)
		s.Device.ID = c.device
		if _, err := st.Create(ctx, sessiond.Change{Session: s, Events: created(s)}, sessiond.Limit{UniqueDevice: c.unique}); err != nil {
			t.Fatalf("create %+v: %v", c, err)
		}
	}
	// Once the device's sessions end, it may have a new one.
	live, _ := st.Live(ctx, "alice")
	for _, s := range live {
		if s.Device.ID == "glasses-1" {
			if err := st.Update(ctx, sessiond.Change{Session: next(s, ended(sessiond.EndRevoked, Epoch))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	s, _ := NewSession("alice", Epoch)
	s.Device.ID = "glasses-1"
	if _, err := st.Create(ctx, sessiond.Change{Session: s, Events: created(s)}, sessiond.Limit{UniqueDevice: true}); err != nil {
		t.Fatalf("create after the device's sessions ended: %v", err)
	}
}

// conn returns a connection of the session, as the engine would make it.
func conn(s *sessiond.Session, name, kind, node string, at time.Time) sessiond.Connection {
	return sessiond.Connection{ID: fmt.Sprintf("%016s.%s", name, s.ID), Kind: kind, Node: node, ClientIP: "10.1.1.1", UserAgent: "ua/1", ConnectedAt: at, LastHeartbeat: at}
}

func sameConns(t testing.TB, what string, got, want []sessiond.Connection) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d connections %+v, want %d %+v", what, len(got), got, len(want), want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if !g.ConnectedAt.Equal(w.ConnectedAt) || !g.LastHeartbeat.Equal(w.LastHeartbeat) {
			t.Errorf("%s: connection %d times %+v, want %+v", what, i, g, w)
		}
		g.ConnectedAt, g.LastHeartbeat, w.ConnectedAt, w.LastHeartbeat = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if g != w {
			t.Errorf("%s: connection %d = %+v, want %+v", what, i, g, w)
		}
	}
}

func testConnections(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	s, _ := NewSession("alice", Epoch)
	ws := conn(s, "a", "websocket", "n1", Epoch)
	// Created with a connection attached, in one write.
	s.ConnCount = 1
	if _, err := st.Create(ctx, sessiond.Change{Session: s, PutConns: []sessiond.Connection{ws}, Events: created(s)}, sessiond.Limit{}); err != nil {
		t.Fatal(err)
	}
	vnc := conn(s, "b", "vnc", "", Epoch.Add(time.Second))
	withConns := next(s, func(n *sessiond.Session) { n.ConnCount = 2 })
	if err := st.Update(ctx, sessiond.Change{Session: withConns, PutConns: []sessiond.Connection{vnc}}); err != nil {
		t.Fatal(err)
	}
	got, _ := st.Get(ctx, s.ID)
	SameSession(t, got, withConns)
	all, err := st.Conns(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameConns(t, "Conns", all, []sessiond.Connection{ws, vnc})
	if c, err := st.Conn(ctx, vnc.ID); err != nil {
		t.Fatal(err)
	} else {
		sameConns(t, "Conn", []sessiond.Connection{*c}, []sessiond.Connection{vnc})
	}
	_, err = st.Conn(ctx, "zzzzzzzzzzzzzzzz."+s.ID)
	wantErr(t, err, sessiond.ErrNotFound, "Conn(unknown)")
	if none, err := st.Conns(ctx, "no-such-session"); err != nil || none == nil || len(none) != 0 {
		t.Fatalf("Conns(unknown session) = %#v, %v; want empty non-nil", none, err)
	}
	stats, _ := st.Stats(ctx)
	if stats.Connections["websocket"] != 1 || stats.Connections["vnc"] != 1 {
		t.Fatalf("connections by kind: %v", stats.Connections)
	}
	if got, _ := st.NodeConns(ctx, "n1", 10); len(got) != 1 || got[0].ID != ws.ID {
		t.Fatalf("NodeConns(n1) = %+v, want the websocket", got)
	}
	if nodes, _ := st.ConnNodes(ctx); !slices.Equal(nodes, []string{"n1"}) {
		t.Fatalf("ConnNodes = %v, want [n1]", nodes)
	}
	// A connection's record changes on its own (a heartbeat).
	beat := vnc
	beat.LastHeartbeat = Epoch.Add(time.Minute)
	beaten := next(withConns, nil)
	if err := st.Update(ctx, sessiond.Change{Session: beaten, PutConns: []sessiond.Connection{beat}}); err != nil {
		t.Fatal(err)
	}
	all, _ = st.Conns(ctx, s.ID)
	sameConns(t, "Conns after a heartbeat", all, []sessiond.Connection{ws, beat})
	// A refused update changes no connection.
	stale := next(withConns, func(n *sessiond.Session) { n.ConnCount = 1 })
	err = st.Update(ctx, sessiond.Change{Session: stale, DropConns: []string{ws.ID}})
	wantErr(t, err, sessiond.ErrConflict, "Update(stale version) dropping a connection")
	if all, _ = st.Conns(ctx, s.ID); len(all) != 2 {
		t.Fatalf("a refused update dropped a connection: %+v", all)
	}
	// A connection of another session is refused, put or dropped, by
	// Update and by Create, and that session's connection is left as it
	// was.
	other, _ := NewSession("bob", Epoch)
	bobs := conn(other, "x", "vnc", "n2", Epoch)
	other.ConnCount = 1
	if _, err := st.Create(ctx, sessiond.Change{Session: other, PutConns: []sessiond.Connection{bobs}, Events: created(other)}, sessiond.Limit{}); err != nil {
		t.Fatal(err)
	}
	err = st.Update(ctx, sessiond.Change{Session: next(beaten, nil), PutConns: []sessiond.Connection{conn(other, "y", "vnc", "", Epoch)}})
	wantErr(t, err, sessiond.ErrInvalidArgument, "Update putting another session's connection")
	stolen := bobs
	stolen.Node = "n1"
	err = st.Update(ctx, sessiond.Change{Session: next(beaten, nil), PutConns: []sessiond.Connection{stolen}})
	wantErr(t, err, sessiond.ErrInvalidArgument, "Update overwriting another session's connection")
	err = st.Update(ctx, sessiond.Change{Session: next(beaten, nil), DropConns: []string{bobs.ID}})
	wantErr(t, err, sessiond.ErrInvalidArgument, "Update dropping another session's connection")
	err = st.Update(ctx, sessiond.Change{Session: next(beaten, nil), DropConns: []string{"not-a-connection-id"}})
	wantErr(t, err, sessiond.ErrInvalidArgument, "Update dropping a malformed connection id")
	thief, _ := NewSession("mallory", Epoch)
	thief.ConnCount = 1
	_, err = st.Create(ctx, sessiond.Change{Session: thief, PutConns: []sessiond.Connection{stolen}, Events: created(thief)}, sessiond.Limit{})
	wantErr(t, err, sessiond.ErrInvalidArgument, "Create with another session's connection")
	_, err = st.Get(ctx, thief.ID)
	wantErr(t, err, sessiond.ErrNotFound, "Get(a refused create)")
	if c, err := st.Conn(ctx, bobs.ID); err != nil {
		t.Fatalf("another session's connection after refused changes: %v", err)
	} else {
		sameConns(t, "another session's connection after refused changes", []sessiond.Connection{*c}, []sessiond.Connection{bobs})
	}
	if got, _ := st.NodeConns(ctx, "n2", 10); len(got) != 1 || got[0] != bobs {
		t.Fatalf("NodeConns(n2) after refused changes = %+v, want bob's connection", got)
	}
	if got, _ := st.NodeConns(ctx, "n1", 10); len(got) != 1 || got[0].ID != ws.ID {
		t.Fatalf("NodeConns(n1) after refused changes = %+v, want only the websocket", got)
	}
	if got, _ := st.Get(ctx, s.ID); got.Version != beaten.Version {
		t.Fatalf("a refused update changed the session: version %d, want %d", got.Version, beaten.Version)
	}
	if err := st.Update(ctx, sessiond.Change{Session: next(other, ended(sessiond.EndRevoked, Epoch))}); err != nil {
		t.Fatal(err)
	}
	// Detach the websocket: the node holds none any more.
	one := next(beaten, func(n *sessiond.Session) { n.ConnCount = 1 })
	if err := st.Update(ctx, sessiond.Change{Session: one, DropConns: []string{ws.ID}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.NodeConns(ctx, "n1", 10); len(got) != 0 {
		t.Fatalf("NodeConns(n1) after the detach = %+v", got)
	}
	if nodes, _ := st.ConnNodes(ctx); len(nodes) != 0 {
		t.Fatalf("ConnNodes after the detach = %v", nodes)
	}
	got, _ = st.Get(ctx, s.ID)
	SameSession(t, got, one)
	// Leaving the live states drops every connection, in the same step.
	gone := next(one, func(n *sessiond.Session) {
		n.ConnCount, n.State, n.EndReason, n.EndedAt = 0, sessiond.StateEnded, sessiond.EndRevoked, Epoch.Add(time.Hour)
	})
	if err := st.Update(ctx, sessiond.Change{Session: gone}); err != nil {
		t.Fatal(err)
	}
	if all, _ = st.Conns(ctx, s.ID); len(all) != 0 {
		t.Fatalf("an ended session keeps connections %+v", all)
	}
	_, err = st.Conn(ctx, vnc.ID)
	wantErr(t, err, sessiond.ErrNotFound, "Conn of an ended session")
	if stats, _ := st.Stats(ctx); len(stats.Connections) != 0 {
		t.Fatalf("after the end: connections %+v", stats.Connections)
	}
	got, _ = st.Get(ctx, s.ID)
	SameSession(t, got, gone)
}

// testManyConnections attaches many connections to one session and
// detaches them in another order: the store keeps exactly the set.
func testManyConnections(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	s, _ := NewSession("alice", Epoch)
	mustCreate(t, st, s)
	cur := s
	var want []sessiond.Connection
	for i := range 100 {
		c := conn(s, fmt.Sprint("c", i), "websocket", fmt.Sprint("n", i%3), Epoch.Add(time.Duration(i)*time.Millisecond))
		cur = next(cur, func(n *sessiond.Session) { n.ConnCount++ })
		if err := st.Update(ctx, sessiond.Change{Session: cur, PutConns: []sessiond.Connection{c}}); err != nil {
			t.Fatal(err)
		}
		want = append(want, c)
	}
	for i := 0; i < 100; i += 2 { // detach the even ones
		cur = next(cur, func(n *sessiond.Session) { n.ConnCount-- })
		if err := st.Update(ctx, sessiond.Change{Session: cur, DropConns: []string{want[i].ID}}); err != nil {
			t.Fatal(err)
		}
	}
	var odd []sessiond.Connection
	for i := 1; i < 100; i += 2 {
		odd = append(odd, want[i])
	}
	got, _ := st.Conns(ctx, s.ID)
	sameConns(t, "after detaching half", got, odd)
	if g, _ := st.Get(ctx, s.ID); g.ConnCount != 50 {
		t.Fatalf("ConnCount %d, want 50", g.ConnCount)
	}
	n := 0
	for _, node := range []string{"n0", "n1", "n2"} {
		got, _ := st.NodeConns(ctx, node, 1000)
		n += len(got)
	}
	if n != 50 {
		t.Fatalf("NodeConns over the nodes: %d, want 50", n)
	}
	if got, _ := st.NodeConns(ctx, "n1", 5); len(got) != 5 {
		t.Fatalf("NodeConns with limit 5: %d", len(got))
	}
}

// testFindDevice: the subject's live sessions by device id.
func testFindDevice(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	var mine []*sessiond.Session
	for i := range 3 {
		s, _ := NewSession("alice", Epoch.Add(time.Duration(3-i)*time.Second))
		s.Device = sessiond.Device{ID: "glasses"}
		mustCreate(t, st, s)
		mine = append(mine, s)
	}
	phone, _ := NewSession("alice", Epoch)
	phone.Device = sessiond.Device{ID: "phone"}
	mustCreate(t, st, phone)
	bobs, _ := NewSession("bob", Epoch)
	bobs.Device = sessiond.Device{ID: "glasses"}
	mustCreate(t, st, bobs)
	got, err := st.FindDevice(ctx, "alice", "glasses")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{mine[2].ID, mine[1].ID, mine[0].ID}; !slices.Equal(ids(got), want) {
		t.Fatalf("FindDevice = %v, want oldest first %v", ids(got), want)
	}
	if err := st.Update(ctx, sessiond.Change{Session: next(mine[1], ended(sessiond.EndRevoked, Epoch))}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.FindDevice(ctx, "alice", "glasses"); !slices.Equal(ids(got), []string{mine[2].ID, mine[0].ID}) {
		t.Fatalf("FindDevice after an end = %v", ids(got))
	}
	if got, _ := st.FindDevice(ctx, "alice", "watch"); got == nil || len(got) != 0 {
		t.Fatalf("FindDevice(unknown device) = %#v, want empty non-nil", got)
	}
	if got, _ := st.FindDevice(ctx, "carol", "glasses"); got == nil || len(got) != 0 {
		t.Fatalf("FindDevice(unknown subject) = %#v, want empty non-nil", got)
	}
}

// testTokenFamily: a session keeps its token family as written (Get), and
// with a TokenFinder its retired tokens find it until they are dropped.
func testTokenFamily(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	s, _ := NewSession("alice", Epoch)
	mustCreate(t, st, s)
	_, h2 := sessiond.NewToken("x")
	_, h3 := sessiond.NewToken("x")
	r := next(s, func(n *sessiond.Session) {
		n.RetiredTokens = []sessiond.TokenHash{n.TokenHash}
		n.TokenHash, n.PrevTokenHash, n.Generation = h3, h2, 2
	})
	if err := st.Update(ctx, sessiond.Change{Session: r}); err != nil {
		t.Fatal(err)
	}
	tf := tokenFinder(st)
	for _, h := range []sessiond.TokenHash{s.TokenHash, h2, h3} {
		if tf == nil {
			break
		}
		if got, err := tf.FindToken(ctx, h); err != nil || got.ID != s.ID {
			t.Fatalf("FindToken of the family = %v, %v", got, err)
		}
	}
	got, _ := st.Get(ctx, s.ID)
	SameSession(t, got, r)
	dropped := next(r, func(n *sessiond.Session) { n.RetiredTokens = nil })
	if err := st.Update(ctx, sessiond.Change{Session: dropped}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Get(ctx, s.ID); len(got.RetiredTokens) != 0 {
		t.Fatalf("retired tokens after they were dropped: %v", got.RetiredTokens)
	}
	if tf != nil {
		_, err := tf.FindToken(ctx, s.TokenHash)
		wantErr(t, err, sessiond.ErrNotFound, "FindToken(a token dropped from the family)")
	}
}

// testLeases: compare-and-set on the nodes' leases.
func testLeases(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	a := sessiond.NodeLease{Node: "a", Until: Epoch.Add(15 * time.Second), Version: 1}
	if err := st.PutLease(ctx, a); err != nil {
		t.Fatal(err)
	}
	wantErr(t, st.PutLease(ctx, a), sessiond.ErrExists, "PutLease(version 1 again)")
	wantErr(t, st.PutLease(ctx, sessiond.NodeLease{Node: "b", Until: Epoch, Version: 2}), sessiond.ErrNotFound, "PutLease(renew an unknown node)")
	renewed := sessiond.NodeLease{Node: "a", Until: Epoch.Add(20 * time.Second), Version: 2}
	if err := st.PutLease(ctx, renewed); err != nil {
		t.Fatal(err)
	}
	wantErr(t, st.PutLease(ctx, renewed), sessiond.ErrConflict, "PutLease(stale version)")
	claimed := sessiond.NodeLease{Node: "a", Until: Epoch.Add(time.Minute), Dead: true, Version: 3}
	if err := st.PutLease(ctx, claimed); err != nil {
		t.Fatal(err)
	}
	b := sessiond.NodeLease{Node: "b", Until: Epoch, Version: 1}
	if err := st.PutLease(ctx, b); err != nil {
		t.Fatal(err)
	}
	all, err := st.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Node != "a" || !all[0].Dead || all[0].Version != 3 || !all[0].Until.Equal(claimed.Until) || all[1].Node != "b" {
		t.Fatalf("Leases = %+v", all)
	}
	wantErr(t, st.DeleteLease(ctx, "a", 2), sessiond.ErrConflict, "DeleteLease(old version)")
	wantErr(t, st.DeleteLease(ctx, "c", 1), sessiond.ErrNotFound, "DeleteLease(unknown)")
	if err := st.DeleteLease(ctx, "a", 3); err != nil {
		t.Fatal(err)
	}
	if all, _ := st.Leases(ctx); len(all) != 1 || all[0].Node != "b" {
		t.Fatalf("Leases after delete = %+v", all)
	}
}
