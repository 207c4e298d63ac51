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

// Harness tells the conformance suite how to get stores.
type Harness struct {
	// Open returns a new, empty store. The suite closes it.
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
	t.Run("FindToken", func(t *testing.T) { testFindToken(t, open(t)) })
	t.Run("UpdateCAS", func(t *testing.T) { testUpdateCAS(t, open(t)) })
	t.Run("UpdateRace", func(t *testing.T) { testUpdateRace(t, open(t)) })
	t.Run("LiveIndex", func(t *testing.T) { testLiveIndex(t, open(t)) })
	t.Run("LimitReject", func(t *testing.T) { testLimitReject(t, open(t)) })
	t.Run("LimitEvict", func(t *testing.T) { testLimitEvict(t, open(t)) })
	t.Run("UniqueDevice", func(t *testing.T) { testUniqueDevice(t, open(t)) })
	t.Run("Connections", func(t *testing.T) { testConnections(t, open(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, open(t)) })
	t.Run("List", func(t *testing.T) { testList(t, open(t)) })
	t.Run("Stats", func(t *testing.T) { testStats(t, open(t)) })
	t.Run("Events", func(t *testing.T) { testEvents(t, open(t)) })
	t.Run("Isolation", func(t *testing.T) { testIsolation(t, open(t)) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, h.Open(t)) })
	if h.Reopen != nil {
		t.Run("Reopen", func(t *testing.T) {
			s := h.Open(t)
			s = testReopen(t, s, h.Reopen)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Epoch is the time the suite's sessions are created at.
var Epoch = time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)

// NewSession returns a fresh active session of subject with a random token,
// created at the given time, as the engine would make it.
func NewSession(subject string, created time.Time) (*sessiond.Session, string) {
	token, hash := sessiond.NewToken()
	return &sessiond.Session{
		ID: sessiond.NewID(created), Subject: subject, Policy: "default",
		State: sessiond.StateActive, CreatedAt: created, LastActive: created,
		ExpiresAt: created.Add(time.Hour), IdleTimeout: 10 * time.Minute,
		Version: 1, TokenHash: hash,
	}, token
}

func created(s *sessiond.Session) []sessiond.Event {
	return []sessiond.Event{{Type: sessiond.EventCreated, SessionID: s.ID, Subject: s.Subject, Time: s.CreatedAt, State: s.State, Version: s.Version}}
}

func mustCreate(t testing.TB, st sessiond.Store, s *sessiond.Session) {
	t.Helper()
	if _, err := st.Create(context.Background(), s, sessiond.Limit{}, created(s)); err != nil {
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
		{"DisconnectedAt", g.DisconnectedAt, w.DisconnectedAt},
	} {
		if !p.a.Equal(p.b) {
			t.Errorf("session %s: %s = %v, want %v", w.ID, p.name, p.a, p.b)
		}
	}
	g.CreatedAt, g.LastActive, g.ExpiresAt, g.RotatedAt, g.EndedAt, g.PrevTokenUntil, g.DisconnectedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	w.CreatedAt, w.LastActive, w.ExpiresAt, w.RotatedAt, w.EndedAt, w.PrevTokenUntil, w.DisconnectedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if len(g.Conns) != len(w.Conns) {
		t.Fatalf("session %s: %d connections, want %d", w.ID, len(g.Conns), len(w.Conns))
	}
	g.Conns, w.Conns = slices.Clone(g.Conns), slices.Clone(w.Conns)
	for i := range g.Conns {
		if !g.Conns[i].ConnectedAt.Equal(w.Conns[i].ConnectedAt) || !g.Conns[i].LastHeartbeat.Equal(w.Conns[i].LastHeartbeat) {
			t.Errorf("session %s: connection %d times %+v, want %+v", w.ID, i, g.Conns[i], w.Conns[i])
		}
		g.Conns[i].ConnectedAt, g.Conns[i].LastHeartbeat = time.Time{}, time.Time{}
		w.Conns[i].ConnectedAt, w.Conns[i].LastHeartbeat = time.Time{}, time.Time{}
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
	_, err := st.Create(ctx, dup, sessiond.Limit{}, created(dup))
	wantErr(t, err, sessiond.ErrExists, "Create(same id, other subject)")
	if err := st.Update(ctx, next(s, ended(sessiond.EndRevoked, Epoch)), nil); err != nil {
		t.Fatal(err)
	}
	_, err = st.Create(ctx, dup, sessiond.Limit{}, created(dup))
	wantErr(t, err, sessiond.ErrExists, "Create(id of an ended session)")
	if _, err := st.FindToken(ctx, dup.TokenHash); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("a refused create left its token findable: %v", err)
	}

	// Racing creates of one id: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 20 {
		wg.Go(func() {
			c, _ := NewSession(fmt.Sprintf("racer-%d", i), Epoch)
			c.ID = "contested"
			_, err := st.Create(ctx, c, sessiond.Limit{}, created(c))
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

func testFindToken(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	s, _ := NewSession("alice", Epoch)
	mustCreate(t, st, s)
	got, err := st.FindToken(ctx, s.TokenHash)
	if err != nil || got.ID != s.ID {
		t.Fatalf("FindToken(current) = %v, %v", got, err)
	}
	_, err = st.FindToken(ctx, sessiond.TokenHash{1, 2, 3})
	wantErr(t, err, sessiond.ErrNotFound, "FindToken(unknown)")

	// Rotate: both the new and the previous hash find it.
	_, h2 := sessiond.NewToken()
	r1 := next(s, func(n *sessiond.Session) {
		n.PrevTokenHash, n.TokenHash, n.PrevTokenUntil, n.RotatedAt, n.Generation = n.TokenHash, h2, Epoch.Add(time.Minute), Epoch, 1
	})
	if err := st.Update(ctx, r1, nil); err != nil {
		t.Fatal(err)
	}
	for _, h := range []sessiond.TokenHash{s.TokenHash, h2} {
		if got, err := st.FindToken(ctx, h); err != nil || got.Version != 2 {
			t.Fatalf("after rotation FindToken = %v, %v; want version 2", got, err)
		}
	}
	// Rotate again: the first hash is gone.
	_, h3 := sessiond.NewToken()
	r2 := next(r1, func(n *sessiond.Session) { n.PrevTokenHash, n.TokenHash, n.Generation = n.TokenHash, h3, 2 })
	if err := st.Update(ctx, r2, nil); err != nil {
		t.Fatal(err)
	}
	_, err = st.FindToken(ctx, s.TokenHash)
	wantErr(t, err, sessiond.ErrNotFound, "FindToken(token rotated out twice)")
	// Ended sessions are still found by token (the engine reports why).
	if err := st.Update(ctx, next(r2, ended(sessiond.EndRevoked, Epoch)), nil); err != nil {
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
	if err := st.Update(ctx, stale, nil); err != nil {
		t.Fatal(err)
	}
	again := next(s, func(n *sessiond.Session) { n.LastActive = Epoch.Add(2 * time.Second) })
	err := st.Update(ctx, again, []sessiond.Event{{Type: sessiond.EventRotated, SessionID: s.ID}})
	wantErr(t, err, sessiond.ErrConflict, "Update(stale version)")
	got, _ := st.Get(ctx, s.ID)
	SameSession(t, got, stale)
	if evs, _ := st.Events(ctx, 0, 10); len(evs) != 1 {
		t.Fatalf("a refused update recorded events: %+v", evs)
	}
	ghost, _ := NewSession("alice", Epoch)
	ghost.Version = 2
	wantErr(t, st.Update(ctx, ghost, nil), sessiond.ErrNotFound, "Update(unknown)")
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
			err := st.Update(ctx, next(s, nil), []sessiond.Event{{Type: sessiond.EventRotated, SessionID: s.ID}})
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
	if evs, _ := st.Events(ctx, 0, 100); len(evs) != 2 {
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
	if err := st.Update(ctx, next(all[1], ended(sessiond.EndRevoked, Epoch)), nil); err != nil {
		t.Fatal(err)
	}
	ending := next(all[2], func(n *sessiond.Session) { n.State, n.EndReason = sessiond.StateEnding, sessiond.EndEvicted })
	if err := st.Update(ctx, ending, nil); err != nil {
		t.Fatal(err)
	}
	_, h := sessiond.NewToken()
	if err := st.Update(ctx, next(all[3], func(n *sessiond.Session) { n.PrevTokenHash, n.TokenHash = n.TokenHash, h }), nil); err != nil {
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
			_, err := st.Create(ctx, s, sessiond.Limit{Max: 5, Now: Epoch}, created(s))
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
	if err := st.Update(ctx, next(live[0], ended(sessiond.EndRevoked, Epoch)), nil); err != nil {
		t.Fatal(err)
	}
	s, _ := NewSession("alice", Epoch)
	if _, err := st.Create(ctx, s, sessiond.Limit{Max: 5}, created(s)); err != nil {
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
			ev, err := st.Create(ctx, s, sessiond.Limit{Max: 5, EvictOldest: true, Now: Epoch.Add(time.Hour)}, created(s))
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
	evs, _ := st.Events(ctx, 0, 1000)
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
	ev, err := st.Create(ctx, newer, sessiond.Limit{Max: 1, EvictOldest: true, Now: Epoch}, created(newer))
	if err != nil || len(ev) != 1 || ev[0].ID != solo.ID {
		t.Fatalf("evicting create: %v, %v; want the oldest session %s evicted", ids(ev), err, solo.ID)
	}
}

func testDelete(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	s, _ := NewSession("alice", Epoch)
	mustCreate(t, st, s)
	e := next(s, ended(sessiond.EndExpired, Epoch))
	if err := st.Update(ctx, e, nil); err != nil {
		t.Fatal(err)
	}
	wantErr(t, st.Delete(ctx, s.ID, 1), sessiond.ErrConflict, "Delete(old version)")
	wantErr(t, st.Delete(ctx, "no-such", 1), sessiond.ErrNotFound, "Delete(unknown)")
	if err := st.Delete(ctx, s.ID, e.Version); err != nil {
		t.Fatal(err)
	}
	_, err := st.Get(ctx, s.ID)
	wantErr(t, err, sessiond.ErrNotFound, "Get(deleted)")
	_, err = st.FindToken(ctx, s.TokenHash)
	wantErr(t, err, sessiond.ErrNotFound, "FindToken(deleted)")
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
			if err := st.Update(ctx, e, nil); err != nil {
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
	if err := st.Update(ctx, next(b1, ended(sessiond.EndRevoked, Epoch)), nil); err != nil {
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

func testEvents(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	if last, err := st.LastSeq(ctx); err != nil || last != 0 {
		t.Fatalf("LastSeq of an empty store = %d, %v", last, err)
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			s, _ := NewSession(fmt.Sprintf("u%d", i), Epoch)
			evs := created(s)
			if _, err := st.Create(ctx, s, sessiond.Limit{}, evs); err != nil {
				t.Error(err)
				return
			}
			if evs[0].Seq == 0 {
				t.Error("Create did not assign the event's Seq")
			}
			r := next(s, nil)
			ev := []sessiond.Event{{Type: sessiond.EventRotated, SessionID: s.ID, Subject: s.Subject, Version: 2}}
			if err := st.Update(ctx, r, ev); err != nil {
				t.Error(err)
			}
			if ev[0].Seq <= evs[0].Seq {
				t.Errorf("update's event Seq %d not after create's %d", ev[0].Seq, evs[0].Seq)
			}
		})
	}
	wg.Wait()
	all, err := st.Events(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 80 {
		t.Fatalf("got %d events, want 80", len(all))
	}
	perSession := map[string][]sessiond.EventType{}
	for i, e := range all {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has Seq %d: want 1, 2, 3... without gaps", i, e.Seq)
		}
		perSession[e.SessionID] = append(perSession[e.SessionID], e.Type)
	}
	for id, types := range perSession {
		if !slices.Equal(types, []sessiond.EventType{sessiond.EventCreated, sessiond.EventRotated}) {
			t.Fatalf("session %s events out of order: %v", id, types)
		}
	}
	if last, _ := st.LastSeq(ctx); last != 80 {
		t.Fatalf("LastSeq = %d, want 80", last)
	}
	tail, _ := st.Events(ctx, 77, 10)
	if len(tail) != 3 || tail[0].Seq != 78 {
		t.Fatalf("Events(after 77) = %d events from %d", len(tail), tail[0].Seq)
	}
	limited, _ := st.Events(ctx, 10, 5)
	if len(limited) != 5 || limited[0].Seq != 11 || limited[4].Seq != 15 {
		t.Fatalf("Events(after 10, limit 5) wrong: %+v", limited)
	}
	if none, _ := st.Events(ctx, 80, 10); len(none) != 0 {
		t.Fatalf("Events(after last) = %d events", len(none))
	}
	e := all[0]
	if e.Type != sessiond.EventCreated || e.SessionID == "" || e.Subject == "" || !e.Time.Equal(Epoch) || e.State != sessiond.StateActive || e.Version != 1 {
		t.Fatalf("event fields not kept: %+v", e)
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
	_, h := sessiond.NewToken()
	a2 := next(a, func(n *sessiond.Session) {
		n.PrevTokenHash, n.TokenHash, n.PrevTokenUntil, n.RotatedAt, n.Generation = n.TokenHash, h, Epoch.Add(time.Minute), Epoch.Add(time.Second), 1
	})
	if err := st.Update(ctx, a2, []sessiond.Event{{Type: sessiond.EventRotated, SessionID: a.ID, Subject: "alice", Version: 2}}); err != nil {
		t.Fatal(err)
	}
	b, _ := NewSession("alice", Epoch)
	mustCreate(t, st, b)
	b2 := next(b, ended(sessiond.EndRevoked, Epoch.Add(time.Second)))
	if err := st.Update(ctx, b2, nil); err != nil {
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
	for _, h := range []sessiond.TokenHash{a.TokenHash, h} {
		if _, err := st.FindToken(ctx, h); err != nil {
			t.Fatalf("token index not rebuilt: %v", err)
		}
	}
	got, _ = st.Get(ctx, b.ID)
	SameSession(t, got, b2)
	_, err = st.Get(ctx, c.ID)
	wantErr(t, err, sessiond.ErrNotFound, "Get(deleted, after reopen)")
	live, _ := st.Live(ctx, "alice")
	if len(live) != 1 || live[0].ID != a.ID {
		t.Fatalf("live index after reopen: %v", ids(live))
	}
	evs, _ := st.Events(ctx, 0, 10)
	var types []sessiond.EventType
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d after reopen has Seq %d", i, e.Seq)
		}
		types = append(types, e.Type)
	}
	if want := []sessiond.EventType{sessiond.EventCreated, sessiond.EventRotated, sessiond.EventCreated, sessiond.EventCreated}; !slices.Equal(types, want) {
		t.Fatalf("events after reopen: %v, want %v", types, want)
	}
	if last, _ := st.LastSeq(ctx); last != 4 {
		t.Fatalf("LastSeq after reopen = %d, want 4", last)
	}
	// New events continue the sequence.
	d, _ := NewSession("dave", Epoch)
	ev := created(d)
	if _, err := st.Create(ctx, d, sessiond.Limit{}, ev); err != nil || ev[0].Seq != 5 {
		t.Fatalf("create after reopen: seq %d, %v; want 5", ev[0].Seq, err)
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
			_, err := st.Create(ctx, s, sessiond.Limit{UniqueDevice: true}, created(s))
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
		if _, err := st.Create(ctx, s, sessiond.Limit{UniqueDevice: c.unique}, created(s)); err != nil {
			t.Fatalf("create %+v: %v", c, err)
		}
	}
	// Once the device's sessions end, it may have a new one.
	live, _ := st.Live(ctx, "alice")
	for _, s := range live {
		if s.Device.ID == "glasses-1" {
			if err := st.Update(ctx, next(s, ended(sessiond.EndRevoked, Epoch)), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	s, _ := NewSession("alice", Epoch)
	s.Device.ID = "glasses-1"
	if _, err := st.Create(ctx, s, sessiond.Limit{UniqueDevice: true}, created(s)); err != nil {
		t.Fatalf("create after the device's sessions ended: %v", err)
	}
}

func testConnections(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	s, _ := NewSession("alice", Epoch)
	mustCreate(t, st, s)
	withConns := next(s, func(n *sessiond.Session) {
		n.Conns = []sessiond.Connection{
			{ID: "a." + s.ID, Kind: "websocket", Node: "n1", ConnectedAt: Epoch, LastHeartbeat: Epoch},
			{ID: "b." + s.ID, Kind: "vnc", ClientIP: "10.1.1.1", UserAgent: "vnc/1", ConnectedAt: Epoch, LastHeartbeat: Epoch.Add(time.Second)},
		}
	})
	if err := st.Update(ctx, withConns, nil); err != nil {
		t.Fatal(err)
	}
	got, _ := st.Get(ctx, s.ID)
	SameSession(t, got, withConns)
	stats, _ := st.Stats(ctx)
	if stats.Connections["websocket"] != 1 || stats.Connections["vnc"] != 1 {
		t.Fatalf("connections by kind: %v", stats.Connections)
	}
	disc := next(withConns, func(n *sessiond.Session) {
		n.Conns, n.State, n.DisconnectedAt = nil, sessiond.StateDisconnected, Epoch.Add(time.Minute)
	})
	if err := st.Update(ctx, disc, nil); err != nil {
		t.Fatal(err)
	}
	got, _ = st.Get(ctx, s.ID)
	SameSession(t, got, disc)
	if live, _ := st.Live(ctx, "alice"); len(live) != 1 {
		t.Fatal("a disconnected session is live")
	}
	if stats, _ := st.Stats(ctx); len(stats.Connections) != 0 || stats.ByState[sessiond.StateDisconnected] != 1 {
		t.Fatalf("after detaching: %+v", stats)
	}
}
