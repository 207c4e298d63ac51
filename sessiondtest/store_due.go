package sessiondtest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// The deadline index (Store.ClaimDue, Reschedule, Change.Due and ConnDue).

const hold = 5 * time.Second

// claim claims what is due at now and returns the ids, sorted, and the
// earliest entry left.
func claim(t testing.TB, st sessiond.Store, now time.Time) ([]string, time.Time) {
	t.Helper()
	due, next, err := st.ClaimDue(context.Background(), now, hold, 1000)
	if err != nil {
		t.Fatalf("ClaimDue: %v", err)
	}
	var out []string
	for _, d := range due {
		out = append(out, d.ID)
	}
	slices.Sort(out)
	return out, next
}

func wantClaim(t testing.TB, st sessiond.Store, now time.Time, want ...string) time.Time {
	t.Helper()
	got, next := claim(t, st, now)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("ClaimDue at %v: %v, want %v", now.Sub(Epoch), got, want)
	}
	return next
}

func wantDue(t testing.TB, st sessiond.Store, n int) {
	t.Helper()
	stats, err := st.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if stats.Due != n {
		t.Fatalf("Stats.Due = %d, want %d", stats.Due, n)
	}
}

func testDueIndex(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	s, _ := NewSession("alice", Epoch)
	vnc := conn(s, "v1", "vnc", "", Epoch)
	ws := conn(s, "w1", sessiond.KindWebSocket, "n1", Epoch)
	at := Epoch.Add(time.Minute)
	connAt := Epoch.Add(30 * time.Second)
	if _, err := st.Create(ctx, sessiond.Change{
		Session: s, PutConns: []sessiond.Connection{vnc, ws}, Events: created(s),
		Due: at, ConnDue: []sessiond.Due{{ID: vnc.ID, At: connAt}},
	}, sessiond.Limit{}); err != nil {
		t.Fatal(err)
	}
	wantDue(t, st, 2)
	if next := wantClaim(t, st, Epoch); !next.Equal(connAt) {
		t.Fatalf("nothing due at creation, but the earliest entry is at %v, want the connection's %v", next, connAt)
	}
	// Due exactly at its deadline, not a microsecond before.
	wantClaim(t, st, connAt.Add(-time.Microsecond))
	wantClaim(t, st, connAt, vnc.ID)
	// Claimed: nobody else gets it until the hold ends; then it is back.
	if next := wantClaim(t, st, connAt); !next.Equal(connAt.Add(hold)) {
		t.Fatalf("after a claim the earliest entry is at %v, want the claim's end %v", next, connAt.Add(hold))
	}
	wantClaim(t, st, connAt.Add(hold), vnc.ID)
	// A session's entry comes with the session as stored.
	due, _, err := st.ClaimDue(ctx, at, hold, 1000)
	i := slices.IndexFunc(due, func(d sessiond.Due) bool { return d.ID == s.ID })
	if err != nil || i < 0 || due[i].Session == nil || due[i].Session.Version != s.Version || due[i].Session.ConnCount != 2 {
		t.Fatalf("ClaimDue at the session's deadline = %+v, %v; want its entry with the session (version %d, 2 connections)", due, err, s.Version)
	}
	if j := slices.IndexFunc(due, func(d sessiond.Due) bool { return d.ID == vnc.ID }); j < 0 || due[j].Session != nil {
		t.Fatalf("ClaimDue at the session's deadline = %+v; want the connection's entry too, without a session", due)
	}

	// A write moves the entries it names and keeps the others.
	s2 := next(s, func(n *sessiond.Session) { n.LastActive = Epoch.Add(40 * time.Second) })
	later := Epoch.Add(2 * time.Minute)
	beat := vnc
	beat.LastHeartbeat = Epoch.Add(40 * time.Second)
	if err := st.Update(ctx, sessiond.Change{Session: s2, PutConns: []sessiond.Connection{beat}, Due: later, ConnDue: []sessiond.Due{{ID: vnc.ID, At: Epoch.Add(100 * time.Second)}}}); err != nil {
		t.Fatal(err)
	}
	wantClaim(t, st, at)
	wantClaim(t, st, Epoch.Add(100*time.Second), vnc.ID)

	// Reschedule applies at the session's version only, and to
	// connections it has.
	if err := st.Reschedule(ctx, sessiond.Due{ID: s.ID, At: Epoch}, s.Version); err != nil {
		t.Fatal(err)
	}
	wantClaim(t, st, Epoch.Add(100*time.Second)) // still at later
	if err := st.Reschedule(ctx, sessiond.Due{ID: s.ID, At: Epoch.Add(90 * time.Second)}, s2.Version); err != nil {
		t.Fatal(err)
	}
	wantClaim(t, st, Epoch.Add(90*time.Second), s.ID)
	if err := st.Reschedule(ctx, sessiond.Due{ID: conn(s, "nope", "vnc", "", Epoch).ID, At: Epoch}, s2.Version); err != nil {
		t.Fatal(err)
	}
	wantDue(t, st, 2)
	if err := st.Reschedule(ctx, sessiond.Due{ID: s.ID}, s2.Version); err != nil { // zero: none
		t.Fatal(err)
	}
	wantDue(t, st, 1)
	if err := st.Reschedule(ctx, sessiond.Due{ID: s.ID, At: later}, s2.Version); err != nil {
		t.Fatal(err)
	}

	// A dropped connection loses its entry; a zero Due removes the session's.
	s3 := next(s2, nil)
	if err := st.Update(ctx, sessiond.Change{Session: s3, DropConns: []string{vnc.ID}}); err != nil {
		t.Fatal(err)
	}
	wantDue(t, st, 0)
	wantClaim(t, st, Epoch.Add(time.Hour))

	// A session that leaves the live states keeps the deadline its write
	// gives and loses its connections' entries; a deleted one loses all.
	b, _ := NewSession("bob", Epoch)
	bc := conn(b, "h1", "http", "", Epoch)
	if _, err := st.Create(ctx, sessiond.Change{Session: b, PutConns: []sessiond.Connection{bc}, Events: created(b), Due: at, ConnDue: []sessiond.Due{{ID: bc.ID, At: connAt}}}, sessiond.Limit{}); err != nil {
		t.Fatal(err)
	}
	b2 := next(b, ended(sessiond.EndRevoked, Epoch))
	purge := Epoch.Add(24 * time.Hour)
	if err := st.Update(ctx, sessiond.Change{Session: b2, Due: purge}); err != nil {
		t.Fatal(err)
	}
	wantDue(t, st, 1)
	wantClaim(t, st, purge, b.ID)
	if err := st.Delete(ctx, b.ID, b2.Version); err != nil {
		t.Fatal(err)
	}
	wantDue(t, st, 0)
	wantClaim(t, st, purge.Add(time.Hour))
}

func testDueEvicted(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	old, _ := NewSession("alice", Epoch)
	if _, err := st.Create(ctx, sessiond.Change{Session: old, Events: created(old), Due: old.ExpiresAt}, sessiond.Limit{}); err != nil {
		t.Fatal(err)
	}
	s, _ := NewSession("alice", Epoch.Add(time.Second))
	endBy := Epoch.Add(time.Minute)
	ev, err := st.Create(ctx, sessiond.Change{Session: s, Events: created(s), Due: s.ExpiresAt},
		sessiond.Limit{Max: 1, EvictOldest: true, Now: Epoch.Add(time.Second), EvictedDue: endBy})
	if err != nil || len(ev) != 1 {
		t.Fatalf("evicting create: %v, %v", ids(ev), err)
	}
	wantClaim(t, st, endBy, old.ID)
}

// testDueClaimRace: claimers racing over one index get each due entry
// once, in 20 rounds.
func testDueClaimRace(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	var all []string
	for i := range 120 {
		s, _ := NewSession(fmt.Sprintf("user-%d", i%7), Epoch)
		if _, err := st.Create(ctx, sessiond.Change{Session: s, Events: created(s), Due: Epoch}, sessiond.Limit{}); err != nil {
			t.Fatal(err)
		}
		all = append(all, s.ID)
	}
	slices.Sort(all)
	for round := range 20 {
		now := Epoch.Add(time.Duration(round) * hold)
		var mu sync.Mutex
		var got []string
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				for {
					due, _, err := st.ClaimDue(ctx, now, hold, 7)
					if err != nil {
						t.Errorf("ClaimDue: %v", err)
						return
					}
					if len(due) == 0 {
						return
					}
					mu.Lock()
					for _, d := range due {
						got = append(got, d.ID)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		slices.Sort(got)
		if !slices.Equal(got, all) {
			t.Fatalf("round %d: 6 racing claimers got %d entries (%d distinct), want each of %d once", round, len(got), len(slices.Compact(slices.Clone(got))), len(all))
		}
	}
}
