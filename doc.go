// Package sessiond manages the whole life of user sessions, from creation
// to disposal, for services whose clients come and go: browsers and mobile
// apps holding a login session, devices holding a live WebSocket, tool
// clients holding a transport session. It runs as a server (cmd/sessiond:
// REST, server-sent events and WebSocket) or embeds as a Go library; this
// package is the engine both use, the Manager, with the model and the
// ports it works through. It imports no driver and no net/http.
//
// # Model
//
// A [Session] is owned by a subject (a user id, an email, a service). It
// has a public ID, safe to log, list and use in admin calls, and a secret
// token of 256 random bits, returned once by [Manager.Create] and stored
// only as its SHA-256. It may be bound to a [Device] and carries the
// application's metadata (a small JSON object).
//
// Every session runs under a named [Policy], chosen at create: an absolute
// lifetime (TTL, which never slides), an idle timeout, token rotation with
// a grace for concurrent users of the old token (a rotated-out token used
// after the grace is taken for theft and ends the session), a limit of live
// sessions per subject, device binding, and for sessions with live
// connections a disconnect grace, heartbeats and a cap on connections.
// Activity moves LastActive: a successful validation or [Manager.Touch]
// (written at most once per the policy's touch interval), a connection
// attaching or leaving, a heartbeat. Nothing else does.
//
// A [Connection] is one live attachment to a session: a WebSocket held by
// a node, or a connection of another kind (http, vnc, ...) registered with
// [Manager.ConnectTo] and kept alive by [Manager.Heartbeat]. A
// [Resource] attached to a session with [Manager.Attach] is disposed of
// when the session ends, whatever ends it: newest first, each with its own
// deadline, one failing or hanging never stopping the others.
//
// Each state transition records one [Event] (created, rotated, connected,
// disconnected, resumed, ending, ended with an [EndReason], ...) in the
// same atomic store write as the transition, so each is recorded exactly
// once. [Manager.Subscribe] streams them in order, from now or replayed
// from the store's log after a sequence number.
//
// # States
//
// A session is active until it ends. With a disconnect grace, losing its
// last connection makes it disconnected until a connection resumes it or
// the grace ends it. Whatever ends a live session (its ttl or idle timeout,
// the grace, a revoke, an eviction, a reused token) moves it to ending
// while its resources are disposed of, then to ended with that reason;
// ended sessions stay readable for the retention, then are purged. [State]
// has the whole diagram, with the hibernation states the table reserves.
//
//	create ──► active ◄──── resumed (a connection within the grace) ─────┐
//	            │  │ last live connection lost                           │
//	            │  ▼                                                     │
//	            │  disconnected ─────────────────────────────────────────┘
//	            │  │ grace elapsed
//	            ▼  ▼
//	           ending ──► ended (expired, idle, grace_elapsed, revoked,
//	                             rotated_reuse, evicted or shutdown)
//
// Every transition is a compare-and-set on the session's version, checked
// against the state machine's table ([CanTransition]): of two nodes, two
// timers, or a timer and a request racing, exactly one wins. Ending is
// idempotent. Errors are [*Error] values with a stable [Code]; match them
// with errors.Is against the sentinels ([ErrExpired], [ErrEnded],
// [ErrTokenReused], ...).
//
// # Time
//
// Each session has one deadline at a time, the earliest of its expiry, its
// idle timeout and the end of its disconnect grace, held in one scheduler:
// nothing scans all sessions on a timer. Reads check deadlines too, so a
// session past its deadline is never returned as valid, even before its
// timer fires. All time comes from the [Clock] in [Config]; tests run the
// engine under testing/synctest or on sessiondtest.ManualClock.
//
// # Ports
//
// The engine reaches the outside through small interfaces:
//
//   - [Store] keeps sessions, their connections, the nodes' leases and the
//     event log. It is the only persistence port. Adapters: inmem (memory
//     only) and pebble (embedded and durable, fsync before acknowledging).
//     Every adapter runs the conformance suites of sessiondtest: TestStore
//     for the Store contract and TestEngine for the Manager's lifecycle on
//     that store.
//   - [Clock] tells the time and runs timers; [SystemClock] by default.
//   - [Observer] receives measurements; the metrics package adapts it to
//     Prometheus.
//   - [Resource] is what a session holds and must release;
//     Config.EndingHooks run for every session that ends.
//
// The edges live in their own packages: httpapi (REST and server-sent
// events), ws (the WebSocket edge, with typed close codes), jwt (credential
// verification at the edge), client (the Go client).
//
// # Embedding
//
// Open a store, make a Manager with [New], [Manager.Start] it, and
// [Manager.Close] it when done; the Manager does not close its store. The
// example of Manager (ExampleManager, in example_test.go) creates,
// validates and revokes a session on the in-memory store and reads the
// events those calls recorded.
//
// Several Managers, in one process or many, may share one store: each is
// a node (Config.Node) holding a lease in the store that it renews. When a
// node's lease expires, another node detaches the connections it held,
// exactly once, and their sessions follow their disconnect grace; when a
// node restarts, it detaches the connections of its previous process.
package sessiond
