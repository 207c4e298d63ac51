// Package sessionhttp is net/http middleware that protects handlers with
// sessiond sessions, as SuperTokens' VerifySession or Spring Session's
// filter do: it reads the session token from a cookie or the
// Authorization header, validates it (in process with a Manager, or over
// REST with a client), puts the session in the request's context, hands
// a rotated token back to the browser, and answers 401 to a request
// without a valid session.
//
//	mw := sessionhttp.New(sessionhttp.Config{Validate: sessionhttp.Client(c)})
//	mux.Handle("/app/", mw.Handler(app))
//	// in app: s, _ := sessionhttp.FromContext(r.Context())
//
// A login handler creates the session (Manager.Create or the REST API)
// and calls mw.SetToken(w, token); a logout revokes it and calls
// mw.ClearToken(w).
//
// Rotation: when a validation rotates the token (the policy's
// rotate_after), the new one replaces the old where it came from: the
// cookie is set again, or, for a token sent in Authorization, the answer
// carries it in the X-Session-Token header and the caller must use it
// from then on (the old one lasts the policy's rotation_grace).
package sessionhttp

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/wire"
)

// ValidateFunc validates a session token presented from a device, and
// returns its session and, when the validation rotated it, the new token.
// Manager and Client make one; errors are sessiond errors (their codes
// decide the answer: see Config.OnError).
type ValidateFunc func(ctx context.Context, token string, dev sessiond.Device) (s *sessiond.Session, rotated string, err error)

// Manager validates with an engine in this process.
func Manager(m *sessiond.Manager) ValidateFunc {
	return func(ctx context.Context, token string, dev sessiond.Device) (*sessiond.Session, string, error) {
		v, err := m.Validate(ctx, token, dev)
		if err != nil {
			return nil, "", err
		}
		return v.Session, v.Token, nil
	}
}

// Client validates over REST, with a server's admin API key.
func Client(c *client.Client) ValidateFunc {
	return func(ctx context.Context, token string, dev sessiond.Device) (*sessiond.Session, string, error) {
		v, err := c.Validate(ctx, token, &dev)
		if err != nil {
			return nil, "", err
		}
		return v.Session, v.Token, nil
	}
}

// Defaults of a Config's zero fields.
const (
	DefaultCookieName = "sessiond_session"
	// TokenHeader carries a rotated token back to a caller that sent its
	// token in Authorization.
	TokenHeader = "X-Session-Token"
)

// Config configures the middleware. Only Validate is required.
type Config struct {
	Validate ValidateFunc
	// CookieName is the cookie holding the token: DefaultCookieName.
	CookieName string
	// CookiePath and CookieDomain scope the cookie: "/" and the host.
	CookiePath, CookieDomain string
	// Insecure lets the cookie travel over plain HTTP (development on
	// localhost); by default it is Secure.
	Insecure bool
	// SameSite of the cookie: http.SameSiteLaxMode by default.
	SameSite http.SameSite
	// Device says which device a request comes from, for policies that
	// bind sessions to devices: by default the client's address (the
	// connection's peer) and its User-Agent, with no device id.
	Device func(*http.Request) sessiond.Device
	// Optional lets requests without a token through, with no session in
	// their context; a token that does not validate is still refused.
	Optional bool
	// OnError answers a request refused: by default 401 with the API's
	// error body ({"error":{"code":...}}) for a missing, unknown, expired,
	// ended, reused or mismatched session, 503 for a server or store that
	// is unavailable, 500 for anything else.
	OnError func(w http.ResponseWriter, r *http.Request, err error)
}

// Middleware protects handlers. Make it with New.
type Middleware struct{ cfg Config }

// New returns the middleware. It panics if cfg.Validate is nil, a
// programming error.
func New(cfg Config) *Middleware {
	if cfg.Validate == nil {
		panic("sessionhttp: Config.Validate is required")
	}
	if cfg.CookieName == "" {
		cfg.CookieName = DefaultCookieName
	}
	if cfg.CookiePath == "" {
		cfg.CookiePath = "/"
	}
	if cfg.SameSite == 0 {
		cfg.SameSite = http.SameSiteLaxMode
	}
	if cfg.Device == nil {
		cfg.Device = peerDevice
	}
	if cfg.OnError == nil {
		cfg.OnError = writeError
	}
	return &Middleware{cfg: cfg}
}

// ErrNoToken is the error of a request that carries no session token.
var ErrNoToken = &sessiond.Error{Code: sessiond.CodeUnauthorized, Message: "no session token: log in"}

type ctxKey struct{}

// FromContext returns the session the middleware validated for the
// request, if any.
func FromContext(ctx context.Context) (*sessiond.Session, bool) {
	s, ok := ctx.Value(ctxKey{}).(*sessiond.Session)
	return s, ok
}

// Handler wraps next: it runs only for requests with a valid session
// (or, with Optional, without a token).
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, fromCookie := m.token(r)
		if token == "" {
			if m.cfg.Optional {
				next.ServeHTTP(w, r)
				return
			}
			m.cfg.OnError(w, r, ErrNoToken)
			return
		}
		s, rotated, err := m.cfg.Validate(r.Context(), token, m.cfg.Device(r))
		if err != nil {
			if fromCookie && refused(err) {
				m.ClearToken(w) // it will never validate again
			}
			m.cfg.OnError(w, r, err)
			return
		}
		if rotated != "" {
			if fromCookie {
				m.SetToken(w, rotated)
			} else {
				w.Header().Set(TokenHeader, rotated)
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, s)))
	})
}

// token finds the request's token: Authorization: Bearer first, then the
// cookie.
func (m *Middleware) token(r *http.Request) (token string, fromCookie bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok), false
		}
	}
	if c, err := r.Cookie(m.cfg.CookieName); err == nil {
		return c.Value, true
	}
	return "", false
}

// SetToken sets the session cookie to token: after a login, and by the
// middleware itself after a rotation. The cookie is HttpOnly, Secure
// (unless Config.Insecure) and SameSite Lax (or Config.SameSite), and
// lasts as long as the browser does: the session's own ttl and idle
// timeout decide when it ends.
func (m *Middleware) SetToken(w http.ResponseWriter, token string) {
	http.SetCookie(w, m.cookie(token, 0))
}

// ClearToken removes the session cookie: after a logout, and by the
// middleware itself when the cookie's session is gone.
func (m *Middleware) ClearToken(w http.ResponseWriter) {
	http.SetCookie(w, m.cookie("", -1))
}

func (m *Middleware) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{ //nolint:gosec // G124: Secure unless the operator opts out (Config.Insecure), for development over plain HTTP
		Name: m.cfg.CookieName, Value: value, Path: m.cfg.CookiePath, Domain: m.cfg.CookieDomain,
		MaxAge: maxAge, HttpOnly: true, Secure: !m.cfg.Insecure, SameSite: m.cfg.SameSite,
	}
}

// refused reports whether err means the token will not validate again
// (as opposed to a fault of the server or the store).
func refused(err error) bool {
	switch sessiond.ErrorCode(err) {
	case sessiond.CodeNotFound, sessiond.CodeExpired, sessiond.CodeEnded, sessiond.CodeTokenReused,
		sessiond.CodeInvalidArgument:
		return true
	}
	return false
}

// writeError is the default OnError.
func writeError(w http.ResponseWriter, _ *http.Request, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNoToken) || refused(err) || sessiond.ErrorCode(err) == sessiond.CodeDeviceMismatch ||
		sessiond.ErrorCode(err) == sessiond.CodeUnauthorized:
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Bearer realm="session"`)
	case sessiond.ErrorCode(err) == sessiond.CodeUnavailable || sessiond.ErrorCode(err) == sessiond.CodeStoreUnavailable ||
		sessiond.ErrorCode(err) == sessiond.CodeRateLimited || errors.As(err, new(*url.Error)):
		// The session server or its store is down (or answered no
		// session error at all): say so, not "log in again".
		status = http.StatusServiceUnavailable
		err = &sessiond.Error{Code: sessiond.CodeUnavailable, Message: "the session server is unavailable"}
	}
	wire.WriteErrorStatus(w, status, err)
}

// peerDevice is the default Config.Device: the connection's peer address
// and the User-Agent. Behind a proxy, set Config.Device to read the
// client's address from where the proxy puts it.
func peerDevice(r *http.Request) sessiond.Device {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return sessiond.Device{IP: host, UserAgent: r.UserAgent()}
}
