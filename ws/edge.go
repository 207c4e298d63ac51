// Package ws is the WebSocket edge: it authenticates a credential before
// the upgrade, attaches the socket to a session (found, created or named by
// a session token), acknowledges it, keeps it alive with heartbeats, asks
// for fresh credentials before they expire, and closes it with a typed code
// when its session ends. docs/protocol.md is the contract it implements.
//
// One timer per connection does all of its timekeeping: the next ping, the
// heartbeat deadline, the credential's refresh and expiry. Each socket is a
// resource of its session, so whatever ends the session (a revoke, a
// timeout, another node) closes the socket as part of the session's
// disposal.
package ws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/ratelimit"
	"github.com/sessiond/sessiond/internal/realip"
	"github.com/sessiond/sessiond/internal/tracing"
	"github.com/sessiond/sessiond/wire"
)

// Defaults of the Config fields that tune connections.
const (
	DefaultMaxMessageSize = 4096
	DefaultMessageRate    = 20
	DefaultMessageBurst   = 40
	DefaultRefreshBefore  = time.Minute
)

// VerifyFunc checks a credential (a JWT) and returns its subject and, if it
// has one, its expiry. Failures are *sessiond.Error with CodeUnauthorized.
type VerifyFunc func(ctx context.Context, credential string) (subject string, expires time.Time, err error)

// Config configures an Edge. Manager and Verify are required; zero values
// of the rest mean the defaults noted.
type Config struct {
	Manager *sessiond.Manager
	Verify  VerifyFunc
	Logger  *slog.Logger
	// Clock times heartbeats and credential expiry: SystemClock.
	Clock sessiond.Clock
	// MaxMessageSize is the largest message a client may send: 4096 bytes.
	MaxMessageSize int
	// MessageRate and MessageBurst limit each connection's messages: 20 per
	// second, bursts of 40. Exceeding them closes the connection with 1008.
	MessageRate  float64
	MessageBurst int
	// RefreshBefore is how long before the credential expires the server
	// sends a refresh message: 1m (or a tenth of the credential's life
	// left, if that is shorter).
	RefreshBefore time.Duration
	// WriteTimeout bounds every write to a socket: 10s.
	WriteTimeout time.Duration
	// AttachTimeout bounds the wait for the attach message: 10s.
	AttachTimeout time.Duration
	// ReadBufferSize is each connection's read buffer: 512 bytes. Small
	// buffers keep idle connections cheap; messages are small, and a larger
	// one is read in more than one call.
	ReadBufferSize int
	// ReconcileInterval is how often the edge compares its sockets with the
	// store's records of this node's connections: DefaultReconcileInterval.
	ReconcileInterval time.Duration
	// MaxSockets caps the sockets this node holds open (and handshakes in
	// flight), so that WebSockets cannot take the file descriptors that
	// REST, health checks and the store need: DefaultMaxSockets. A
	// handshake over it is refused with 503 and counted
	// (wire.WebSocketStats.RefusedFull).
	MaxSockets int
	// ConnectsPerSubject and ConnectsPerAddress limit handshakes per second
	// of one subject and of one client address (an IPv6 client's /64):
	// zero means DefaultConnectsPerSubject and DefaultConnectsPerAddress, a
	// negative value no limit. Over them, 429 rate_limited with
	// Retry-After, and the others are not affected.
	ConnectsPerSubject int
	ConnectsPerAddress int
	// ClientIP tells the address of the client behind a request, recorded
	// on its connection and device: the peer's address (a realip.Resolver
	// trusting no proxy).
	ClientIP func(*http.Request) string
	// AllowedOrigins, if set, are the only values of the Origin header a
	// handshake may carry, as "scheme://host[:port]" (see ParseOrigin).
	// Browsers always send Origin; a handshake with another one is refused
	// with 403 before its credential is looked at. Handshakes without an
	// Origin header (clients that are not browsers) are not affected.
	AllowedOrigins []string
	// TracerProvider, if set, traces every connect: one span
	// "sessiond.ws/connect" from the handshake to the attach (or the
	// refusal), not for the socket's life, with its outcome (created,
	// resumed, refused, closed, failed), the error code or close code of a
	// refusal and the attached session's sessiond.LogID; under the span of
	// the request if the request has one (httpapi's), else continuing an
	// incoming traceparent header. Never a credential, a token or a
	// subject. Nil means no tracing.
	TracerProvider trace.TracerProvider
}

// Edge serves GET /v1/connect.
type Edge struct {
	m        *sessiond.Manager
	verify   VerifyFunc
	log      *slog.Logger
	clock    sessiond.Clock
	upgrader *gws.Upgrader
	tracer   trace.Tracer // nil: tracing off
	clientIP func(*http.Request) string
	origins  map[string]bool // nil: any origin

	rate          float64
	burst         float64
	refreshBefore time.Duration
	writeTimeout  time.Duration
	attachTimeout time.Duration

	maxSockets int64
	sockets    atomic.Int64       // slots taken: open sockets and handshakes in flight
	bySubject  *ratelimit.Windows // handshakes per subject per second
	byAddress  *ratelimit.Windows // handshakes per client address per second

	mu      sync.Mutex
	conns   map[string]*conn // attached connections by id
	pending map[*conn]struct{}
	live    sync.WaitGroup // connections not yet fully closed
	closing atomic.Bool

	watchCancel context.CancelFunc
	watchDone   chan struct{}
	// life ends when Shutdown begins: the waits of sockets for their
	// session to wake end with it.
	life     context.Context
	detacher detacher

	stats counters
}

// New returns an Edge. It starts one goroutine, which watches the event log
// for connections that other nodes replaced; Shutdown stops it.
func New(cfg Config) (*Edge, error) {
	if cfg.Manager == nil || cfg.Verify == nil {
		return nil, errors.New("ws: Config.Manager and Config.Verify are required")
	}
	e := &Edge{
		m: cfg.Manager, verify: cfg.Verify, log: cfg.Logger, clock: cfg.Clock, clientIP: cfg.ClientIP,
		rate: cfg.MessageRate, burst: float64(cfg.MessageBurst),
		refreshBefore: cfg.RefreshBefore, writeTimeout: cfg.WriteTimeout, attachTimeout: cfg.AttachTimeout,
		conns: make(map[string]*conn), pending: make(map[*conn]struct{}),
		stats:  newCounters(),
		tracer: tracing.Tracer(cfg.TracerProvider, "github.com/sessiond/sessiond/ws"),
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.clock == nil {
		e.clock = sessiond.SystemClock{}
	}
	if e.clientIP == nil {
		e.clientIP = realip.New(nil).ClientIP
	}
	for i, o := range cfg.AllowedOrigins {
		norm, err := ParseOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("ws: Config.AllowedOrigins[%d]: %w", i, err)
		}
		if e.origins == nil {
			e.origins = make(map[string]bool, len(cfg.AllowedOrigins))
		}
		e.origins[norm] = true
	}
	if e.rate <= 0 {
		e.rate = DefaultMessageRate
	}
	if e.burst <= 0 {
		e.burst = DefaultMessageBurst
	}
	if e.refreshBefore <= 0 {
		e.refreshBefore = DefaultRefreshBefore
	}
	if e.writeTimeout <= 0 {
		e.writeTimeout = 10 * time.Second
	}
	if e.attachTimeout <= 0 {
		e.attachTimeout = 10 * time.Second
	}
	maxMsg := cfg.MaxMessageSize
	if maxMsg <= 0 {
		maxMsg = DefaultMaxMessageSize
	}
	readBuf := cfg.ReadBufferSize
	if readBuf <= 0 {
		readBuf = 512
	}
	e.upgrader = gws.NewUpgrader(e, &gws.ServerOption{
		ReadMaxPayloadSize:  maxMsg,
		ReadBufferSize:      readBuf,
		WriteMaxPayloadSize: 64 << 10,
		CheckUtf8Enabled:    true,
		HandshakeTimeout:    5 * time.Second,
		Logger:              gwsLogger{e.log},
		Recovery: func(l gws.Logger) {
			if p := recover(); p != nil {
				l.Error("panic in a websocket handler: ", p)
			}
		},
		NewSession: func() gws.SessionStorage { return &slot{} },
	})
	e.maxSockets = int64(cfg.MaxSockets)
	if e.maxSockets <= 0 {
		e.maxSockets = DefaultMaxSockets
	}
	e.bySubject = connectLimit(cfg.ConnectsPerSubject, DefaultConnectsPerSubject, e.clock.Now)
	e.byAddress = connectLimit(cfg.ConnectsPerAddress, DefaultConnectsPerAddress, e.clock.Now)
	e.detacher = detacher{e: e, every: cfg.ReconcileInterval}
	if e.detacher.every <= 0 {
		e.detacher.every = DefaultReconcileInterval
	}
	e.detacher.start()
	e.m.OnFenced(e.fenced)
	ctx, cancel := context.WithCancel(context.Background())
	e.watchCancel, e.watchDone, e.life = cancel, make(chan struct{}), ctx
	go e.watch(ctx)
	return e, nil
}

// connectLimit is the rate table of a connects-per-second setting: zero
// takes the default, a negative value none (nil: Take always admits).
func connectLimit(n, def int, now func() time.Time) *ratelimit.Windows {
	switch {
	case n < 0:
		return nil
	case n == 0:
		n = def
	}
	return ratelimit.New(n, time.Second, rateKeys, now)
}

// fenced closes every socket with 4000 (reconnect): another node took this
// one for dead and released its connections, so their clients must attach
// again. It is the Manager's OnFenced callback and must not block.
func (e *Edge) fenced() {
	e.mu.Lock()
	all := make([]*conn, 0, len(e.conns))
	for _, c := range e.conns {
		all = append(all, c)
	}
	e.mu.Unlock()
	e.log.Warn("this node was fenced off: closing its sockets so that their clients reconnect", "sockets", len(all))
	go func() {
		for _, c := range all {
			c.close(wire.CloseReconnect)
		}
	}()
}

// ServeHTTP authenticates, attaches and upgrades one connection.
func (e *Edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	byMessage := q.Get("attach") == "message"
	r, at := e.startAttempt(r, byMessage)
	ctx := r.Context()
	if e.closing.Load() {
		e.refuse(w, at, 0, &sessiond.Error{Code: sessiond.CodeUnavailable, Message: "server is shutting down; connect elsewhere"})
		return
	}
	if !e.originAllowed(r) {
		e.stats.refused.Add(1)
		e.refuse(w, at, http.StatusForbidden, &sessiond.Error{Code: sessiond.CodeUnauthorized,
			Message: "this Origin may not connect (websocket.allowed_origins)"})
		return
	}
	clientIP := e.clientIP(r)
	if key := realip.LimitKey(clientIP); key != "" {
		if wait, ok := e.byAddress.Take(key); !ok {
			e.refuseRate(w, at, wait, "too many connects from this address")
			return
		}
	}
	// A slot is taken before anything else is spent on the handshake, and
	// given back unless a socket holds it (closed gives it back then).
	if !e.takeSocket() {
		e.stats.refusedFull.Add(1)
		w.Header().Set("Retry-After", "5")
		e.refuse(w, at, 0, &sessiond.Error{Code: sessiond.CodeUnavailable, Message: "this node holds its most sockets (websocket.max_sockets); connect elsewhere or later"})
		return
	}
	held := false
	defer func() {
		if !held {
			e.sockets.Add(-1)
		}
	}()
	cred := bearer(r)
	if cred == "" {
		cred = q.Get("token")
	}
	if cred == "" {
		e.stats.refused.Add(1)
		e.refuse(w, at, 0, &sessiond.Error{Code: sessiond.CodeUnauthorized, Message: "missing credential: Authorization: Bearer <jwt> or ?token=<jwt>"})
		return
	}
	subject, expires, err := e.verify(ctx, cred)
	if err != nil {
		e.stats.refused.Add(1)
		switch sessiond.ErrorCode(err) {
		case sessiond.CodeUnauthorized:
		case sessiond.CodeUnavailable: // the signing keys are not loaded yet: its message says so
			w.Header().Set("Retry-After", "5")
		default:
			e.log.Error("verifying a credential", "err", err)
			err = &sessiond.Error{Code: sessiond.CodeUnavailable, Message: "cannot verify credentials now"}
		}
		e.refuse(w, at, 0, err)
		return
	}
	if wait, ok := e.bySubject.Take(subject); !ok {
		e.refuseRate(w, at, wait, "too many connects for this subject")
		return
	}
	if !isUpgrade(r) {
		e.stats.refused.Add(1)
		e.refuse(w, at, 0, &sessiond.Error{Code: sessiond.CodeInvalidArgument, Field: "Upgrade",
			Message: "expected a WebSocket handshake (Upgrade: websocket, Sec-WebSocket-Key, Sec-WebSocket-Version: 13)"})
		return
	}
	req := sessiond.ConnectRequest{
		Subject: subject,
		Token:   r.Header.Get("X-Session-Token"),
		Device: sessiond.Device{
			ID:   firstOf(q.Get("device_id"), r.Header.Get("X-Device-Id")),
			Type: firstOf(q.Get("device_type"), r.Header.Get("X-Device-Type")),
			Name: firstOf(q.Get("device_name"), r.Header.Get("X-Device-Name")),
		},
		Kind:      sessiond.KindWebSocket,
		ClientIP:  clientIP,
		UserAgent: r.UserAgent(),
	}
	req.Device.IP, req.Device.UserAgent = req.ClientIP, req.UserAgent

	var connected *sessiond.Connected
	if !byMessage {
		if connected, err = e.m.Connect(ctx, req); err != nil {
			e.stats.refused.Add(1)
			e.refuse(w, at, 0, err)
			return
		}
	}
	socket, err := e.upgrader.Upgrade(w, r)
	if err != nil {
		// The upgrader answered the client already.
		if connected != nil {
			e.detach(connected.Conn.ID, sessiond.CloseCause{Reason: sessiond.ClosedLost})
		}
		at.failed()
		return
	}
	c := &conn{e: e, ws: socket, subject: subject}
	now := e.clock.Now().UnixNano()
	c.lastSeen.Store(now)
	c.setCredential(expires, now)
	socket.Session().Store("", c)
	// Counted under e.mu, where Shutdown marks the edge closing before it
	// collects the sockets to close and waits for them: a socket upgraded
	// after that is not counted (an Add after the Wait began) and closes
	// by itself below, once it is registered.
	e.mu.Lock()
	c.counted = !e.closing.Load()
	if c.counted {
		e.live.Add(1)
	}
	e.mu.Unlock()
	held = true // the socket gives the slot back when it closes
	if byMessage {
		// The attempt goes on until the attach message is handled, or
		// the socket closes.
		c.pending = &pendingAttach{req: req, at: at}
		e.mu.Lock()
		e.pending[c] = struct{}{}
		e.mu.Unlock()
		c.timer = e.clock.AfterFunc(e.attachTimeout, func() {
			if c.isPending() {
				c.close(wire.CloseBadRequest)
			}
		})
	} else {
		err = c.attached(ctx, connected)
	}
	if !c.counted {
		c.close(wire.CloseGoingAway)
	}
	if !byMessage {
		at.ended(c, connected.Created, err)
	}
	go socket.ReadLoop()
}

// refuse answers a handshake with err (wire.WriteErrorStatus) and ends its
// attempt.
func (e *Edge) refuse(w http.ResponseWriter, at attempt, status int, err error) {
	wire.WriteErrorStatus(w, status, err)
	at.refused(sessiond.ErrorCode(err))
}

// Defaults of the edge's limits.
const (
	// DefaultMaxSockets caps the sockets of a node whose Config sets no
	// MaxSockets. The server sets it from its file descriptor limit.
	DefaultMaxSockets = 10_000
	// DefaultConnectsPerSubject is how many handshakes one subject may
	// make per second.
	DefaultConnectsPerSubject = 10
	// DefaultConnectsPerAddress is how many handshakes one client address
	// may make per second: many clients may share one address (a NAT), and
	// all reconnect at once after a node restarts.
	DefaultConnectsPerAddress = 200
	// rateKeys bounds the subjects and addresses the rate limits remember
	// at once.
	rateKeys = 100_000
)

// takeSocket takes a socket slot if one is free.
func (e *Edge) takeSocket() bool {
	for {
		n := e.sockets.Load()
		if n >= e.maxSockets {
			return false
		}
		if e.sockets.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// refuseRate answers a handshake over a rate limit: 429, with how many
// seconds to wait.
func (e *Edge) refuseRate(w http.ResponseWriter, at attempt, wait time.Duration, msg string) {
	e.stats.refusedRate.Add(1)
	wire.WriteRateLimited(w, wait, msg+"; retry later")
	at.refused(sessiond.CodeRateLimited)
}

// Shutdown closes every socket with 1001 (going away: reconnect), detaches
// them (their sessions become disconnected and resume within their grace),
// and refuses new connections. It waits for the closes or for ctx.
func (e *Edge) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	already := e.closing.Swap(true)
	e.mu.Unlock()
	if already {
		return nil
	}
	e.watchCancel()
	<-e.watchDone
	defer e.detacher.stop() // after the sockets' own detaches
	e.mu.Lock()
	all := make([]*conn, 0, len(e.conns)+len(e.pending))
	for _, c := range e.conns {
		all = append(all, c)
	}
	for c := range e.pending {
		all = append(all, c)
	}
	e.mu.Unlock()
	for _, c := range all {
		c.close(wire.CloseGoingAway)
	}
	done := make(chan struct{})
	go func() {
		e.live.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ws: shutdown: %d connections still closing: %w", e.Open(), ctx.Err())
	}
}

// Open returns how many connections are open on this node.
func (e *Edge) Open() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.conns) + len(e.pending)
}

// detach tells the engine a connection is gone and why, retrying until it
// lands. It runs on the goroutine of the closing socket, which ends
// anyway, so it may wait for the store.
func (e *Edge) detach(connID string, why sessiond.CloseCause) { e.detacher.detach(connID, why) }

// watch closes local connections that a connection on another engine
// replaced. (Replacements made here are closed at once, in attached.)
func (e *Edge) watch(ctx context.Context) {
	defer close(e.watchDone)
	after := sessiond.FromNow
	for failed := 0; ctx.Err() == nil; {
		sub, err := e.m.Subscribe(ctx, after)
		if err != nil {
			// Every subscriber slot taken (max_subscribers), or the
			// engine closing: replaced sockets go unclosed until this
			// succeeds, so it is retried, and said.
			if failed++; failed == 1 {
				e.log.Error("the edge cannot follow the engine's events; replaced sockets stay open until it can", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(time.Duration(failed)*100*time.Millisecond, 5*time.Second)):
			}
			continue
		}
		if failed > 0 {
			e.log.Info("the edge follows the engine's events again", "failed", failed)
			failed = 0
		}
		for {
			ev, err := sub.Next(ctx)
			if err != nil {
				break
			}
			after = sub.Cursor()
			for _, id := range ev.Replaced {
				e.mu.Lock()
				c := e.conns[id]
				e.mu.Unlock()
				if c != nil {
					c.close(wire.CloseReplaced)
				}
			}
		}
		sub.Close()
	}
}

// isUpgrade reports whether r is a WebSocket handshake the upgrader can
// accept, so that nothing is attached for one it would refuse.
func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") &&
		r.Header.Get("Sec-WebSocket-Key") != "" && r.Header.Get("Sec-WebSocket-Version") == "13"
}

func bearer(r *http.Request) string {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(cred)
}

// originAllowed reports whether r's Origin, if it has one, is allowed.
func (e *Edge) originAllowed(r *http.Request) bool {
	if e.origins == nil {
		return true
	}
	origins := r.Header.Values("Origin")
	if len(origins) == 0 {
		return true // not a browser
	}
	if len(origins) > 1 {
		return false
	}
	norm, err := ParseOrigin(origins[0])
	return err == nil && e.origins[norm]
}

// ParseOrigin checks that s is a web origin, "scheme://host[:port]" with
// scheme http or https (also ws and wss) and no path, query or user, and
// returns it in the form compared against the Origin header: lower case,
// without the scheme's default port.
func ParseOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	bad := func(why string) error {
		return fmt.Errorf("%q is not an origin like https://app.example.com[:port]: %s", s, why)
	}
	switch {
	case err != nil:
		return "", bad("it does not parse")
	case u.Scheme == "" || u.Host == "":
		return "", bad("it needs a scheme and a host")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
		return "", bad("it has more than scheme, host and port")
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	var defaultPort string
	switch scheme {
	case "https", "wss":
		defaultPort = ":443"
	case "http", "ws":
		defaultPort = ":80"
	default:
		return "", bad("the scheme is not http or https")
	}
	return scheme + "://" + strings.TrimSuffix(host, defaultPort), nil
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// gws plumbing.

// OnOpen implements gws.Event; the ack is written before the read loop.
func (e *Edge) OnOpen(*gws.Conn) {}

// OnClose implements gws.Event.
func (e *Edge) OnClose(socket *gws.Conn, err error) {
	if c := connOf(socket); c != nil {
		c.closed(err)
	}
}

// OnPing implements gws.Event.
func (e *Edge) OnPing(socket *gws.Conn, payload []byte) {
	if c := connOf(socket); c != nil {
		c.heard()
		c.write(func() error { return socket.WritePong(payload) })
	}
}

// OnPong implements gws.Event.
func (e *Edge) OnPong(socket *gws.Conn, _ []byte) {
	if c := connOf(socket); c != nil {
		e.stats.pongs.Add(1)
		c.heard()
	}
}

// OnMessage implements gws.Event.
func (e *Edge) OnMessage(socket *gws.Conn, msg *gws.Message) {
	defer func() { _ = msg.Close() }() // returns its buffer to a pool; cannot fail
	if c := connOf(socket); c != nil {
		c.message(msg)
	}
}

// slot is a one-value gws.SessionStorage: the connection's state. gws's
// default storage is a map per connection, which idle sockets do not need.
type slot struct{ c *conn }

func (s *slot) Len() int { return 1 }
func (s *slot) Load(string) (any, bool) {
	return s.c, s.c != nil
}
func (s *slot) Delete(string)         { s.c = nil }
func (s *slot) Store(_ string, v any) { s.c, _ = v.(*conn) }
func (s *slot) Range(f func(string, any) bool) {
	if s.c != nil {
		f("", s.c)
	}
}

func connOf(socket *gws.Conn) *conn {
	s, _ := socket.Session().(*slot)
	if s == nil {
		return nil
	}
	return s.c
}

type gwsLogger struct{ l *slog.Logger }

func (g gwsLogger) Error(v ...any) { g.l.Error(fmt.Sprint(v...), "component", "websocket") }

// jsonMsg encodes a server message.
func jsonMsg(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // our own message types always encode
	}
	return b
}

// jitter spreads pings over an interval; it needs no cryptographic randomness.
func jitter(d time.Duration) time.Duration { return time.Duration(rand.Int64N(int64(d)) + 1) } //nolint:gosec // G404
