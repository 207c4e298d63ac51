// Package httpapi serves the REST API under /v1, server-sent events, and
// the health, readiness and metrics endpoints. docs/openapi.yaml describes
// it; a test keeps the two in agreement.
package httpapi

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sessiond/sessiond"
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
	// Connect, if set, serves GET /v1/connect (the WebSocket edge), which
	// authenticates with its own credentials rather than the API key.
	Connect http.Handler
	// EdgeStats, if set, adds this node's WebSocket counts to /v1/stats.
	EdgeStats func() any
}

// Server is the HTTP edge of a Manager.
type Server struct {
	m         *sessiond.Manager
	keyHash   [sha256.Size]byte
	log       *slog.Logger
	observe   func(string, int, time.Duration)
	edgeStats func() any
	version   string
	keepAlive time.Duration
	started   time.Time
	mux       *http.ServeMux
	handler   http.Handler
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
		{"GET", "/v1/subjects/{subject}/sessions", true, (*Server).listSubject},
		{"DELETE", "/v1/subjects/{subject}/sessions", true, (*Server).revokeSubject},
		{"POST", "/v1/sessions/{id}/connections", true, (*Server).addConnection},
		{"GET", "/v1/sessions/{id}/connections", true, (*Server).listConnections},
		{"POST", "/v1/connections/{id}/heartbeat", true, (*Server).heartbeat},
		{"DELETE", "/v1/connections/{id}", true, (*Server).removeConnection},
		{"GET", "/v1/stats", true, (*Server).stats},
		{"GET", "/v1/events", true, (*Server).events},
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
		keyHash:   sha256.Sum256([]byte(cfg.APIKey)),
		log:       cfg.Logger,
		observe:   cfg.Observe,
		edgeStats: cfg.EdgeStats,
		version:   cfg.Version,
		keepAlive: cfg.SSEKeepAlive,
		started:   time.Now(),
		mux:       http.NewServeMux(),
		closing:   make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.keepAlive <= 0 {
		s.keepAlive = 15 * time.Second
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
		s.mux.Handle(pattern, h)
	}
	if cfg.Connect != nil {
		s.mux.Handle("GET /v1/connect", cfg.Connect)
	}
	s.mux.HandleFunc("/", s.unmatched)
	s.handler = s.mux
	if s.observe != nil {
		s.handler = s.measure(s.mux)
	}
	return s, nil
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

// requireKey admits requests that carry the API key as a bearer token.
func (s *Server) requireKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, key, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
		got := sha256.Sum256([]byte(strings.TrimSpace(key)))
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], s.keyHash[:]) != 1 {
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
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeError(w, r, &sessiond.Error{Code: CodeMethodNotAllowed, Message: r.Method + " is not allowed here; use " + strings.Join(allow, ", ")})
		return
	}
	s.writeError(w, r, &sessiond.Error{Code: CodeRouteNotFound, Message: "no such route: " + r.URL.Path})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

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
	return w.ResponseWriter.Write(b)
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

func (s *Server) measure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" || route == "/" {
			route = "unmatched"
		}
		s.observe(route, sw.status, time.Since(start))
	})
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) error {
	var body CreateRequest
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	req, err := body.toEngine()
	if err != nil {
		return err
	}
	c, err := s.m.Create(r.Context(), req)
	if err != nil {
		return err
	}
	resp := CreateResponse{ID: c.Session.ID, Token: c.Token, Session: c.Session}
	for _, e := range c.Evicted {
		resp.Evicted = append(resp.Evicted, e.ID)
	}
	w.Header().Set("Location", "/v1/sessions/"+c.Session.ID)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

func (s *Server) validate(w http.ResponseWriter, r *http.Request) error {
	var body ValidateRequest
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	if body.Token == "" {
		return sessiond.Errorf(sessiond.CodeInvalidArgument, "token", "is required")
	}
	var dev sessiond.Device
	if body.Device != nil {
		dev = *body.Device
	}
	v, err := s.m.Validate(r.Context(), body.Token, dev)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, ValidateResponse{Session: v.Session, Token: v.Token})
	return nil
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.m.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sess)
	return nil
}

func (s *Server) rotate(w http.ResponseWriter, r *http.Request) error {
	v, err := s.m.Rotate(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, ValidateResponse{Session: v.Session, Token: v.Token})
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
	query := sessiond.Query{Subject: q.Get("subject"), Cursor: q.Get("cursor")}
	if v := q.Get("state"); v != "" {
		st, err := sessiond.ParseState(v)
		if err != nil {
			return err
		}
		query.State = st
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return sessiond.Errorf(sessiond.CodeInvalidArgument, "limit", "must be a number from 1 to 1000")
		}
		query.Limit = n
	}
	page, err := s.m.List(r.Context(), query)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ListResponse{Sessions: nonNil(page.Sessions), NextCursor: page.Next})
	return nil
}

func (s *Server) listSubject(w http.ResponseWriter, r *http.Request) error {
	live, err := s.m.ListBySubject(r.Context(), r.PathValue("subject"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ListResponse{Sessions: nonNil(live)})
	return nil
}

func (s *Server) revokeSubject(w http.ResponseWriter, r *http.Request) error {
	n, err := s.m.RevokeSubject(r.Context(), r.PathValue("subject"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, RevokeSubjectResponse{Revoked: n})
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
	resp := StatsResponse{
		Sessions: make(map[string]int, len(st.Sessions)), Total: st.Total, Subjects: st.Subjects,
		Scheduled: st.Scheduled, Uptime: time.Since(s.started).Round(time.Second).String(), Version: s.version,
		Connections: ConnectionStats{ByKind: st.Connections},
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
		resp.WebSocket = s.edgeStats()
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if !s.ready.Load() {
		return &sessiond.Error{Code: sessiond.CodeUnavailable, Message: "not ready"}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	return &sessiond.Error{Code: CodeRouteNotFound, Message: "metrics are not enabled"}
}
