package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/internal/redistest"
	"github.com/sessiond/sessiond/pebble"
	"github.com/sessiond/sessiond/redis"
	"github.com/sessiond/sessiond/sessiondtest"
)

// These tests run notifiers on a real store (inmem, or pebble where a
// restart matters; the handover tests on every store, Redis too) against a real HTTP receiver. Time that the notifier
// waits out (backoff, claims, commits) moves on a ManualClock; deliveries
// themselves are real requests, waited for with Eventually.

// delivery is a notification the receiver accepted.
type delivery struct {
	id   string
	body notification
}

// receiver is a webhook endpoint that checks every delivery's signature
// with the Standard Webhooks library, answers what status says for each
// attempt (204 if nil) and records the deliveries it accepted.
type receiver struct {
	*httptest.Server
	t      *testing.T
	wh     *standardwebhooks.Webhook
	status func(id string, attempt int) int

	mu       sync.Mutex
	got      []delivery
	attempts map[string]int
}

func newReceiver(t *testing.T, secret Secret, status func(id string, attempt int) int) *receiver {
	wh, err := standardwebhooks.NewWebhook(secret.String())
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, wh: wh, status: status, attempts: map[string]int{}}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if err := r.wh.Verify(body, req.Header); err != nil {
		r.t.Errorf("a delivery does not verify: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id := req.Header.Get(HeaderID)
	r.mu.Lock()
	r.attempts[id]++
	n := r.attempts[id]
	r.mu.Unlock()
	status := http.StatusNoContent
	if r.status != nil {
		status = r.status(id, n)
	}
	if status/100 == 2 {
		var d delivery
		d.id = id
		if err := json.Unmarshal(body, &d.body); err != nil {
			r.t.Errorf("a delivery's body %s: %v", body, err)
		}
		r.mu.Lock()
		r.got = append(r.got, d)
		r.mu.Unlock()
	}
	w.WriteHeader(status)
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *receiver) ids() []string {
	var out []string
	for _, d := range r.deliveries() {
		out = append(out, d.id)
	}
	return out
}

// waitFor waits until the receiver accepted n deliveries, moving clock on
// a second at a time so that what waits on it (backoff, a claim) goes on.
func (r *receiver) waitFor(t *testing.T, clock *sessiondtest.ManualClock, n int) []delivery {
	t.Helper()
	sessiondtest.Eventually(t, fmt.Sprintf("%d deliveries", n), func() bool {
		if got := len(r.deliveries()); got >= n {
			return true
		}
		if clock != nil {
			clock.Advance(time.Second)
		}
		return false
	})
	return r.deliveries()
}

func secret(t *testing.T) Secret {
	t.Helper()
	s, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writer records events in a store as the engine would: each a
// transition of its session, one version on.
type writer struct {
	t  *testing.T
	st sessiond.Store
	at time.Time
}

// create stores a new session of subject, with its created event.
func (w *writer) create(subject string) *sessiond.Session {
	w.t.Helper()
	s, _ := sessiondtest.NewSession(subject, w.at)
	ev := []sessiond.Event{{Type: sessiond.EventCreated, SessionID: s.ID, Subject: subject, Time: w.at, State: s.State, Version: 1}}
	if _, err := w.st.Create(context.Background(), sessiond.Change{Session: s, Events: ev}, sessiond.Limit{}); err != nil {
		w.t.Fatal(err)
	}
	return s
}

// record moves s one version on with an event of type typ, and returns s
// as stored.
func (w *writer) record(s *sessiond.Session, typ sessiond.EventType) *sessiond.Session {
	w.t.Helper()
	n := s.Clone()
	n.Version++
	if typ == sessiond.EventEnded {
		n.State, n.EndReason, n.EndedAt = sessiond.StateEnded, sessiond.EndRevoked, w.at
	}
	ev := []sessiond.Event{{Type: typ, SessionID: s.ID, Subject: s.Subject, Time: w.at, State: n.State, Reason: n.EndReason, Version: n.Version}}
	if err := w.st.Update(context.Background(), sessiond.Change{Session: n, Events: ev}); err != nil {
		w.t.Fatal(err)
	}
	return n
}

// logIDs are the delivery ids of the store's retained events of the
// types, in log order.
func logIDs(t *testing.T, st sessiond.Store, types ...sessiond.EventType) []string {
	t.Helper()
	evs, err := st.Events(context.Background(), sessiond.Cursor{}, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if len(types) == 0 || slices.Contains(types, e.Type) {
			out = append(out, DeliveryID(e))
		}
	}
	return out
}

// running is a Notifier running until stop or the test's end.
type running struct {
	*Notifier
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// stop stops the notifier and checks that Run returned, with every timer
// it started stopped.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run = %v, want context.Canceled", err)
			}
		case <-time.After(sessiondtest.EventuallyTimeout):
			t.Fatal("Run did not return after its context ended")
		}
	})
}

func start(t *testing.T, o NotifierOptions) *running {
	t.Helper()
	n, err := NewNotifier(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Notifier: n, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- n.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func options(st sessiond.Store, clock *sessiondtest.ManualClock, owner string, eps ...Endpoint) NotifierOptions {
	return NotifierOptions{Store: st, Endpoints: eps, Owner: owner, Clock: clock,
		BaseDelay: time.Second, MaxDelay: 4 * time.Second, AttemptTimeout: 5 * time.Second}
}

func subscribe(name, url string, s Secret, types ...sessiond.EventType) Endpoint {
	if len(types) == 0 {
		types = sessiond.EventTypes
	}
	return Endpoint{Name: name, URL: url, Secret: s, Events: types}
}

// waitDelivered waits until the notifier counts n deliveries to its
// first endpoint: then it has passed them (what the receiver records
// before it answers is not passed yet).
func waitDelivered(t *testing.T, r *running, n int64) {
	t.Helper()
	sessiondtest.Eventually(t, fmt.Sprintf("%d deliveries counted", n), func() bool { return r.Stats()[0].Delivered >= n })
}

// waitDelivering waits until the notifier holds its first endpoint's claim.
func waitDelivering(t *testing.T, r *running) {
	t.Helper()
	sessiondtest.Eventually(t, "the notifier to claim its endpoint", func() bool { return r.Stats()[0].Delivering })
}

// TestNotifierDeliversInLogOrder: every event is delivered once, signed,
// in the log's order (so each session's in the order of its
// transitions), with the body and id documented; what happened before
// the endpoint was first claimed is not sent.
func TestNotifierDeliversInLogOrder(t *testing.T) {
	s := secret(t)
	st := inmem.New(inmem.Options{})
	w := &writer{t: t, st: st, at: time.Now().UTC()}
	before := w.create("zoe") // before the endpoint exists: not sent
	clock := sessiondtest.NewManualClock(time.Now())
	rcv := newReceiver(t, s, nil)
	n := start(t, options(st, clock, "node-1", subscribe("all", rcv.URL, s)))
	waitDelivering(t, n)

	a, b, c := w.create("alice"), w.create("bob"), w.create("carol")
	a = w.record(a, sessiond.EventConnected)
	b = w.record(b, sessiond.EventRotated)
	a = w.record(a, sessiond.EventDisconnected)
	w.record(c, sessiond.EventEnded)
	w.record(a, sessiond.EventEnded)
	w.record(b, sessiond.EventEnded)
	want := logIDs(t, st)[1:] // all but zoe's
	got := rcv.waitFor(t, nil, len(want))
	waitDelivered(t, n, int64(len(want)))
	if ids := rcv.ids(); !slices.Equal(ids, want) {
		t.Fatalf("delivered %v\nwant (the log's order) %v", ids, want)
	}
	for _, d := range got {
		if d.body.Data.SessionID == before.ID {
			t.Fatalf("an event from before the endpoint was claimed was sent: %+v", d)
		}
		e := d.body.Data
		if d.id != DeliveryID(e) || d.body.Type != "session."+string(e.Type) || !d.body.Timestamp.Equal(e.Time) || e.Seq == 0 || e.Subject == "" {
			t.Fatalf("delivery %s: body %+v", d.id, d.body)
		}
	}
	if d := got[len(got)-1]; d.id != b.ID+".3.ended" || d.body.Data.Reason != sessiond.EndRevoked || d.body.Data.State != sessiond.StateEnded {
		t.Fatalf("the last delivery: %s %+v; want bob's end (id <session>.<version>.<type>)", d.id, d.body)
	}
	if st := n.Stats()[0]; st.Delivered != int64(len(want)) || st.Retries != 0 || st.DeadLetters != 0 || st.Gaps != 0 || !st.Delivering {
		t.Fatalf("stats: %+v", st)
	}
	n.stop(t)
	if p := clock.Pending(); p != 0 {
		t.Fatalf("%d timers left running after Run returned", p)
	}
}

// TestNotifierFiltersByType: each endpoint is sent only the types it
// subscribed to.
func TestNotifierFiltersByType(t *testing.T) {
	s := secret(t)
	st := inmem.New(inmem.Options{})
	w := &writer{t: t, st: st, at: time.Now().UTC()}
	clock := sessiondtest.NewManualClock(time.Now())
	ends, lives := newReceiver(t, s, nil), newReceiver(t, s, nil)
	n := start(t, options(st, clock, "node-1",
		subscribe("ends", ends.URL, s, sessiond.EventEnded),
		subscribe("lives", lives.URL, s, sessiond.EventCreated, sessiond.EventHibernated)))
	sessiondtest.Eventually(t, "both endpoints claimed", func() bool { return n.Stats()[0].Delivering && n.Stats()[1].Delivering })
	for _, subject := range []string{"alice", "bob"} {
		v := w.create(subject)
		v = w.record(v, sessiond.EventConnected)
		v = w.record(v, sessiond.EventHibernated)
		w.record(v, sessiond.EventEnded)
	}
	ends.waitFor(t, nil, 2)
	lives.waitFor(t, nil, 4)
	// One more, which both follow: what they skipped is behind them.
	w.record(w.create("carol"), sessiond.EventEnded)
	ends.waitFor(t, nil, 3)
	lives.waitFor(t, nil, 5)
	if got, want := ends.ids(), logIDs(t, st, sessiond.EventEnded); !slices.Equal(got, want) {
		t.Fatalf("the ended endpoint got %v, want %v", got, want)
	}
	if got, want := lives.ids(), logIDs(t, st, sessiond.EventCreated, sessiond.EventHibernated); !slices.Equal(got, want) {
		t.Fatalf("the created/hibernated endpoint got %v, want %v", got, want)
	}
}

// TestNotifierRetriesThenDelivers: a notification that fails is tried
// again with backoff (on the clock) until it is accepted, and holds up
// what follows it, so the order stays.
func TestNotifierRetriesThenDelivers(t *testing.T) {
	s := secret(t)
	st := inmem.New(inmem.Options{})
	w := &writer{t: t, st: st, at: time.Now().UTC()}
	clock := sessiondtest.NewManualClock(time.Now())
	// The first event, created (version 1 of the only session), fails
	// twice. (Matched by its suffix: its id is known only once the
	// create returns, and the notifier may send it before then.)
	rcv := newReceiver(t, s, func(id string, attempt int) int {
		if strings.HasSuffix(id, ".1.created") && attempt <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	n := start(t, options(st, clock, "node-1", subscribe("all", rcv.URL, s)))
	waitDelivering(t, n)
	a := w.create("alice")
	a = w.record(a, sessiond.EventConnected)
	w.record(a, sessiond.EventEnded)
	rcv.waitFor(t, clock, 3)
	waitDelivered(t, n, 3)
	if got, want := rcv.ids(), logIDs(t, st); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if st := n.Stats()[0]; st.Delivered != 3 || st.Rejected != 2 || st.Retries != 2 || st.DeadLetters != 0 {
		t.Fatalf("stats: %+v; want 3 delivered, 2 rejected, 2 retries", st)
	}
}

// TestNotifierDeadLetter: a notification that every attempt fails is
// counted as a dead letter and skipped; the next ones are delivered.
func TestNotifierDeadLetter(t *testing.T) {
	s := secret(t)
	st := inmem.New(inmem.Options{})
	w := &writer{t: t, st: st, at: time.Now().UTC()}
	clock := sessiondtest.NewManualClock(time.Now())
	// The second event, connected (version 2), fails every time: matched
	// by its id's suffix, as the notifier may be sending the first event
	// while the test learns the session's id.
	rcv := newReceiver(t, s, func(id string, _ int) int {
		if strings.HasSuffix(id, ".2.connected") {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	ep := subscribe("all", rcv.URL, s)
	ep.MaxAttempts = 3
	n := start(t, options(st, clock, "node-1", ep))
	waitDelivering(t, n)
	a := w.create("alice")
	poison := a.ID + ".2.connected"
	a = w.record(a, sessiond.EventConnected)
	w.record(a, sessiond.EventEnded)
	rcv.waitFor(t, clock, 2)
	waitDelivered(t, n, 2)
	want := []string{a.ID + ".1.created", a.ID + ".3.ended"}
	if got := rcv.ids(); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v (the poison one dropped)", got, want)
	}
	rcv.mu.Lock()
	tries := rcv.attempts[poison]
	rcv.mu.Unlock()
	if st := n.Stats()[0]; tries != 3 || st.DeadLetters != 1 || st.Rejected != 3 || st.Retries != 2 || st.Delivered != 2 {
		t.Fatalf("the poison notification tried %d times; stats %+v; want 3 tries, 1 dead letter", tries, st)
	}
}

// TestNotifierResumesAfterRestart: a notifier that stops commits where it
// is; after the store is reopened, a new one (same node) goes on from
// there, sending what happened meanwhile and nothing twice.
func TestNotifierResumesAfterRestart(t *testing.T) {
	s := secret(t)
	dir := t.TempDir()
	st, err := pebble.Open(pebble.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{t: t, st: st, at: time.Now().UTC()}
	clock := sessiondtest.NewManualClock(time.Now())
	rcv := newReceiver(t, s, nil)
	n := start(t, options(st, clock, "node-1", subscribe("all", rcv.URL, s)))
	waitDelivering(t, n)
	a := w.create("alice")
	a = w.record(a, sessiond.EventConnected)
	waitDelivered(t, n, 2)
	n.stop(t)

	// While no notifier runs.
	a = w.record(a, sessiond.EventDisconnected)
	b := w.create("bob")
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = pebble.Open(pebble.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	w.st = st
	start(t, options(st, clock, "node-1", subscribe("all", rcv.URL, s)))
	rcv.waitFor(t, nil, 4)
	w.record(a, sessiond.EventEnded)
	w.record(b, sessiond.EventEnded)
	rcv.waitFor(t, nil, 6)
	if got, want := rcv.ids(), logIDs(t, st); !slices.Equal(got, want) {
		t.Fatalf("across the restart, delivered %v\nwant each event once, in order: %v", got, want)
	}
}

// TestNotifierResumesAtTheCommittedCursor: a notifier that dies without
// releasing (here: its claim taken after it lapsed) leaves the cursor it
// last committed; the next owner goes on from there, so what the dead one
// sent after its last commit is sent again (at least once), and nothing
// is lost.
func TestNotifierResumesAtTheCommittedCursor(t *testing.T) {
	s := secret(t)
	st := inmem.New(inmem.Options{})
	w := &writer{t: t, st: st, at: time.Now().UTC()}
	clock := sessiondtest.NewManualClock(time.Now())
	// The cursor of a node that delivered the first event and died.
	a := w.create("alice")
	first := logIDs(t, st)
	head, _ := st.Head(context.Background())
	if _, err := st.ClaimConsumer(context.Background(), "webhook:all", "dead-node", sessiond.Cursor{}, clock.Now(), DefaultClaimTTL); err != nil {
		t.Fatal(err)
	}
	if err := st.CommitConsumer(context.Background(), "webhook:all", "dead-node", head, clock.Now(), DefaultClaimTTL); err != nil {
		t.Fatal(err)
	}
	a = w.record(a, sessiond.EventConnected)
	w.record(a, sessiond.EventEnded)

	rcv := newReceiver(t, s, nil)
	n := start(t, options(st, clock, "node-2", subscribe("all", rcv.URL, s)))
	// Standing by while the dead node's claim lasts.
	sessiondtest.Eventually(t, "the notifier to stand by", func() bool { return clock.Pending() > 0 })
	if got := rcv.deliveries(); len(got) != 0 || n.Stats()[0].Delivering {
		t.Fatalf("delivered %d while another node's claim was live", len(got))
	}
	rcv.waitFor(t, clock, 2)
	if got, want := rcv.ids(), logIDs(t, st)[len(first):]; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want what follows the committed cursor: %v", got, want)
	}
}

// handoverStores are the stores the handover tests run on: every store
// with the Consumers capability, Redis standalone and Cluster included
// (servers the tests start, internal/redistest).
func handoverStores() []struct {
	name string
	open func(t *testing.T) sessiond.Store
} {
	return []struct {
		name string
		open func(t *testing.T) sessiond.Store
	}{
		{"inmem", func(t *testing.T) sessiond.Store { return inmem.New(inmem.Options{}) }},
		{"pebble", func(t *testing.T) sessiond.Store {
			st, err := pebble.Open(pebble.Options{Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return st
		}},
		{"redis", func(t *testing.T) sessiond.Store { return redisStore(t, redistest.Standalone(t)) }},
		{"redis-cluster", func(t *testing.T) sessiond.Store { return redisStore(t, redistest.Cluster(t)) }},
	}
}

var redisPrefixes atomic.Int64

// redisStore is a store of its own (a key prefix) on the Redis at url.
func redisStore(t *testing.T, url string) sessiond.Store {
	st, err := redis.OpenStore(context.Background(), url, redis.StoreOptions{KeyPrefix: fmt.Sprintf("webhook%d:", redisPrefixes.Add(1))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// eachOnceInSessionOrder checks that got holds the ids of want, each
// once, and each session's in the order want has them (a store of
// several log partitions orders its log by partition, and promises the
// order of each session's events only).
func eachOnceInSessionOrder(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("delivered %v\nwant each event once: %v", got, want)
	}
	session := func(id string) string { sid, _, _ := strings.Cut(id, "."); return sid }
	order := func(ids []string) map[string][]string {
		out := map[string][]string{}
		for _, id := range ids {
			out[session(id)] = append(out[session(id)], id)
		}
		return out
	}
	wantOrder := order(want)
	for sid, ids := range order(got) {
		if !slices.Equal(ids, wantOrder[sid]) {
			t.Fatalf("session %s's events delivered as %v; want %v", sid, ids, wantOrder[sid])
		}
	}
}

// TestTwoNotifiersDeliverEachEventOnce: of two notifiers on one store,
// one holds the endpoint and delivers; when it stops, the other takes
// over where it stopped. On every store with the Consumers capability.
func TestTwoNotifiersDeliverEachEventOnce(t *testing.T) {
	for _, store := range handoverStores() {
		t.Run(store.name, func(t *testing.T) {
			s := secret(t)
			st := store.open(t)
			w := &writer{t: t, st: st, at: time.Now().UTC()}
			clock := sessiondtest.NewManualClock(time.Now())
			rcv := newReceiver(t, s, nil)
			one := start(t, options(st, clock, "node-1", subscribe("all", rcv.URL, s)))
			waitDelivering(t, one)
			two := start(t, options(st, clock, "node-2", subscribe("all", rcv.URL, s)))
			sessiondtest.Eventually(t, "the second notifier to stand by", func() bool { return clock.Pending() >= 3 })
			var v []*sessiond.Session
			for i := range 5 {
				v = append(v, w.create(fmt.Sprint("user-", i)))
			}
			rcv.waitFor(t, clock, 5)
			waitDelivered(t, one, 5)
			if one.Stats()[0].Delivered != 5 || two.Stats()[0].Delivered != 0 || two.Stats()[0].Delivering {
				t.Fatalf("node-1 %+v, node-2 %+v; want node-1 to deliver all", one.Stats()[0], two.Stats()[0])
			}
			one.stop(t) // releases the claim
			for _, s := range v {
				w.record(s, sessiond.EventEnded)
			}
			rcv.waitFor(t, clock, 10)
			waitDelivered(t, two, 5) // the receiver records a delivery before node-2 counts it
			eachOnceInSessionOrder(t, rcv.ids(), logIDs(t, st))
			if st := two.Stats()[0]; st.Delivered != 5 || !st.Delivering {
				t.Fatalf("node-2 after node-1 stopped: %+v", st)
			}
		})
	}
}

// TestNotifierStopsWhenItsClaimIsTaken: a notifier whose claim another
// node took (it was taken for dead) stops delivering and stands by. On
// every store with the Consumers capability.
func TestNotifierStopsWhenItsClaimIsTaken(t *testing.T) {
	for _, store := range handoverStores() {
		t.Run(store.name, func(t *testing.T) {
			s := secret(t)
			st := store.open(t)
			cons, ok := st.(sessiond.Consumers)
			if !ok {
				t.Fatalf("%T has no Consumers", st)
			}
			clock := sessiondtest.NewManualClock(time.Now())
			rcv := newReceiver(t, s, nil)
			n := start(t, options(st, clock, "node-1", subscribe("all", rcv.URL, s)))
			waitDelivering(t, n)
			clock.Jump(DefaultClaimTTL) // no renewal ran: the claim lapsed
			if _, err := cons.ClaimConsumer(context.Background(), "webhook:all", "node-2", sessiond.Cursor{}, clock.Now(), DefaultClaimTTL); err != nil {
				t.Fatal(err)
			}
			sessiondtest.Eventually(t, "node-1 to give the endpoint up", func() bool {
				clock.Advance(time.Second)
				return !n.Stats()[0].Delivering
			})
			w := &writer{t: t, st: st, at: time.Now().UTC()}
			w.create("alice")
			clock.Advance(DefaultClaimTTL / 3) // node-1 tries again: node-2's claim is live
			if got := rcv.deliveries(); len(got) != 0 || n.Stats()[0].Delivering {
				t.Fatalf("node-1 delivered %d after losing its claim", len(got))
			}
		})
	}
}

// TestNotifierCountsGaps: events that fell out of the store's log before
// the endpoint was sent them are counted as a gap, and delivery goes on.
func TestNotifierCountsGaps(t *testing.T) {
	s := secret(t)
	st := inmem.New(inmem.Options{EventRetention: 3})
	w := &writer{t: t, st: st, at: time.Now().UTC()}
	clock := sessiondtest.NewManualClock(time.Now())
	// The endpoint's cursor is at the log's beginning; then 5 events, of
	// which the log keeps 3.
	if _, err := st.ClaimConsumer(context.Background(), "webhook:all", "node-1", sessiond.Cursor{}, clock.Now(), DefaultClaimTTL); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		w.create(fmt.Sprint("user-", i))
	}
	rcv := newReceiver(t, s, nil)
	n := start(t, options(st, clock, "node-1", subscribe("all", rcv.URL, s)))
	rcv.waitFor(t, nil, 3)
	if got, want := rcv.ids(), logIDs(t, st); !slices.Equal(got, want) || n.Stats()[0].Gaps != 1 {
		t.Fatalf("delivered %v (gaps %d); want the 3 the log kept, %v, and 1 gap", got, n.Stats()[0].Gaps, want)
	}
}

func TestNewNotifierRefusesBadOptions(t *testing.T) {
	s := secret(t)
	st := inmem.New(inmem.Options{})
	good := func() NotifierOptions {
		return NotifierOptions{Store: st, Owner: "n", Endpoints: []Endpoint{subscribe("a", "https://example.com/hook", s, sessiond.EventEnded)}}
	}
	if _, err := NewNotifier(good()); err != nil {
		t.Fatal(err)
	}
	for what, tc := range map[string]struct {
		change func(*NotifierOptions)
		want   string
	}{
		"no store":          {func(o *NotifierOptions) { o.Store = nil }, "Store"},
		"no owner":          {func(o *NotifierOptions) { o.Owner = "" }, "Owner"},
		"no endpoint":       {func(o *NotifierOptions) { o.Endpoints = nil }, "endpoints"},
		"too many":          {func(o *NotifierOptions) { o.Endpoints = slices.Repeat(o.Endpoints, MaxEndpoints+1) }, "endpoints"},
		"two of one name":   {func(o *NotifierOptions) { o.Endpoints = append(o.Endpoints, o.Endpoints[0]) }, "two endpoints"},
		"bad name":          {func(o *NotifierOptions) { o.Endpoints[0].Name = "a b" }, "name"},
		"long name":         {func(o *NotifierOptions) { o.Endpoints[0].Name = strings.Repeat("a", MaxEndpointName+1) }, "name"},
		"bad url":           {func(o *NotifierOptions) { o.Endpoints[0].URL = "ftp://example.com" }, "url"},
		"url without host":  {func(o *NotifierOptions) { o.Endpoints[0].URL = "https:///x" }, "url"},
		"no secret":         {func(o *NotifierOptions) { o.Endpoints[0].Secret = nil }, "secret"},
		"short secret":      {func(o *NotifierOptions) { o.Endpoints[0].Secret = Secret("short") }, "secret"},
		"no events":         {func(o *NotifierOptions) { o.Endpoints[0].Events = nil }, "events"},
		"unknown event":     {func(o *NotifierOptions) { o.Endpoints[0].Events = []sessiond.EventType{"exploded"} }, "exploded"},
		"negative attempts": {func(o *NotifierOptions) { o.Endpoints[0].MaxAttempts = -1 }, "max_attempts"},
	} {
		o := good()
		o.Endpoints = slices.Clone(o.Endpoints)
		tc.change(&o)
		if _, err := NewNotifier(o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error about %s", what, err, tc.want)
		}
	}
	// A store without consumers.
	if _, err := NewNotifier(NotifierOptions{Store: struct{ sessiond.Store }{st}, Owner: "n", Endpoints: good().Endpoints}); err == nil || !strings.Contains(err.Error(), "Consumers") {
		t.Errorf("a store without consumers: %v", err)
	}
}

// commitSpy is a store that records the cursors committed.
type commitSpy struct {
	*inmem.Store
	mu      sync.Mutex
	commits []sessiond.Cursor
}

func (s *commitSpy) CommitConsumer(ctx context.Context, name, owner string, c sessiond.Cursor, now time.Time, ttl time.Duration) error {
	err := s.Store.CommitConsumer(ctx, name, owner, c, now, ttl)
	if err == nil {
		s.mu.Lock()
		s.commits = append(s.commits, c)
		s.mu.Unlock()
	}
	return err
}

// committed reports whether the last commit is at c.
func (s *commitSpy) committed(c sessiond.Cursor) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.commits) > 0 && !s.commits[len(s.commits)-1].Behind(c) && !c.Behind(s.commits[len(s.commits)-1])
}

// TestNotifierCommitsAsItDelivers: the cursor is committed after each
// Batch events handled, at once, and otherwise within CommitEvery, so
// that a node that dies sends again at most that much.
func TestNotifierCommitsAsItDelivers(t *testing.T) {
	s := secret(t)
	st := &commitSpy{Store: inmem.New(inmem.Options{})}
	w := &writer{t: t, st: st, at: time.Now().UTC()}
	clock := sessiondtest.NewManualClock(time.Now())
	rcv := newReceiver(t, s, nil)
	o := options(st, clock, "node-1", subscribe("all", rcv.URL, s))
	o.Batch = 4
	n := start(t, o)
	waitDelivering(t, n)
	for i := range 4 {
		w.create(fmt.Sprint("user-", i))
	}
	head, _ := st.Head(context.Background())
	sessiondtest.Eventually(t, "a commit after a batch, the clock standing", func() bool { return st.committed(head) })
	w.create("user-4")
	head, _ = st.Head(context.Background())
	waitDelivered(t, n, 5)
	if st.committed(head) {
		t.Fatal("one event committed at once; want it within CommitEvery")
	}
	clock.Advance(DefaultCommitEvery)
	sessiondtest.Eventually(t, "a commit within CommitEvery", func() bool { return st.committed(head) })
}
