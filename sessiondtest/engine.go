package sessiondtest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// TestEngine runs the engine conformance suite: the lifecycle of sessions
// as a sessiond.Manager drives it through its public API (create, validate,
// rotate, connect, end, deadlines, events, node leases), on stores from h.
// Every adapter runs it next to TestStore: the engine must behave the same
// on all of them.
//
// Most tests run in a testing/synctest bubble and open their store inside
// it (see Harness.Open); the others move time with a ManualClock. A test
// that runs several Managers (nodes, or a restart) gives them one store.
func TestEngine(t *testing.T, h Harness) {
	for _, tc := range []struct {
		name string
		test func(*testing.T, Harness)
	}{
		// engine_create.go
		{"CreateAndValidate", testCreateAndValidate},
		{"CreateRejectsBadInput", testCreateRejectsBadInput},
		{"CallerChosenID", testCallerChosenID},
		{"LimitPerSubject", testLimitPerSubject},
		// engine_validate.go
		{"TTLNeverSlides", testTTLNeverSlides},
		{"IdleCheckedBeforeRotation", testIdleCheckedBeforeRotation},
		{"RotationOncePerGeneration", testRotationOncePerGeneration},
		{"RotationGraceAndReuse", testRotationGraceAndReuse},
		{"ReuseOfAnyRotatedOutToken", testReuseOfAnyRotatedOutToken},
		{"BindDevice", testBindDevice},
		{"ActivityWrittenOncePerTouchInterval", testActivityWrittenOncePerTouchInterval},
		{"TokensWithoutIDFoundByHash", testTokensWithoutIDFoundByHash},
		// engine_cache.go
		{"ValidationCacheSkipsTheStore", testValidationCacheSkipsTheStore},
		{"CachedRevokeIsSeenAtOnce", testCachedRevokeIsSeenAtOnce},
		{"AnotherEnginesRevokeReachesTheCache", testAnotherEnginesRevokeReachesTheCache},
		{"AReadOlderThanARevokeIsNotCached", testAReadOlderThanARevokeIsNotCached},
		// engine_end.go
		{"RevokeIsIdempotent", testRevokeIsIdempotent},
		{"EndingOneNeverRemovesAnother", testEndingOneNeverRemovesAnother},
		{"RevokeSubject", testRevokeSubject},
		{"SubjectIndexHoldsNoStaleEntries", testSubjectIndexHoldsNoStaleEntries},
		{"RevokePastDeadlineKeepsTheRealReason", testRevokePastDeadlineKeepsTheRealReason},
		{"ResourcesDisposedNewestFirstInIsolation", testResourcesDisposedNewestFirstInIsolation},
		{"ResourcesDisposedOnceUnderRacingEnds", testResourcesDisposedOnceUnderRacingEnds},
		{"EndingHooksRunOnceAcrossEngines", testEndingHooksRunOnceAcrossEngines},
		{"HungDisposersDoNotStallDeadlines", testHungDisposersDoNotStallDeadlines},
		{"CloseDropsQueuedDisposals", testCloseDropsQueuedDisposals},
		{"AttachRacingEndIsDisposed", testAttachRacingEndIsDisposed},
		{"AnotherEngineDisposesWhatItHolds", testAnotherEngineDisposesWhatItHolds},
		// engine_deadlines.go
		{"DeadlinesFireWithoutReads", testDeadlinesFireWithoutReads},
		{"PastDeadlineNeverValid", testPastDeadlineNeverValid},
		{"RestartRebuildsDeadlines", testRestartRebuildsDeadlines},
		{"DeadlinesOutliveTheirNode", testDeadlinesOutliveTheirNode},
		{"AFailedDeadlineComesBackToAnotherNode", testAFailedDeadlineComesBackToAnotherNode},
		// engine_events.go
		{"EventsInOrder", testEventsInOrder},
		{"SlowSubscriberIsDropped", testSlowSubscriberIsDropped},
		{"SubscribersAreCapped", testSubscribersAreCapped},
		// engine_connect.go
		{"DeviceConnectCreatesThenResumes", testDeviceConnectCreatesThenResumes},
		{"ConnectWithoutDeviceUsesTheDefaultDevice", testConnectWithoutDeviceUsesTheDefaultDevice},
		{"GraceElapsedEndsTheSession", testGraceElapsedEndsTheSession},
		{"LateCloseFromReplacedConnectionChangesNothing", testLateCloseFromReplacedConnectionChangesNothing},
		{"SimultaneousReconnectsMakeOneSession", testSimultaneousReconnectsMakeOneSession},
		{"ReconnectRacingGraceHasOneOutcome", testReconnectRacingGraceHasOneOutcome},
		{"ConnectWithToken", testConnectWithToken},
		{"RefusedConnectRotatesNothing", testRefusedConnectRotatesNothing},
		{"HeartbeatTimeoutLosesTheConnection", testHeartbeatTimeoutLosesTheConnection},
		{"RestartDropsThisNodesWebSockets", testRestartDropsThisNodesWebSockets},
		{"HeartbeatsHoldOnEveryNode", testHeartbeatsHoldOnEveryNode},
		{"ConnectedSessionsDoNotIdle", testConnectedSessionsDoNotIdle},
		{"AttachCostsTheSameWithManyConnections", testAttachCostsTheSameWithManyConnections},
		// engine_connhist.go
		{"EveryDetachRecordsItsClose", testEveryDetachRecordsItsClose},
		{"EvictionClosesConnections", testEvictionClosesConnections},
		{"ReplacedConnectionsAreClosedOnce", testReplacedConnectionsAreClosedOnce},
		// engine_hibernate.go
		{"HibernateAndWakeCycles", testHibernateAndWakeCycles},
		{"BackToBackTransitions", testBackToBackTransitions},
		{"RuntimeFailures", testRuntimeFailures},
		{"ConnectDuringHibernating", testConnectDuringHibernating},
		{"TTLRunsWhileHibernated", testTTLRunsWhileHibernated},
		{"HibernationOnceAcrossEngines", testHibernationOnceAcrossEngines},
		{"ARuntimeCallOutlivesItsNode", testARuntimeCallOutlivesItsNode},
		{"HeartbeatsKeepAWorkspaceAwake", testHeartbeatsKeepAWorkspaceAwake},
		{"ValidateAndWake", testValidateAndWake},
		// engine_lease.go
		{"ConnectionsOfAGoneNodeAreLost", testConnectionsOfAGoneNodeAreLost},
		{"AGoneNodeIsWorkedOffOnce", testAGoneNodeIsWorkedOffOnce},
		{"AFencedNodeIsTold", testAFencedNodeIsTold},
		{"AnOutageForAllFencesNoOne", testAnOutageForAllFencesNoOne},
		{"ARestartedNodeWaitsForTheClaimOnIt", testARestartedNodeWaitsForTheClaimOnIt},
		{"NodesListsLeasesAndConnections", testNodesListsLeasesAndConnections},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, h) })
	}
}

// clockStart is where the suite's manual clocks start.
var clockStart = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// web is the policy most tests run under.
func web() sessiond.Policy {
	return sessiond.Policy{
		Name: "web", TTL: time.Hour, IdleTimeout: 10 * time.Minute, TouchInterval: time.Minute,
		RotateAfter: 5 * time.Minute, RotationGrace: 30 * time.Second,
	}
}

// glasses is a device policy: one connection, replaced by a newer one, and
// 30 seconds to come back.
func glasses() sessiond.Policy {
	return sessiond.Policy{
		Name: "device", TTL: 24 * time.Hour, IdleTimeout: time.Hour, TouchInterval: time.Minute,
		DisconnectGrace: 30 * time.Second, OnConnect: sessiond.ConnectReplace, MaxConnections: 1,
	}
}

// workspace keeps many connections per session.
func workspace() sessiond.Policy {
	return sessiond.Policy{
		Name: "workspace", TTL: 8 * time.Hour, IdleTimeout: time.Hour, TouchInterval: time.Minute,
		DisconnectGrace: 5 * time.Minute, MaxConnections: 3, HeartbeatInterval: 10 * time.Second, HeartbeatTimeout: 30 * time.Second,
	}
}

// env is one Manager under test and the store it runs on.
type env struct {
	t     *testing.T
	store *countingStore
	m     *sessiond.Manager
}

// openStore opens a new store from h, closed when the test ends. Inside a
// synctest bubble, call it there.
func openStore(t *testing.T, h Harness) sessiond.Store {
	t.Helper()
	st := h.Open(t)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// start runs a Manager on cfg.Store, or on a new store from h if cfg has
// none. Call it inside a synctest bubble (the Manager's timers then use the
// bubble's fake time, and the store is opened there) or with a clock in
// cfg. The Manager is closed when the test ends, before its store.
func start(t *testing.T, h Harness, cfg sessiond.Config) *env {
	t.Helper()
	st := &countingStore{Store: cfg.Store}
	if st.Store == nil {
		st.Store = openStore(t, h)
	}
	cfg.Store = st
	if cfg.Policies == nil {
		cfg.Policies = []sessiond.Policy{web()}
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = suiteLeaseTTL
	}
	m, err := sessiond.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return &env{t: t, store: st, m: m}
}

// suiteLeaseTTL is the node lease of the tests that are not about leases:
// long, so that the hours of fake time they sleep through do not renew it
// (a durable write each) every five seconds.
const suiteLeaseTTL = 6 * time.Hour

// connectEnv is start for the connection tests: the web, device and
// workspace policies, on node-a unless cfg names a node.
func connectEnv(t *testing.T, h Harness, cfg sessiond.Config) *env {
	t.Helper()
	if cfg.Policies == nil {
		cfg.Policies = []sessiond.Policy{web(), glasses(), workspace()}
	}
	if cfg.Node == "" {
		cfg.Node = "node-a"
	}
	return start(t, h, cfg)
}

// stop closes the Manager, as when its process ends: the store keeps all
// it recorded (connections included) for the next Manager.
func (e *env) stop() {
	e.t.Helper()
	if err := e.m.Close(); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) create(subject string) *sessiond.Created {
	e.t.Helper()
	c, err := e.m.Create(context.Background(), sessiond.CreateRequest{Subject: subject})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) validate(token string) (*sessiond.Validation, error) {
	return e.m.Validate(context.Background(), token, sessiond.Device{})
}

func (e *env) connectDevice(subject, device string) *sessiond.Connected {
	e.t.Helper()
	c, err := e.m.Connect(context.Background(), sessiond.ConnectRequest{Subject: subject, Device: sessiond.Device{ID: device}})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// session reads the session from the store, not through a checking read.
func (e *env) session(id string) *sessiond.Session {
	e.t.Helper()
	s, err := e.store.Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// conns returns the session's connections as stored.
func (e *env) conns(id string) []sessiond.Connection {
	e.t.Helper()
	got, err := e.store.Conns(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

// events returns every event recorded so far, from the store's log.
func (e *env) events() []sessiond.Event {
	e.t.Helper()
	evs, err := e.store.Events(context.Background(), sessiond.Cursor{}, 100000)
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

// eventsOf returns the types of the session's events, with their reasons
// ("ended:idle") and the close reasons of connections
// ("connection_closed/replaced"), in order.
func (e *env) eventsOf(id string) []string {
	e.t.Helper()
	var out []string
	for _, ev := range e.events() {
		if ev.SessionID == id {
			s := string(ev.Type)
			if ev.Reason != "" {
				s += ":" + string(ev.Reason)
			}
			if ev.Conn != nil && ev.Conn.CloseReason != "" {
				s += "/" + string(ev.Conn.CloseReason)
			}
			out = append(out, s)
		}
	}
	return out
}

// countingStore counts the writes and the reads of sessions that reach
// the store it wraps.
type countingStore struct {
	sessiond.Store
	updates atomic.Int64
	reads   atomic.Int64 // Get, and sessions returned by List
}

func (c *countingStore) Get(ctx context.Context, id string) (*sessiond.Session, error) {
	c.reads.Add(1)
	return c.Store.Get(ctx, id)
}

func (c *countingStore) List(ctx context.Context, q sessiond.Query) (sessiond.Page, error) {
	p, err := c.Store.List(ctx, q)
	c.reads.Add(int64(len(p.Sessions)))
	return p, err
}

func (c *countingStore) FindToken(ctx context.Context, h sessiond.TokenHash) (*sessiond.Session, error) {
	return findToken(ctx, c.Store, h)
}

func (c *countingStore) WaitEvents(ctx context.Context, after sessiond.Cursor) (sessiond.Cursor, error) {
	return waitEvents(ctx, c.Store, after)
}

func (c *countingStore) Update(ctx context.Context, ch sessiond.Change) error {
	c.updates.Add(1)
	return c.Store.Update(ctx, ch)
}

func wantCode(t testing.TB, err error, code sessiond.Code) {
	t.Helper()
	if got := sessiond.ErrorCode(err); got != code {
		t.Fatalf("got error %v (code %q), want code %q", err, got, code)
	}
}
