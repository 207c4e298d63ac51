package sessiondtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessiond/sessiond"
)

// sleepy is a workspace policy that hibernates 3s after its last activity
// or connection.
func sleepy() sessiond.Policy {
	return sessiond.Policy{
		Name: "sleepy", TTL: 8 * time.Hour, IdleTimeout: time.Hour, HibernateAfter: 3 * time.Second,
		WakeTimeout: 10 * time.Second, HeartbeatInterval: time.Second, HeartbeatTimeout: 3 * time.Second,
	}
}

// fakeRuntime is a sessiond.Runtime that records its calls. fail makes an
// action fail; hold makes an action wait for release (or its context).
type fakeRuntime struct {
	mu      sync.Mutex
	calls   []sessiond.RuntimeCall
	at      []time.Time
	fail    map[sessiond.RuntimeAction]error
	hold    map[sessiond.RuntimeAction]chan struct{}
	started chan sessiond.RuntimeCall // if set, told of each call as it starts
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{fail: map[sessiond.RuntimeAction]error{}, hold: map[sessiond.RuntimeAction]chan struct{}{}}
}

func (r *fakeRuntime) call(ctx context.Context, c sessiond.RuntimeCall) error {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.at = append(r.at, time.Now())
	err, hold, started := r.fail[c.Action], r.hold[c.Action], r.started
	r.mu.Unlock()
	if started != nil {
		started <- c
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

func (r *fakeRuntime) set(a sessiond.RuntimeAction, fail error, hold chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail[a], r.hold[a] = fail, hold
}

// keys returns the idempotency keys of the calls so far, in order.
func (r *fakeRuntime) keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.calls {
		out = append(out, c.Key)
	}
	return out
}

func (r *fakeRuntime) last() (sessiond.RuntimeCall, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[len(r.calls)-1], r.at[len(r.at)-1]
}

func sleepyEnv(t *testing.T, h Harness, rt *fakeRuntime, cfg sessiond.Config) *env {
	t.Helper()
	cfg.Policies = []sessiond.Policy{sleepy(), web()}
	cfg.Runtime = rt.call
	if cfg.Node == "" {
		cfg.Node = "node-a"
	}
	return start(t, h, cfg)
}

func (e *env) createSleepy(subject string) *sessiond.Created {
	e.t.Helper()
	c, err := e.m.Create(e.t.Context(), sessiond.CreateRequest{Subject: subject, Policy: "sleepy"})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) connectKind(id, kind string) *sessiond.Connected {
	e.t.Helper()
	c, err := e.m.ConnectTo(e.t.Context(), id, sessiond.ConnectRequest{Subject: "-", Kind: kind})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// A session with no connection hibernates hibernate_after after it was
// last active, through its runtime; a connection wakes it; the next
// hibernation is another cycle, with other idempotency keys.
func testHibernateAndWakeCycles(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		rt := newFakeRuntime()
		e := sleepyEnv(t, h, rt, sessiond.Config{})
		c := e.createSleepy("alice")
		id := c.Session.ID
		time.Sleep(3 * time.Second)
		synctest.Wait()
		s := e.session(id)
		if s.State != sessiond.StateHibernated || s.Cycle != 1 || !s.StateSince.Equal(c.Session.CreatedAt.Add(3*time.Second)) {
			t.Fatalf("3s after create: %v (cycle %d) since %v, want hibernated since +3s", s.State, s.Cycle, s.StateSince.Sub(c.Session.CreatedAt))
		}
		call, at := rt.last()
		if call.Action != sessiond.RuntimeHibernate || call.Key != id+".1.hibernate" || !at.Equal(c.Session.CreatedAt.Add(3*time.Second)) {
			t.Fatalf("runtime call %s %q at +%v", call.Action, call.Key, at.Sub(c.Session.CreatedAt))
		}

		// A validation triggers nothing.
		v, err := e.validate(c.Token)
		if err != nil || v.Session.State != sessiond.StateHibernated {
			t.Fatalf("validating a hibernated session: %v, %v", v, err)
		}
		if got := e.session(id); got.Version != s.Version {
			t.Fatal("validating a hibernated session wrote it")
		}

		// A connection wakes it.
		conn := e.connectKind(id, "vnc")
		if conn.Session.State != sessiond.StateWaking {
			t.Fatalf("connect to a hibernated session: state %v, want waking", conn.Session.State)
		}
		awake, err := e.m.AwaitAwake(t.Context(), conn.Session)
		if err != nil || awake.State != sessiond.StateActive || awake.ConnCount != 1 {
			t.Fatalf("AwaitAwake: %+v, %v", awake, err)
		}
		if call, _ := rt.last(); call.Action != sessiond.RuntimeWake || call.Key != id+".1.wake" {
			t.Fatalf("wake call %s %q", call.Action, call.Key)
		}
		// Connected, it stays awake for ten times hibernate_after.
		for range 10 {
			time.Sleep(2900 * time.Millisecond)
			if _, err := e.m.Heartbeat(t.Context(), conn.Conn.ID); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if s := e.session(id); s.State != sessiond.StateActive {
			t.Fatalf("a connected session went %v", s.State)
		}
		if err := e.m.RemoveConnection(t.Context(), conn.Conn.ID); err != nil {
			t.Fatal(err)
		}
		left := time.Now()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if s := e.session(id); s.State != sessiond.StateHibernated || s.Cycle != 2 || !s.StateSince.Equal(left.Add(3*time.Second)) {
			t.Fatalf("3s after the last connection left: %v cycle %d at +%v", s.State, s.Cycle, s.StateSince.Sub(left))
		}
		want := []string{id + ".1.hibernate", id + ".1.wake", id + ".2.hibernate"}
		if got := rt.keys(); !slices.Equal(got, want) {
			t.Fatalf("runtime calls %q, want %q", got, want)
		}
		wantEvents := "created hibernating hibernated waking connected woke connection_closed/removed hibernating hibernated"
		if got := strings.Join(e.eventsOf(id), " "); got != wantEvents {
			t.Fatalf("events %s\nwant   %s", got, wantEvents)
		}

		// By hand: wake, then hibernate.
		s, err = e.m.Wake(t.Context(), id)
		if err != nil || s.State != sessiond.StateActive {
			t.Fatalf("Wake: %v, %v", s, err)
		}
		s, err = e.m.Hibernate(t.Context(), id)
		if err != nil || s.State != sessiond.StateHibernated || s.Cycle != 3 {
			t.Fatalf("Hibernate: %v, %v", s, err)
		}
		// A session with a connection is not hibernated by hand.
		conn = e.connectKind(id, "vnc")
		if _, err := e.m.AwaitAwake(t.Context(), conn.Session); err != nil {
			t.Fatal(err)
		}
		_, err = e.m.Hibernate(t.Context(), id)
		wantCode(t, err, sessiond.CodeInvalidState)
	})
}

// A transition that begins right as the one before it is recorded gets
// its own runtime call at once: it does not wait for a takeover because
// the call before was still finishing. Raced many times: hibernate and
// wake by hand back to back, then a connect waiting for a hibernation
// that its end lets go.
func testBackToBackTransitions(t *testing.T, h Harness) {
	const cycles = 100
	synctest.Test(t, func(t *testing.T) {
		rt := newFakeRuntime()
		e := sleepyEnv(t, h, rt, sessiond.Config{})
		c := e.createSleepy("alice")
		id := c.Session.ID
		start := time.Now()
		var want []string
		for i := 1; i <= cycles; i++ {
			s, err := e.m.Hibernate(t.Context(), id)
			if err != nil || s.State != sessiond.StateHibernated || s.Cycle != uint64(i) {
				t.Fatalf("cycle %d: Hibernate: %v, %v", i, s, err)
			}
			if s, err = e.m.Wake(t.Context(), id); err != nil || s.State != sessiond.StateActive {
				t.Fatalf("cycle %d: Wake: %v, %v", i, s, err)
			}
			want = append(want, fmt.Sprintf("%s.%d.hibernate", id, i), fmt.Sprintf("%s.%d.wake", id, i))
		}
		if waited := time.Since(start); waited != 0 {
			t.Fatalf("%d cycles with a runtime that answers at once took %v: a call waited for its takeover", cycles, waited)
		}
		if got := rt.keys(); !slices.Equal(got, want) {
			t.Fatalf("runtime calls %q, want %q", got, want)
		}

		// A connect that waits for a hibernation wakes the session the
		// moment the hibernation is recorded.
		for i := cycles + 1; i <= 2*cycles; i++ {
			release := make(chan struct{})
			started := make(chan sessiond.RuntimeCall, 2)
			rt.mu.Lock()
			rt.started = started
			rt.mu.Unlock()
			rt.set(sessiond.RuntimeHibernate, nil, release)
			done := make(chan error, 1)
			go func() {
				_, err := e.m.Hibernate(context.Background(), id)
				done <- err
			}()
			<-started
			got := make(chan *sessiond.Session, 1)
			go func() {
				cn, err := e.m.Connect(context.Background(), sessiond.ConnectRequest{Subject: "alice", Token: c.Token, Kind: "vnc"})
				if err != nil {
					t.Errorf("cycle %d: Connect: %v", i, err)
					got <- nil
					return
				}
				s, err := e.m.AwaitAwake(context.Background(), cn.Session)
				if err != nil {
					t.Errorf("cycle %d: AwaitAwake: %v", i, err)
				}
				if err := e.m.RemoveConnection(context.Background(), cn.Conn.ID); err != nil {
					t.Errorf("cycle %d: %v", i, err)
				}
				got <- s
			}()
			synctest.Wait() // the connect waits for the hibernation
			rt.set(sessiond.RuntimeHibernate, nil, nil)
			close(release)
			if err := <-done; err != nil {
				t.Fatalf("cycle %d: Hibernate: %v", i, err)
			}
			if s := <-got; s == nil || s.State != sessiond.StateActive {
				t.Fatalf("cycle %d: the connect woke %v", i, s)
			}
			<-started // the wake's call
		}
		if waited := time.Since(start); waited != 0 {
			t.Fatalf("connects waiting for hibernations took %v: a wake waited for its takeover", waited)
		}
	})
}

// A runtime that fails, or does not answer within wake_timeout, fails the
// transition into a documented state: a failed hibernate leaves the
// session active (it tries again hibernate_after later), a failed wake
// leaves it hibernated, its waiting connections detached.
func testRuntimeFailures(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		rt := newFakeRuntime()
		e := sleepyEnv(t, h, rt, sessiond.Config{})
		rt.set(sessiond.RuntimeHibernate, errors.New("the hypervisor is down"), nil)
		c := e.createSleepy("alice")
		id := c.Session.ID
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if s := e.session(id); s.State != sessiond.StateActive {
			t.Fatalf("after a failed hibernate: %v, want active", s.State)
		}
		rt.set(sessiond.RuntimeHibernate, nil, nil)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if s := e.session(id); s.State != sessiond.StateHibernated || s.Cycle != 2 {
			t.Fatalf("3s after the failed hibernate: %v cycle %d, want hibernated cycle 2", s.State, s.Cycle)
		}

		// A wake that hangs past wake_timeout (10s).
		hang := make(chan struct{})
		defer close(hang)
		rt.set(sessiond.RuntimeWake, nil, hang)
		began := time.Now()
		conn := e.connectKind(id, "vnc")
		_, err := e.m.AwaitAwake(t.Context(), conn.Session)
		wantCode(t, err, sessiond.CodeRuntimeFailed)
		if waited := time.Since(began); waited != 10*time.Second {
			t.Fatalf("a hung wake failed after %v, want the wake_timeout, 10s", waited)
		}
		s := e.session(id)
		if s.State != sessiond.StateHibernated || s.ConnCount != 0 || len(e.conns(id)) != 0 {
			t.Fatalf("after a failed wake: %v with %d connections, want hibernated with none", s.State, s.ConnCount)
		}
		_, err = e.m.Heartbeat(t.Context(), conn.Conn.ID)
		wantCode(t, err, sessiond.CodeConnectionNotFound)

		// A wake the runtime refuses.
		rt.set(sessiond.RuntimeWake, errors.New("no capacity"), nil)
		_, err = e.m.Wake(t.Context(), id)
		wantCode(t, err, sessiond.CodeRuntimeFailed)
		// And one a connection waits for (a WebSocket: its edge times it,
		// so it waits out the wake): it is detached, closed as wake_failed.
		waiting := e.connectKind(id, sessiond.KindWebSocket)
		_, err = e.m.AwaitAwake(t.Context(), waiting.Session)
		wantCode(t, err, sessiond.CodeRuntimeFailed)
		if s := e.session(id); s.State != sessiond.StateHibernated || s.ConnCount != 0 {
			t.Fatalf("after a failed wake a connection waited for: %v with %d connections", s.State, s.ConnCount)
		}
		rt.set(sessiond.RuntimeWake, nil, nil)
		if s, err := e.m.Wake(t.Context(), id); err != nil || s.State != sessiond.StateActive {
			t.Fatalf("a wake after two failed: %v, %v", s, err)
		}
		got := strings.Join(e.eventsOf(id), " ")
		// The connection that waited out the hung wake stopped its
		// heartbeats (3s) before the wake_timeout (10s).
		want := "created hibernating hibernate_failed hibernating hibernated waking connected connection_closed/heartbeat_timeout wake_failed " +
			"waking wake_failed waking connected wake_failed connection_closed/wake_failed waking woke"
		if got != want {
			t.Fatalf("events %s\nwant   %s", got, want)
		}
		// The same cycle's wake calls carry one key.
		keys := rt.keys()
		if n := len(keys); keys[n-1] != id+".2.wake" || keys[n-2] != keys[n-1] || keys[n-3] != keys[n-1] {
			t.Fatalf("wake keys %q", keys)
		}
	})
}

// A connection that arrives while its session is hibernating waits for the
// hibernation to finish, then wakes it: no wake is lost and none doubled.
func testConnectDuringHibernating(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		rt := newFakeRuntime()
		e := sleepyEnv(t, h, rt, sessiond.Config{})
		slow := make(chan struct{})
		rt.set(sessiond.RuntimeHibernate, nil, slow)
		c := e.createSleepy("alice")
		id := c.Session.ID
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if s := e.session(id); s.State != sessiond.StateHibernating {
			t.Fatalf("test is broken: %v, want hibernating", s.State)
		}
		var conns [3]*sessiond.Connected
		var wg sync.WaitGroup
		for i := range conns {
			wg.Go(func() {
				c, err := e.m.Connect(context.Background(), sessiond.ConnectRequest{Subject: "alice", Token: c.Token, Kind: "vnc"})
				if err != nil {
					t.Error(err)
					return
				}
				conns[i] = c
			})
		}
		time.Sleep(2 * time.Second) // the hibernation takes 2s
		synctest.Wait()
		for _, c := range conns {
			if c != nil {
				t.Fatal("a connect returned while the session was hibernating")
			}
		}
		close(slow)
		wg.Wait()
		for _, c := range conns {
			if c == nil {
				t.FailNow()
			}
			if s, err := e.m.AwaitAwake(t.Context(), c.Session); err != nil || s.State != sessiond.StateActive {
				t.Fatalf("AwaitAwake: %v, %v", s, err)
			}
		}
		want := []string{id + ".1.hibernate", id + ".1.wake"}
		if got := rt.keys(); !slices.Equal(got, want) {
			t.Fatalf("runtime calls %q, want %q", got, want)
		}
		count := map[string]int{}
		for _, ev := range e.eventsOf(id) {
			count[ev]++
		}
		wantCount := map[string]int{"created": 1, "hibernating": 1, "hibernated": 1, "waking": 1, "connected": 3, "woke": 1}
		if fmt.Sprint(count) != fmt.Sprint(wantCount) {
			t.Fatalf("events %v, want %v", count, wantCount)
		}
	})
}

// The ttl keeps running while a session sleeps: it ends, and its runtime
// is told to dispose of it.
func testTTLRunsWhileHibernated(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		// Minutes rather than hours: on a shared store every few seconds
		// of the bubble's time cost real round trips (lease renewals).
		rt := newFakeRuntime()
		p := sleepy()
		p.TTL, p.IdleTimeout = 10*time.Minute, 2*time.Minute
		e := start(t, h, sessiond.Config{Policies: []sessiond.Policy{p}, Runtime: rt.call, Node: "node-a"})
		c := e.create("alice")
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		s := e.session(c.Session.ID)
		if s.State != sessiond.StateEnded || s.EndReason != sessiond.EndIdle || !s.EndedAt.Equal(c.Session.CreatedAt.Add(2*time.Minute)) {
			t.Fatalf("a hibernated session after its idle timeout: %v/%v at +%v", s.State, s.EndReason, s.EndedAt.Sub(c.Session.CreatedAt))
		}
		if call, _ := rt.last(); call.Action != sessiond.RuntimeDispose || call.Key != c.Session.ID+".1.dispose" {
			t.Fatalf("last runtime call %s %q, want dispose", call.Action, call.Key)
		}
		// Without an idle timeout, the ttl ends it.
		p.Name, p.IdleTimeout = "long", 0
		e2 := start(t, h, sessiond.Config{Policies: []sessiond.Policy{p}, Runtime: rt.call, Node: "node-b"})
		c = e2.create("bob")
		time.Sleep(11 * time.Minute)
		synctest.Wait()
		if s := e2.session(c.Session.ID); s.State != sessiond.StateEnded || s.EndReason != sessiond.EndExpired ||
			!s.EndedAt.Equal(c.Session.CreatedAt.Add(10*time.Minute)) {
			t.Fatalf("a hibernated session past its ttl: %v/%v at +%v", s.State, s.EndReason, s.EndedAt.Sub(c.Session.CreatedAt))
		}
	})
}

// Two Managers on one store: each session hibernates once and wakes once
// per cycle, and the runtime sees each transition once.
func testHibernationOnceAcrossEngines(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		rt := newFakeRuntime()
		a := sleepyEnv(t, h, rt, sessiond.Config{})
		b := sleepyEnv(t, h, rt, sessiond.Config{Store: a.store.Store, Node: "node-b"})
		const n = 20
		ids := make([]string, n)
		for i := range ids {
			e := a
			if i%2 == 1 {
				e = b
			}
			ids[i] = e.createSleepy(fmt.Sprint("user-", i)).Session.ID
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		// Both engines wake every session at once.
		var wg sync.WaitGroup
		for _, id := range ids {
			for _, e := range []*env{a, b} {
				wg.Go(func() {
					if _, err := e.m.Wake(context.Background(), id); err != nil {
						t.Error(err)
					}
				})
			}
		}
		wg.Wait()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		count := map[string]int{}
		for _, k := range rt.keys() {
			count[k]++
		}
		for _, id := range ids {
			for _, k := range []string{".1.hibernate", ".1.wake", ".2.hibernate"} {
				if count[id+k] != 1 {
					t.Fatalf("session %s: runtime call %s made %d times", id, k, count[id+k])
				}
			}
			if s := a.session(id); s.State != sessiond.StateHibernated || s.Cycle != 2 {
				t.Fatalf("session %s: %v cycle %d", id, s.State, s.Cycle)
			}
		}
		if len(count) != 3*n {
			t.Fatalf("%d distinct runtime calls, want %d", len(count), 3*n)
		}
	})
}

// A node that dies in the middle of a hibernate leaves it to another,
// which calls the runtime again with the same idempotency key once the
// transition outlived its wake_timeout.
func testARuntimeCallOutlivesItsNode(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		rtA, rtB := newFakeRuntime(), newFakeRuntime()
		hang := make(chan struct{})
		defer close(hang)
		rtA.set(sessiond.RuntimeHibernate, nil, hang)
		a := sleepyEnv(t, h, rtA, sessiond.Config{})
		c := a.createSleepy("alice")
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if keys := rtA.keys(); len(keys) != 1 {
			t.Fatalf("test is broken: node-a called %q", keys)
		}
		began := time.Now()
		b := sleepyEnv(t, h, rtB, sessiond.Config{Store: a.store.Store, Node: "node-b"})
		a.stop() // dies holding the call
		time.Sleep(20 * time.Second)
		synctest.Wait()
		s := b.session(c.Session.ID)
		if s.State != sessiond.StateHibernated {
			t.Fatalf("%v after node-a died hibernating it, want hibernated by node-b", s.State)
		}
		call, at := rtB.last()
		if call.Key != rtA.keys()[0] {
			t.Fatalf("node-b called %q, node-a %q: the same transition needs the same key", call.Key, rtA.keys()[0])
		}
		if d := at.Sub(began); d > 16*time.Second {
			t.Fatalf("node-b took the call over %v after node-a died, want the wake_timeout (10s) plus 5s at most", d)
		}
	})
}

// Live connections keep a workspace awake however long they stay; one
// whose heartbeats stop is lost, and the workspace hibernates
// hibernate_after later.
func testHeartbeatsKeepAWorkspaceAwake(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		rt := newFakeRuntime()
		e := sleepyEnv(t, h, rt, sessiond.Config{})
		c := e.createSleepy("alice")
		conn := e.connectKind(c.Session.ID, "http")
		for range 12 { // 9s of heartbeats, three times hibernate_after
			time.Sleep(750 * time.Millisecond)
			if _, err := e.m.Heartbeat(t.Context(), conn.Conn.ID); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if s := e.session(c.Session.ID); s.State != sessiond.StateActive || len(rt.keys()) != 0 {
			t.Fatalf("a heartbeating workspace: %v, runtime calls %q", s.State, rt.keys())
		}
		last := time.Now()
		time.Sleep(3 * time.Second) // the heartbeat timeout: the connection is lost
		synctest.Wait()
		if s := e.session(c.Session.ID); s.ConnCount != 0 || s.State != sessiond.StateActive {
			t.Fatalf("after the heartbeat timeout: %v with %d connections", s.State, s.ConnCount)
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		s := e.session(c.Session.ID)
		if s.State != sessiond.StateHibernated || !s.StateSince.Equal(last.Add(6*time.Second)) {
			t.Fatalf("after the connection was lost: %v since +%v, want hibernated at +6s", s.State, s.StateSince.Sub(last))
		}
	})
}

// ValidateAndWake wakes a hibernated session; Validate does not.
func testValidateAndWake(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		var woke atomic.Int32
		rt := newFakeRuntime()
		e := sleepyEnv(t, h, rt, sessiond.Config{})
		c := e.createSleepy("alice")
		time.Sleep(3 * time.Second)
		synctest.Wait()
		v, err := e.m.ValidateAndWake(t.Context(), c.Token, sessiond.Device{})
		if err != nil || v.Session.State != sessiond.StateWaking {
			t.Fatalf("ValidateAndWake: %v, %v", v, err)
		}
		synctest.Wait()
		for _, k := range rt.keys() {
			if strings.HasSuffix(k, ".wake") {
				woke.Add(1)
			}
		}
		if s := e.session(c.Session.ID); s.State != sessiond.StateActive || woke.Load() != 1 {
			t.Fatalf("after ValidateAndWake: %v, %d wake calls", s.State, woke.Load())
		}
	})
}
