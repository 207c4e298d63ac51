// Package httpapi serves the REST API under /v1, server-sent events, and
// the health, readiness and metrics endpoints. docs/openapi.yaml describes
// it; a test keeps the two in agreement.
package httpapi

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/docs"
	"github.com/sessiond/sessiond/internal/ratelimit"
	"github.com/sessiond/sessiond/internal/realip"
	"github.com/sessiond/sessiond/internal/tracing"
	"github.com/sessiond/sessiond/wire"
)

// Config configures a Server.
type Config struct {
	// Manager serves the sessions. Required.
	Manager *sessiond.Manager
	// APIKey authenticates admin calls (every /v1 route), as a bearer
	// token. Required.
	APIKey string
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Metrics, if set, is served at /metrics without authentication.
	Metrics http.Handler
	// Observe, if set, is called after each request with its route pattern
	// (such as "GET /v1/sessions/{id}"), status and duration.
	Observe func(route string, status int, d time.Duration)
	// Version is reported by /v1/stats.
	Version string
	// SSEKeepAlive is how often an idle event stream gets a comment line,
	// so proxies keep it open. 0 means 15s.
	SSEKeepAlive time.Duration
	// WriteTimeout bounds writing a response, and each event of a stream:
	// a client that stops reading is cut. 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Connect, if set, serves GET /v1/connect (the WebSocket edge), which
	// authenticates with its own credentials rather than the API key.
	Connect http.Handler
	// Console, if set, serves GET and HEAD /console and /console/...
	// (the web console, package console) without the API key: the page is
	// public, and every API call it makes sends the key.
	Console http.Handler
	// History, if set, serves GET /v1/sessions/{id}/history and GET
	// /v1/subjects/{subject}/history; without it they answer 404.
	History sessiond.HistoryReader
	// EdgeStats, if set, adds this node's WebSocket counts to /v1/stats.
	EdgeStats func() wire.WebSocketStats
	// Checks, if set, are parts of the server that may work or not while
	// it serves (the WebSocket edge's signing keys): /readyz lists each by
	// name with a detail, and answers 200 with status "degraded" while one
	// is not ok, since the rest of the API still serves.
	Checks func() map[string]wire.Check

	// ClientIP tells the address of the client behind a request, for the
	// access log and the limit on failed API key attempts: the peer's
	// address (a realip.Resolver trusting no proxy).
	ClientIP func(*http.Request) string
	// AccessLog, if set, gets one info line per request when it is
	// answered: method, path, route pattern, status, duration, client
	// address, bytes written, and for routes naming a session its hashed id
	// (sessiond.LogID). Never a query string, a token or a raw session id:
	// the path of a route with parameters is logged as its pattern, a path
	// no route takes up to its first segment that is not a word of the
	// routes ("/v1/sessions/…"). A
	// WebSocket handshake is logged once, when the upgrade answers.
	AccessLog *slog.Logger

	// AuthFailureLimit is how many failed API key attempts (missing or
	// wrong key) one client address may make per AuthFailureWindow. Past
	// it, every admin request from that address is refused with 429
	// rate_limited and a Retry-After header, even with the right key,
	// until the window ends. Zero means DefaultAuthFailureLimit (10);
	// negative turns the limit off.
	AuthFailureLimit int
	// AuthFailureWindow is the window of AuthFailureLimit, opened by an
	// address's first failure: DefaultAuthFailureWindow (1m).
	AuthFailureWindow time.Duration
	// AuthFailureAddresses bounds how many addresses the limit remembers:
	// DefaultAuthFailureAddresses (10000). When full, the address whose
	// window opened first is forgotten.
	AuthFailureAddresses int
	// AuthFailed, if set, is called for each admin request refused for its
	// key: limited is false for a missing or wrong key, true for a request
	// refused by AuthFailureLimit.
	AuthFailed func(limited bool)
	// Clock times the windows of AuthFailureLimit: sessiond.SystemClock.
	Clock sessiond.Clock

	// TracerProvider, if set, traces every request: one server span each,
	// named by its route's pattern ("GET /v1/sessions/{id}"), continuing
	// the trace of an incoming W3C traceparent header, with the method,
	// route, status and, on an error, its code (error.type); the engine's
	// and the store's work for it carries the span in the request's
	// context. Never the path, the query, a token or a session id. Nil
	// means no tracing: nothing of it runs.
	TracerProvider trace.TracerProvider
}

// Server is the HTTP edge of a Manager.
type Server struct {
	m         *sessiond.Manager
	history   sessiond.HistoryReader
	keyHash   [sha256.Size]byte
	log       *slog.Logger
	observe   func(string, int, time.Duration)
	edgeStats func() wire.WebSocketStats
	checks    func() map[string]wire.Check
	clientIP  func(*http.Request) string
	access    *slog.Logger
	authLimit *ratelimit.Windows // failed API key attempts per address; nil: off
	authFail  func(limited bool)
	version   string
	keepAlive time.Duration
	writeTO   time.Duration
	started   time.Time
	mux       *http.ServeMux
	handler   http.Handler
	tracer    trace.Tracer // nil: tracing off
	ready     atomic.Bool
	closing   chan struct{}
	closed    atomic.Bool
}

// Route is one endpoint of the API.
type Route struct {
	Method, Path string
	Admin        bool // needs the API key
	handle       func(*Server, http.ResponseWriter, *http.Request) error
}

// Routes lists every endpoint the server answers.
func Routes() []Route {
	return []Route{
		{"POST", "/v1/sessions", true, (*Server).create},
		{"GET", "/v1/sessions", true, (*Server).list},
		{"POST", "/v1/sessions/validate", true, (*Server).validate},
		{"GET", "/v1/sessions/{id}", true, (*Server).get},
		{"DELETE", "/v1/sessions/{id}", true, (*Server).revoke},
		{"POST", "/v1/sessions/{id}/rotate", true, (*Server).rotate},
		{"POST", "/v1/sessions/{id}/hibernate", true, (*Server).hibernate},
		{"POST", "/v1/sessions/{id}/wake", true, (*Server).wake},
		{"GET", "/v1/subjects/{subject}/sessions", true, (*Server).listSubject},
		{"DELETE", "/v1/subjects/{subject}/sessions", true, (*Server).revokeSubject},
		{"GET", "/v1/sessions/{id}/history", true, (*Server).sessionHistory},
		{"GET", "/v1/subjects/{subject}/history", true, (*Server).subjectHistory},
		{"POST", "/v1/sessions/{id}/connections", true, (*Server).addConnection},
		{"GET", "/v1/sessions/{id}/connections", true, (*Server).listConnections},
		{"POST", "/v1/connections/{id}/heartbeat", true, (*Server).heartbeat},
		{"DELETE", "/v1/connections/{id}", true, (*Server).removeConnection},
		{"GET", "/v1/stats", true, (*Server).stats},
		{"GET", "/v1/nodes", true, (*Server).nodes},
		{"GET", "/v1/events", true, (*Server).events},
		{"GET", "/v1/openapi.yaml", false, (*Server).openapi},
		{"GET", "/healthz", false, (*Server).healthz},
		{"GET", "/readyz", false, (*Server).readyz},
		{"GET", "/metrics", false, (*Server).metrics},
	}
}

// New returns a Server. It is not ready (readyz answers 503) until SetReady.
func New(cfg Config) (*Server, error) {
	if cfg.Manager == nil {
		return nil, errors.New("httpapi: Config.Manager is required")
	}
	if cfg.APIKey == "" {
		return nil, errors.New("httpapi: Config.APIKey is required")
	}
	s := &Server{
		m:         cfg.Manager,
		history:   cfg.History,
		keyHash:   sha256.Sum256([]byte(cfg.APIKey)),
		log:       cfg.Logger,
		observe:   cfg.Observe,
		edgeStats: cfg.EdgeStats,
		checks:    cfg.Checks,
		clientIP:  cfg.ClientIP,
		access:    cfg.AccessLog,
		authFail:  cfg.AuthFailed,
		version:   cfg.Version,
		keepAlive: cfg.SSEKeepAlive,
		writeTO:   cfg.WriteTimeout,
		started:   time.Now(),
		mux:       http.NewServeMux(),
		closing:   make(chan struct{}),
		tracer:    tracing.Tracer(cfg.TracerProvider, "github.com/sessiond/sessiond/httpapi"),
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.keepAlive <= 0 {
		s.keepAlive = 15 * time.Second
	}
	if s.writeTO <= 0 {
		s.writeTO = DefaultWriteTimeout
	}
	if s.clientIP == nil {
		s.clientIP = realip.New(nil).ClientIP
	}
	if s.authFail == nil {
		s.authFail = func(bool) {}
	}
	if cfg.AuthFailureLimit >= 0 {
		limit, window, size := cfg.AuthFailureLimit, cfg.AuthFailureWindow, cfg.AuthFailureAddresses
		if limit == 0 {
			limit = DefaultAuthFailureLimit
		}
		if window <= 0 {
			window = DefaultAuthFailureWindow
		}
		if size <= 0 {
			size = DefaultAuthFailureAddresses
		}
		clock := cfg.Clock
		if clock == nil {
			clock = sessiond.SystemClock{}
		}
		s.authLimit = ratelimit.New(limit, window, size, clock.Now)
	}
	metricsHandler := cfg.Metrics
	for _, rt := range Routes() {
		pattern := rt.Method + " " + rt.Path
		var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := rt.handle(s, w, r); err != nil {
				s.writeError(w, r, err)
			}
		})
		if rt.Path == "/metrics" && metricsHandler != nil {
			h = metricsHandler
		}
		if rt.Admin {
			h = s.requireKey(h)
		}
		s.mux.Handle(pattern, s.writeDeadline(h))
	}
	if cfg.Connect != nil {
		// The edge bounds each write on the socket itself.
		s.mux.Handle("GET /v1/connect", cfg.Connect)
	}
	if cfg.Console != nil {
		// GET patterns take HEAD too.
		s.mux.Handle("GET /console", s.writeDeadline(cfg.Console))
		s.mux.Handle("GET /console/", s.writeDeadline(cfg.Console))
	}
	s.mux.Handle("/", s.writeDeadline(http.HandlerFunc(s.unmatched)))
	s.handler = s.cleanPaths(s.mux)
	if s.observe != nil || s.access != nil || s.tracer != nil {
		s.handler = s.measure(s.handler)
	}
	return s, nil
}

// DefaultWriteTimeout bounds writing one response or one streamed event.
const DefaultWriteTimeout = 10 * time.Second

// writeDeadline bounds the writing of every answer next gives, refusals
// included: a client that stops reading does not hold the connection.
// Event streams move the deadline before each event.
func (s *Server) writeDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.setWriteDeadline(w)
		next.ServeHTTP(w, r)
	})
}

func (s *Server) setWriteDeadline(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.writeTO))
}

// cleanPaths refuses paths with empty, "." or ".." segments with a JSON
// error, where the router would answer with a redirect to the cleaned
// path: no route of the API has them.
func (s *Server) cleanPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "" || p[0] != '/' || strings.Contains(p, "//") || strings.Contains(p+"/", "/./") || strings.Contains(p+"/", "/../") {
			s.setWriteDeadline(w)
			s.writeError(w, r, sessiond.Errorf(sessiond.CodeInvalidArgument, "path", "must not have empty, . or .. segments"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// SetReady sets what /readyz answers.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Close ends open event streams so that http.Server.Shutdown can finish,
// and makes /readyz answer 503. Register it with http.Server.RegisterOnShutdown.
func (s *Server) Close() {
	s.ready.Store(false)
	if !s.closed.Swap(true) {
		close(s.closing)
	}
}

// requireKey admits requests that carry the API key as a bearer token,
// unless their address has failed too often.
func (s *Server) requireKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The address's limit key, worked out only while some address is
		// refused, or on a failure.
		ip := ""
		if s.authLimit.Refusing() {
			ip = realip.LimitKey(s.clientIP(r))
		}
		if wait, limited := s.authLimit.Blocked(ip); ip != "" && limited {
			s.authFail(true)
			wire.WriteRateLimited(w, wait, "too many failed API key attempts from this address; retry after the Retry-After seconds")
			return
		}
		scheme, key, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
		got := sha256.Sum256([]byte(strings.TrimSpace(key)))
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], s.keyHash[:]) != 1 {
			if ip == "" {
				ip = realip.LimitKey(s.clientIP(r))
			}
			if ip != "" {
				s.authLimit.Add(ip)
			}
			s.authFail(false)
			w.Header().Set("WWW-Authenticate", `Bearer realm="sessiond"`)
			s.writeError(w, r, &sessiond.Error{Code: sessiond.CodeUnauthorized, Message: "missing or wrong API key (Authorization: Bearer <key>)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// unmatched answers requests no route matched: 405 if the path exists with
// another method, else 404.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{"GET", "POST", "DELETE", "PUT", "PATCH"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		if sw, ok := w.(*statusWriter); ok {
			// For the access log: the path as its pattern, without the
			// values in it (such as a session id).
			probe := r.Clone(r.Context())
			probe.Method = allow[0]
			_, pattern := s.mux.Handler(probe)
			_, sw.template, _ = strings.Cut(pattern, " ")
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeError(w, r, &sessiond.Error{Code: wire.CodeMethodNotAllowed, Message: r.Method + " is not allowed here; use " + strings.Join(allow, ", ")})
		return
	}
	s.writeError(w, r, &sessiond.Error{Code: wire.CodeRouteNotFound, Message: "no such route: " + r.URL.Path})
}

type statusWriter struct {
	http.ResponseWriter
	status   int
	bytes    int64
	template string        // set by unmatched: the pattern of the path, for the log
	code     sessiond.Code // of the error answered, if one (wire.CodeRecorder)
}

// RecordCode implements wire.CodeRecorder: the code goes on the request's
// span.
func (w *statusWriter) RecordCode(code sessiond.Code) { w.code = code }

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack lets the WebSocket edge take the connection; upgrade libraries
// assert http.Hijacker rather than use a ResponseController.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.status = http.StatusSwitchingProtocols
	}
	return conn, rw, err
}

// measure reports each request to Observe and the access log, and traces
// it.
func (s *Server) measure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		var span trace.Span
		if s.tracer != nil {
			var ctx context.Context
			ctx, span = s.startSpan(r)
			r = r.WithContext(ctx) // the router sets this request's Pattern
		}
		next.ServeHTTP(sw, r)
		d := time.Since(start)
		if sw.status == 0 {
			sw.status = http.StatusOK // what net/http answers for a handler that wrote nothing
		}
		route := r.Pattern
		if route == "" || route == "/" {
			route = "unmatched"
		}
		if span != nil {
			endSpan(span, r, sw)
		}
		if s.observe != nil {
			s.observe(route, sw.status, d)
		}
		if s.access != nil {
			s.logRequest(r, route, sw, d)
		}
	})
}

// routeWords are the segments the routes' paths are made of ("v1",
// "sessions", ...), not their wildcards.
var routeWords = func() map[string]bool {
	words := map[string]bool{"connect": true}
	for _, rt := range Routes() {
		for w := range strings.SplitSeq(strings.Trim(rt.Path, "/"), "/") {
			if !strings.HasPrefix(w, "{") {
				words[w] = true
			}
		}
	}
	return words
}()

// knownPrefix is how the access log shows a path no route took: its
// leading segments while they are words of the routes, then "/…" for the
// rest, which may hold an id or a token ("/v1/sessions/…").
func knownPrefix(p string) string {
	end := 0
	for end < len(p) {
		next := strings.IndexByte(p[end+1:], '/')
		if next < 0 {
			next = len(p) - end - 1
		}
		if !routeWords[p[end+1:end+1+next]] {
			return p[:end] + "/…"
		}
		end += 1 + next
	}
	return p
}

// logRequest writes the access log line of a request (see Config.AccessLog).
func (s *Server) logRequest(r *http.Request, route string, sw *statusWriter, d time.Duration) {
	_, path, _ := strings.Cut(route, " ") // the route's pattern, without the values in it
	switch {
	case sw.template != "":
		path = sw.template
	case route == "unmatched":
		path = knownPrefix(r.URL.Path)
	}
	attrs := make([]slog.Attr, 0, 9)
	attrs = append(attrs,
		slog.String("method", r.Method),
		slog.String("path", path),
		slog.String("route", route),
		slog.Int("status", sw.status),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("client_ip", s.clientIP(r)),
		slog.Int64("bytes", sw.bytes),
	)
	if strings.Contains(route, " /v1/sessions/{id}") {
		attrs = append(attrs, slog.String("sid", sessiond.LogID(r.PathValue("id"))))
	}
	s.access.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) error {
	var body wire.CreateRequest
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	req, err := createRequest(&body)
	if err != nil {
		return err
	}
	c, err := s.m.Create(r.Context(), req)
	if err != nil {
		return err
	}
	resp := wire.CreateResponse{ID: c.Session.ID, Token: c.Token, Session: c.Session}
	for _, e := range c.Evicted {
		resp.Evicted = append(resp.Evicted, e.ID)
	}
	w.Header().Set("Location", "/v1/sessions/"+c.Session.ID)
	w.Header().Set("Cache-Control", "no-store")
	wire.WriteJSON(w, http.StatusCreated, resp)
	return nil
}

func (s *Server) validate(w http.ResponseWriter, r *http.Request) error {
	var body wire.ValidateRequest
	if err := decodeValidate(w, r, &body); err != nil {
		return err
	}
	if body.Token == "" {
		return sessiond.Errorf(sessiond.CodeInvalidArgument, "token", "is required")
	}
	var dev sessiond.Device
	if body.Device != nil {
		dev = *body.Device
	}
	validate := s.m.Validate
	if body.Wake {
		validate = s.m.ValidateAndWake
	}
	v, err := validate(r.Context(), body.Token, dev)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	wire.WriteJSON(w, http.StatusOK, wire.ValidateResponse{Session: v.Session, Token: v.Token})
	return nil
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.m.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, sess)
	return nil
}

func (s *Server) rotate(w http.ResponseWriter, r *http.Request) error {
	v, err := s.m.Rotate(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	wire.WriteJSON(w, http.StatusOK, wire.ValidateResponse{Session: v.Session, Token: v.Token})
	return nil
}

// hibernate and wake answer once the session's runtime did it (or failed
// to, within the policy's wake_timeout): longer than most calls, so the
// answer's write deadline starts then.
func (s *Server) hibernate(w http.ResponseWriter, r *http.Request) error {
	return s.transition(w, r, s.m.Hibernate)
}

func (s *Server) wake(w http.ResponseWriter, r *http.Request) error {
	return s.transition(w, r, s.m.Wake)
}

func (s *Server) transition(w http.ResponseWriter, r *http.Request, do func(context.Context, string) (*sessiond.Session, error)) error {
	sess, err := do(r.Context(), r.PathValue("id"))
	s.setWriteDeadline(w)
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, sess)
	return nil
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) error {
	if err := s.m.Revoke(r.Context(), r.PathValue("id"), sessiond.EndRevoked); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	query, err := listQuery(q)
	if err != nil {
		return err
	}
	query.Subject = q.Get("subject")
	page, err := s.m.List(r.Context(), query)
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, wire.ListResponse{Sessions: nonNil(page.Sessions), NextCursor: page.Next})
	return nil
}

// listQuery reads the state, limit and cursor of a list request.
func listQuery(q url.Values) (sessiond.Query, error) {
	query := sessiond.Query{Cursor: q.Get("cursor")}
	if v := q.Get("state"); v != "" || q.Has("state") {
		st, err := sessiond.ParseState(v)
		if err != nil {
			return query, err
		}
		query.State = st
	}
	n, err := pageLimit(q)
	query.Limit = n
	return query, err
}

// pageLimit reads the limit of a page: 1 to 1000, 0 when absent.
func pageLimit(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, sessiond.Errorf(sessiond.CodeInvalidArgument, "limit", "must be a number from 1 to 1000")
	}
	return n, nil
}

func (s *Server) listSubject(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if !q.Has("state") {
		for _, k := range []string{"limit", "cursor"} {
			if q.Has(k) {
				return sessiond.Errorf(sessiond.CodeInvalidArgument, k, "applies with state only: the live sessions come in one list")
			}
		}
		live, err := s.m.ListBySubject(r.Context(), r.PathValue("subject"))
		if err != nil {
			return err
		}
		wire.WriteJSON(w, http.StatusOK, wire.ListResponse{Sessions: nonNil(live)})
		return nil
	}
	query, err := listQuery(q)
	if err != nil {
		return err
	}
	query.Subject = r.PathValue("subject")
	if query.Subject == "" {
		return sessiond.Errorf(sessiond.CodeInvalidArgument, "subject", "is required")
	}
	page, err := s.m.List(r.Context(), query)
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, wire.ListResponse{Sessions: nonNil(page.Sessions), NextCursor: page.Next})
	return nil
}

func (s *Server) revokeSubject(w http.ResponseWriter, r *http.Request) error {
	n, err := s.m.RevokeSubject(r.Context(), r.PathValue("subject"))
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, wire.RevokeSubjectResponse{Revoked: n})
	return nil
}

func nonNil(s []*sessiond.Session) []*sessiond.Session {
	if s == nil {
		return []*sessiond.Session{}
	}
	return s
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) error {
	st, err := s.m.Stats(r.Context())
	if err != nil {
		return err
	}
	resp := wire.StatsResponse{
		Sessions: make(map[string]int, len(st.Sessions)), Total: st.Total, Subjects: st.Subjects,
		Scheduled: st.Scheduled, Uptime: time.Since(s.started).Round(time.Second).String(), Version: s.version,
		Connections: wire.ConnectionStats{ByKind: st.Connections},
	}
	for state, n := range st.Sessions {
		resp.Sessions[state.String()] = n
	}
	if resp.Connections.ByKind == nil {
		resp.Connections.ByKind = map[string]int{}
	}
	for _, n := range st.Connections {
		resp.Connections.Total += n
	}
	if s.edgeStats != nil {
		edge := s.edgeStats()
		resp.WebSocket = &edge
	}
	wire.WriteJSON(w, http.StatusOK, resp)
	return nil
}

// nodes lists the nodes sharing the store.
func (s *Server) nodes(w http.ResponseWriter, r *http.Request) error {
	nodes, err := s.m.Nodes(r.Context())
	if err != nil {
		return err
	}
	resp := wire.NodesResponse{Nodes: make([]wire.Node, len(nodes))}
	for i, n := range nodes {
		resp.Nodes[i] = wire.Node{Node: n.Node, Dead: n.Dead, Self: n.Self,
			Connections: n.Connections, ConnectionsMore: n.ConnectionsMore}
		if !n.Until.IsZero() {
			until := n.Until.UTC()
			resp.Nodes[i].Until = &until
		}
	}
	wire.WriteJSON(w, http.StatusOK, resp)
	return nil
}

// openapi serves the API's OpenAPI document, as this build has it.
func (s *Server) openapi(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = io.WriteString(w, docs.OpenAPI)
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	wire.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if !s.ready.Load() {
		return &sessiond.Error{Code: sessiond.CodeUnavailable, Message: "not ready"}
	}
	resp := wire.ReadyResponse{Status: "ready"}
	if s.checks != nil {
		resp.Checks = s.checks()
		for _, c := range resp.Checks {
			if !c.OK {
				resp.Status = "degraded"
			}
		}
	}
	wire.WriteJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	return &sessiond.Error{Code: wire.CodeRouteNotFound, Message: "metrics are not enabled"}
}
