package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/sessiond/sessiond"
	sleep "github.com/sessiond/sessiond/internal/wait"
	"github.com/sessiond/sessiond/wire"
)

// WSState is where a WSConn is in its life. Each change is one WSEvent,
// in order:
//
//	connecting ──► connected ──► disconnected ──► reconnecting ──► connecting ...
//	     │  dial failed,  │                            ▲
//	     │  may pass      └─► ready ──► disconnected   │
//	     └─────────────────────────────────────────────┘
//	any of them ──► stopped (a terminal close code or refusal, or Close)
//
// Ready follows connected only when the connection woke a hibernated
// session (its Connected event has Waking set): it comes once the
// session's runtime woke it. A wake that failed closes the socket with
// wire.CloseWakeFailed, which reconnects (and wakes it again).
type WSState int32

// States of a WSConn.
const (
	WSConnecting   WSState = iota // dialing and waiting for the ack
	WSConnected                   // the ack came: attached to the session
	WSDisconnected                // the socket was lost or closed
	WSReconnecting                // waiting out a backoff before the next dial
	WSStopped                     // for good: a terminal error, or Close
	WSReady                       // a session this connection woke is awake
)

func (s WSState) String() string {
	switch s {
	case WSConnecting:
		return "connecting"
	case WSConnected:
		return "connected"
	case WSDisconnected:
		return "disconnected"
	case WSReconnecting:
		return "reconnecting"
	case WSStopped:
		return "stopped"
	case WSReady:
		return "ready"
	}
	return fmt.Sprintf("WSState(%d)", int32(s))
}

// WSEvent is one state change. Fields other than State are set for the
// states noted.
type WSEvent struct {
	State WSState
	// Attempt counts the retries since the last connection that was
	// acknowledged (or since DialWS): 0 for the first connect; 1 for the
	// first retry after a disconnect or a failed dial, and so on.
	// Connecting, Reconnecting.
	Attempt int
	// Wait is the backoff before the next dial. Reconnecting.
	Wait time.Duration
	// SessionID, ConnectionID and Resumed are the ack's. Connected, and
	// SessionID Ready.
	SessionID    string
	ConnectionID string
	Resumed      bool
	// Waking: the session was hibernated and this connection is waking
	// it; Ready follows when it is awake. Connected.
	Waking bool
	// Code and Reason are how the connection closed: the server's close
	// code and the reason text of its close frame, wire.CloseNormal when
	// Close closed it, wire.CloseAbnormal when it was lost without a close
	// frame. Disconnected.
	Code   wire.CloseCode
	Reason string
	// Err is the cause: of a lost connection (Disconnected), of the failed
	// dial being retried (Reconnecting), or of the stop (Stopped: ErrClosed
	// after Close, else the terminal error, as WSConn.Err).
	Err error
}

// Errors of a WSConn.
var (
	// ErrNotConnected: the connection is between sockets (reconnecting);
	// try again after the next WSConnected event.
	ErrNotConnected = errors.New("client: websocket not connected")
	// ErrClosed: Close stopped the connection.
	ErrClosed = errors.New("client: websocket closed")
)

// WSConfig configures DialWS. URL and Token are required; DeviceID or
// SessionToken choose what to attach to (neither: the subject's default
// device); zero values of the rest mean the defaults noted.
type WSConfig struct {
	// URL is the server: "ws://host:7600" or "wss://...", or the full
	// connect URL. A URL without a path gets /v1/connect; one without a
	// scheme gets ws://; http and https work as ws and wss.
	URL string
	// Token returns a fresh credential (a JWT). It is called for every
	// connect and reconnect, and when the server asks for a refresh. Its
	// errors are retried with backoff on connect; a failed refresh lets the
	// server close the connection when the credential expires (code 4001),
	// and the reconnect calls Token again.
	Token func(ctx context.Context) (string, error)

	// DeviceID selects device mode: the subject's session for this device
	// is found or created, and every reconnect comes back to it. Without a
	// DeviceID or a SessionToken it is device mode too, for the server's
	// default device: the subject's one session for clients that name
	// none. DeviceType and DeviceName describe the device (optional).
	DeviceID, DeviceType, DeviceName string
	// SessionToken selects session-token mode: the connection attaches to
	// the session of this token, created over REST. When the server rotates
	// the token on connect, the client uses the new one from then on
	// (WSConn.SessionToken).
	SessionToken string

	// Reconnect backoff: before retry n the client waits a random duration
	// between MinBackoff and min(MaxBackoff, MinBackoff*BackoffFactor^n).
	// Defaults 250ms, 30s and 2. The retry count starts again after a
	// connection is acknowledged.
	MinBackoff, MaxBackoff time.Duration
	BackoffFactor          float64
	// HandshakeTimeout bounds each connect: the credential, the dial, the
	// upgrade and the ack. Default 10s.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds the client's answer to a refresh: 10s. (Send and
	// Ping are bounded by their ctx.)
	WriteTimeout time.Duration

	// OnState receives every state change, in order, on the connection's
	// goroutine; it must return quickly and must not call Close (Close
	// waits for that goroutine: call it from another one). No call
	// happens after Done is closed.
	OnState func(WSEvent)
	// MessageBuffer is the length of the Messages queue: 64. Messages that
	// arrive while it is full are dropped and logged.
	MessageBuffer int
	// HTTPClient dials; nil means a client of the WSConn's own, whose idle
	// connections are closed when it stops.
	HTTPClient *http.Client
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// WSAck is the server's connected message: the first of every connection.
type WSAck struct {
	SessionID    string
	ConnectionID string
	// Resumed: the session existed before this connection.
	Resumed bool
	// State is the session's state: "active", or "waking" until a Ready
	// event (then "active").
	State             string
	HeartbeatInterval time.Duration
	HeartbeatTimeout  time.Duration
	// CredentialExpires is the JWT's expiry; zero if it has none.
	CredentialExpires time.Time
	// SessionToken is set when the server issued a token with this
	// connection (a session created now, or a token rotated); it is shown
	// once.
	SessionToken string
}

// WSConn is a WebSocket connection to a session that reconnects by itself.
// Its methods are safe for concurrent use.
type WSConn struct {
	cfg      WSConfig
	url      string
	log      *slog.Logger
	http     *http.Client
	ownHTTP  bool
	min, max time.Duration
	factor   float64
	timeout  time.Duration
	wtimeout time.Duration
	random   func() float64

	cancel    context.CancelFunc
	closeOnce sync.Once
	first     chan error  // DialWS waits here for the first ack or the stop
	connected bool        // the first ack came; run's goroutine only
	lastErr   error       // the last failed connect; read after done
	closed    atomic.Bool // Close was called
	done      chan struct{}
	msgs      chan json.RawMessage
	wg        sync.WaitGroup // goroutines of links (refreshes), joined before done
	state     atomic.Int32

	mu           sync.Mutex
	link         *link // the current socket, nil between sockets
	ack          WSAck // the last one
	sessionToken string
	credExpires  time.Time
	err          error // set before done is closed
}

// DialWS holds a live WebSocket to a session at GET /v1/connect
// (docs/protocol.md), reconnecting after every close whose code says so and
// resuming the same session within its disconnect grace:
//
//	c, err := client.DialWS(ctx, client.WSConfig{
//		URL:      "ws://127.0.0.1:7600",
//		Token:    func(ctx context.Context) (string, error) { return myJWT(ctx) },
//		DeviceID: "glasses-7",
//		OnState:  func(ev client.WSEvent) { log.Println(ev.State) },
//	})
//	if err != nil { ... }
//	defer c.Close(context.Background())
//	for msg := range c.Messages() { ... }
//
// DialWS connects and returns once the first connection is acknowledged,
// or with the error that stops it: a refusal before the upgrade (401, 403,
// 404, 409 but too_many_connections, 410 and other 4xx but 408 and 429, as *sessiond.Error with the
// server's code, as Client returns them), or a close code that does not
// allow a reconnect (a wire.CloseCode, such as wire.CloseSessionRevoked).
// Dial failures that may pass (network errors, 5xx, 503 while a server
// shuts down, a failing Token) are retried with backoff until ctx is done. ctx bounds only this first connect; the
// connection then lives until Close or a terminal error.
func DialWS(ctx context.Context, cfg WSConfig) (*WSConn, error) {
	c, err := newWSConn(cfg)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	go c.run(runCtx)
	select {
	case err := <-c.first:
		if err != nil {
			<-c.done
			return nil, err
		}
		return c, nil
	case <-ctx.Done():
		c.closeOnce.Do(func() {
			c.closed.Store(true)
			cancel()
		})
		<-c.done
		if err := c.lastErr; err != nil {
			return nil, fmt.Errorf("client: connecting to %s: %w (last attempt: %v)", c.url, ctx.Err(), err)
		}
		return nil, fmt.Errorf("client: connecting to %s: %w", c.url, ctx.Err())
	}
}

func newWSConn(cfg WSConfig) (*WSConn, error) {
	if cfg.URL == "" || cfg.Token == nil {
		return nil, errors.New("client: WSConfig.URL and WSConfig.Token are required")
	}
	if cfg.DeviceID != "" && cfg.SessionToken != "" {
		return nil, errors.New("client: WSConfig takes a DeviceID (device mode) or a SessionToken, not both")
	}
	u, err := connectURL(cfg)
	if err != nil {
		return nil, err
	}
	c := &WSConn{
		cfg: cfg, url: u, log: cfg.Logger, http: cfg.HTTPClient,
		min: cfg.MinBackoff, max: cfg.MaxBackoff, factor: cfg.BackoffFactor,
		timeout: cfg.HandshakeTimeout, wtimeout: cfg.WriteTimeout,
		random:       rand.Float64,
		done:         make(chan struct{}),
		first:        make(chan error, 1),
		sessionToken: cfg.SessionToken,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.http == nil {
		c.http = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		c.ownHTTP = true
	}
	if c.min <= 0 {
		c.min = 250 * time.Millisecond
	}
	if c.max <= 0 {
		c.max = 30 * time.Second
	}
	if c.max < c.min {
		return nil, fmt.Errorf("client: WSConfig.MaxBackoff (%v) is below MinBackoff (%v)", c.max, c.min)
	}
	if c.factor == 0 {
		c.factor = 2
	}
	if c.factor < 1 || math.IsNaN(c.factor) || math.IsInf(c.factor, 0) {
		return nil, fmt.Errorf("client: WSConfig.BackoffFactor must be at least 1 (got %v)", c.factor)
	}
	if c.timeout <= 0 {
		c.timeout = 10 * time.Second
	}
	if c.wtimeout <= 0 {
		c.wtimeout = 10 * time.Second
	}
	n := cfg.MessageBuffer
	if n <= 0 {
		n = 64
	}
	c.msgs = make(chan json.RawMessage, n)
	return c, nil
}

// connectURL is the configured URL with the connect path and the device
// parameters.
func connectURL(cfg WSConfig) (string, error) {
	raw := cfg.URL
	if !strings.Contains(raw, "://") {
		raw = "ws://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("client: WSConfig.URL: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
	default:
		return "", fmt.Errorf("client: WSConfig.URL: scheme %q is not ws, wss, http or https", u.Scheme)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/connect"
	}
	q := u.Query()
	for k, v := range map[string]string{"device_id": cfg.DeviceID, "device_type": cfg.DeviceType, "device_name": cfg.DeviceName} {
		if v != "" {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// SessionID returns the session of the last acknowledged connection.
func (c *WSConn) SessionID() string { return c.Ack().SessionID }

// Resumed reports whether the last acknowledged connection found its
// session existing (true) rather than creating it.
func (c *WSConn) Resumed() bool { return c.Ack().Resumed }

// Ack returns the last connected message.
func (c *WSConn) Ack() WSAck {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ack
}

// SessionToken returns the latest session token: in session-token mode the
// one the client attaches with (rotated by the server or not); in device
// mode the one issued when the session was created, if this client saw it.
func (c *WSConn) SessionToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessionToken
}

// CredentialExpires returns when the credential of the current connection
// expires (from the ack, then from each refreshed message); zero if it
// does not.
func (c *WSConn) CredentialExpires() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.credExpires
}

// State returns the current state.
func (c *WSConn) State() WSState { return WSState(c.state.Load()) }

// Messages returns the server's messages other than those of the protocol
// itself (connected, refresh, refreshed, pong and the errors answering the
// client's refreshes), such as errors answering Send. It is closed when the
// connection stops.
func (c *WSConn) Messages() <-chan json.RawMessage { return c.msgs }

// Done is closed when the connection has stopped for good and its
// goroutines have ended.
func (c *WSConn) Done() <-chan struct{} { return c.done }

// Err returns nil until Done is closed; then ErrClosed if Close stopped the
// connection, or the terminal error (a wire.CloseCode, *sessiond.Error).
func (c *WSConn) Err() error {
	select {
	case <-c.done:
	default:
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Send writes v as one JSON text message on the current socket. Between
// sockets it returns ErrNotConnected; nothing is queued. As with the
// underlying library, a ctx that ends during the write breaks the socket
// (the client reconnects).
func (c *WSConn) Send(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	l, err := c.current()
	if err != nil {
		return err
	}
	return l.sock.Write(ctx, websocket.MessageText, b)
}

// Ping sends an application ping ({"type":"ping"}) and waits for a pong,
// for networks that drop WebSocket control frames. Pongs go to Ping, not
// to Messages.
func (c *WSConn) Ping(ctx context.Context) error {
	l, err := c.current()
	if err != nil {
		return err
	}
	ping, err := json.Marshal(wire.ClientMessage{Type: wire.TypePing}) //nolint:gosec // G117: a ping carries no token
	if err != nil {
		return err
	}
	pong := make(chan struct{})
	l.mu.Lock()
	l.pongs = append(l.pongs, pong)
	l.mu.Unlock()
	if err := l.sock.Write(ctx, websocket.MessageText, ping); err != nil {
		return err
	}
	select {
	case <-pong:
		return nil
	case <-l.gone:
		return ErrNotConnected
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the connection: the socket is closed with 1000, no reconnect
// follows, and Close waits for every goroutine of the connection to end,
// or for ctx. Calling it again waits again and returns nil.
func (c *WSConn) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.cancel()
	})
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("client: closing the websocket: %w", ctx.Err())
	}
}

func (c *WSConn) current() (*link, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.link != nil {
		return c.link, nil
	}
	select {
	case <-c.done:
		return nil, c.err
	default:
		if c.closed.Load() {
			return nil, ErrClosed
		}
		return nil, ErrNotConnected
	}
}

func (c *WSConn) emit(ev WSEvent) {
	c.state.Store(int32(ev.State))
	if c.cfg.OnState != nil {
		c.cfg.OnState(ev)
	}
}

// run is the connection's goroutine: connect, serve, back off, again.
func (c *WSConn) run(ctx context.Context) {
	err := c.loop(ctx)
	if c.closed.Load() {
		err = ErrClosed
	}
	c.wg.Wait()
	close(c.msgs)
	if c.ownHTTP {
		c.http.CloseIdleConnections()
	}
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
	if err == ErrClosed {
		c.log.Info("websocket closed")
	} else {
		c.log.Warn("websocket stopped", "err", err)
	}
	c.emit(WSEvent{State: WSStopped, Err: err})
	if !c.connected {
		c.first <- err
	}
	close(c.done)
}

// loop returns the error that stops the connection.
func (c *WSConn) loop(ctx context.Context) error {
	retries := 0
	for {
		c.emit(WSEvent{State: WSConnecting, Attempt: retries})
		l, err := c.connect(ctx)
		if ctx.Err() != nil {
			if l != nil {
				_ = l.sock.Close(websocket.StatusNormalClosure, "client closed")
			}
			return ctx.Err()
		}
		if err != nil {
			if terminal(err) {
				return unwrapRefusal(err)
			}
			c.lastErr = err
			c.log.Info("websocket connect failed; retrying", "retry", retries+1, "err", err)
		} else {
			retries, c.lastErr = 0, nil
			c.mu.Lock()
			c.link, c.ack = l, l.ack
			if l.ack.SessionToken != "" {
				c.sessionToken = l.ack.SessionToken
			}
			c.credExpires = l.ack.CredentialExpires
			c.mu.Unlock()
			c.log.Info("websocket connected", "sid", sessiond.LogID(l.ack.SessionID), "resumed", l.ack.Resumed)
			c.emit(WSEvent{State: WSConnected, SessionID: l.ack.SessionID, ConnectionID: l.ack.ConnectionID, Resumed: l.ack.Resumed,
				Waking: l.ack.State == sessiond.StateWaking.String()})
			if !c.connected {
				c.connected = true
				c.first <- nil
			}
			code, reason, cause := c.serve(ctx, l)
			c.mu.Lock()
			c.link = nil
			c.mu.Unlock()
			c.log.Info("websocket disconnected", "sid", sessiond.LogID(l.ack.SessionID), "code", int(code), "reason", reason, "err", cause)
			c.emit(WSEvent{State: WSDisconnected, Code: code, Reason: reason, Err: cause})
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !code.Reconnect() {
				return code
			}
		}
		retries++
		wait := backoff(retries, c.min, c.max, c.factor, c.random())
		c.emit(WSEvent{State: WSReconnecting, Attempt: retries, Wait: wait, Err: err})
		if err := sleep.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// backoff is the wait before retry n (1-based) given r, a random number in
// [0, 1): exponential growth of the ceiling, full jitter between the floor
// min and the ceiling, never above max.
func backoff(n int, lo, hi time.Duration, factor, r float64) time.Duration {
	ceiling := float64(lo) * math.Pow(factor, float64(n))
	if ceiling > float64(hi) || math.IsInf(ceiling, 0) || math.IsNaN(ceiling) {
		ceiling = float64(hi)
	}
	d := time.Duration(float64(lo) + r*(ceiling-float64(lo)))
	return min(max(d, lo), hi)
}

// refusal is a dial the server answered with an HTTP status instead of
// an upgrade.
type refusal struct {
	status int
	err    error // *sessiond.Error when the body was the API's error body
}

func (r *refusal) Error() string { return fmt.Sprintf("HTTP %d: %v", r.status, r.err) }
func (r *refusal) Unwrap() error { return r.err }

// terminal reports whether a failed connect must not be retried.
func terminal(err error) bool {
	var r *refusal
	if errors.As(err, &r) {
		switch r.status {
		case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
			return false
		}
		if errors.Is(r.err, sessiond.ErrTooManyConnections) {
			// A reconnect can arrive before the server has noticed that
			// this client's previous socket died (up to its heartbeat
			// timeout): try again with backoff.
			return false
		}
		return r.status >= 400 && r.status < 500
	}
	var code wire.CloseCode
	if errors.As(err, &code) {
		return !code.Reconnect()
	}
	return false
}

func unwrapRefusal(err error) error {
	var r *refusal
	if errors.As(err, &r) {
		return r.err
	}
	return err
}

// link is one socket, from its ack to its close.
type link struct {
	sock  *websocket.Conn
	ack   WSAck
	heard atomic.Int64  // unix ns: the last frame from the server
	gone  chan struct{} // closed when the read loop ends
	ctx   context.Context
	stop  context.CancelFunc

	mu         sync.Mutex
	pongs      []chan struct{}
	refreshing bool // a refresh is being fetched, or was sent and not answered
}

// connect dials once and reads the ack.
func (c *WSConn) connect(ctx context.Context) (*link, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cred, err := c.cfg.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("client: credential: %w", err)
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+cred)
	if c.cfg.SessionToken != "" {
		h.Set("X-Session-Token", c.SessionToken())
	}
	l := &link{gone: make(chan struct{})}
	l.heard.Store(time.Now().UnixNano())
	// coder/websocket: "You never need to close resp.Body yourself."
	sock, resp, err := websocket.Dial(ctx, c.url, &websocket.DialOptions{ //nolint:bodyclose
		HTTPClient: c.http,
		HTTPHeader: h,
		OnPingReceived: func(context.Context, []byte) bool {
			l.heard.Store(time.Now().UnixNano())
			return true
		},
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, &refusal{status: resp.StatusCode, err: refusalError(resp)}
		}
		return nil, err
	}
	sock.SetReadLimit(1 << 20)
	l.sock = sock
	typ, b, err := sock.Read(ctx)
	if err != nil {
		_ = sock.CloseNow()
		if code, _, ok := closeOf(err); ok {
			return nil, code
		}
		return nil, fmt.Errorf("client: waiting for the ack: %w", err)
	}
	var a wire.Connected
	if typ != websocket.MessageText || json.Unmarshal(b, &a) != nil || a.Type != wire.TypeConnected || a.SessionID == "" {
		_ = sock.Close(websocket.StatusProtocolError, "expected the connected message")
		return nil, fmt.Errorf("client: the first message is not the connected ack: %.200q", b)
	}
	l.ack = WSAck{
		SessionID: a.SessionID, ConnectionID: a.ConnectionID, Resumed: a.Resumed, State: a.State,
		HeartbeatInterval: time.Duration(a.HeartbeatIntervalMS) * time.Millisecond,
		HeartbeatTimeout:  time.Duration(a.HeartbeatTimeoutMS) * time.Millisecond,
		CredentialExpires: a.ExpiresAt, SessionToken: a.SessionToken,
	}
	l.heard.Store(time.Now().UnixNano())
	return l, nil
}

// refusalError decodes the API's error body of a refused dial.
func refusalError(resp *http.Response) error {
	if resp.Body != nil {
		b, _ := io.ReadAll(resp.Body)
		var eb wire.ErrorBody
		if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
			return &sessiond.Error{Code: eb.Error.Code, Field: eb.Error.Field, Message: eb.Error.Message}
		}
	}
	return fmt.Errorf("client: websocket dial: unexpected status %s", resp.Status)
}

// closeOf returns the code and reason of the close frame err carries, if
// it carries one.
func closeOf(err error) (wire.CloseCode, string, bool) {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return wire.CloseCode(ce.Code), ce.Reason, true
	}
	return 0, "", false
}

var errSilent = errors.New("client: nothing heard from the server within its heartbeat timeout")

// serve runs the read loop of l until the socket closes, Close is called,
// or the server falls silent for its heartbeat timeout, and says how the
// socket closed.
func (c *WSConn) serve(ctx context.Context, l *link) (code wire.CloseCode, reason string, err error) {
	l.ctx, l.stop = context.WithCancel(ctx)
	defer l.stop()
	readErr := make(chan error, 1)
	go func() {
		defer close(l.gone)
		readErr <- c.readLoop(l)
	}()
	// A socket that went silent without a FIN (a network that dropped it)
	// is noticed after the heartbeat timeout the server announced: the
	// server pings more often than that.
	hb := l.ack.HeartbeatTimeout
	var silence <-chan time.Time
	var t *time.Timer
	if hb > 0 {
		t = time.NewTimer(hb)
		defer t.Stop()
		silence = t.C
	}
	for {
		select {
		case <-ctx.Done():
			_ = l.sock.Close(websocket.StatusNormalClosure, "client closed")
			<-readErr //nolint:errcheck // the read loop's end: our own close caused its error
			return wire.CloseNormal, "client closed", nil
		case err := <-readErr:
			return socketClosed(err)
		case <-silence:
			if quiet := time.Since(time.Unix(0, l.heard.Load())); quiet < hb {
				t.Reset(hb - quiet)
				continue
			}
			c.log.Warn("websocket silent for the heartbeat timeout; reconnecting", "timeout", hb)
			_ = l.sock.CloseNow()
			<-readErr //nolint:errcheck // as above
			return wire.CloseAbnormal, "heartbeat timeout", errSilent
		}
	}
}

func socketClosed(err error) (wire.CloseCode, string, error) {
	if code, reason, ok := closeOf(err); ok {
		return code, reason, nil
	}
	return wire.CloseAbnormal, "", err
}

// readLoop reads until the socket fails. Reading is also what answers the
// server's pings.
func (c *WSConn) readLoop(l *link) error {
	for {
		typ, b, err := l.sock.Read(context.Background())
		if err != nil {
			return err
		}
		l.heard.Store(time.Now().UnixNano())
		if typ != websocket.MessageText {
			c.log.Warn("websocket: ignoring a binary message from the server", "bytes", len(b))
			continue
		}
		c.handle(l, b)
	}
}

// handle takes one message: the protocol's own, or the caller's.
func (c *WSConn) handle(l *link, b []byte) {
	var env wire.Envelope
	if err := json.Unmarshal(b, &env); err != nil || env.Type == "" {
		c.log.Warn("websocket: ignoring a message that is not a JSON object with a type", "bytes", len(b))
		return
	}
	switch env.Type {
	case wire.TypeRefresh:
		c.refresh(l)
		return
	case wire.TypeRefreshed:
		var m wire.Refreshed
		if !c.decode(b, &m) {
			return
		}
		l.mu.Lock()
		l.refreshing = false
		l.mu.Unlock()
		c.mu.Lock()
		c.credExpires = m.ExpiresAt
		c.mu.Unlock()
		c.log.Debug("websocket credential refreshed", "expires", m.ExpiresAt)
		return
	case wire.TypeReady:
		var m wire.Ready
		if !c.decode(b, &m) {
			return
		}
		c.mu.Lock()
		if c.link == l {
			c.ack.State = m.State
		}
		c.mu.Unlock()
		c.log.Info("websocket session ready", "sid", sessiond.LogID(l.ack.SessionID))
		c.emit(WSEvent{State: WSReady, SessionID: l.ack.SessionID})
		return
	case wire.TypePong:
		l.mu.Lock()
		pongs := l.pongs
		l.pongs = nil
		l.mu.Unlock()
		for _, p := range pongs {
			close(p)
		}
		return
	case wire.TypeError:
		var m wire.Error
		if !c.decode(b, &m) {
			return
		}
		if m.Code == sessiond.CodeUnauthorized {
			l.mu.Lock()
			ours := l.refreshing
			l.refreshing = false
			l.mu.Unlock()
			if ours {
				c.log.Warn("websocket: refresh refused; the connection closes when the credential expires, then reconnects", "message", m.Message)
				return
			}
		}
	}
	select {
	case c.msgs <- json.RawMessage(b):
	default:
		c.log.Warn("websocket: Messages is full; dropping a message", "type", env.Type)
	}
}

// decode decodes a message of the protocol into v; one that does not
// decode is logged and ignored.
func (c *WSConn) decode(b []byte, v any) bool {
	if err := json.Unmarshal(b, v); err != nil {
		c.log.Warn("websocket: ignoring a malformed message", "bytes", len(b), "err", err)
		return false
	}
	return true
}

// refresh answers the server's refresh message with a fresh credential,
// off the read loop (which must keep answering pings).
func (c *WSConn) refresh(l *link) {
	l.mu.Lock()
	busy := l.refreshing
	l.refreshing = true
	l.mu.Unlock()
	if busy {
		return
	}
	c.wg.Go(func() {
		ctx, cancel := context.WithTimeout(l.ctx, c.timeout)
		defer cancel()
		cred, err := c.cfg.Token(ctx)
		if err == nil {
			var b []byte
			b, err = json.Marshal(wire.ClientMessage{Type: wire.TypeRefresh, Token: cred}) //nolint:gosec // G117: sending the credential is the point
			if err == nil && l.ctx.Err() == nil {
				// Not under l.ctx: Close must not cut a write short
				// (that drops the socket without its close frame).
				wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.wtimeout)
				err = l.sock.Write(wctx, websocket.MessageText, b)
				cancel()
			}
		}
		if err != nil {
			l.mu.Lock()
			l.refreshing = false
			l.mu.Unlock()
			c.log.Warn("websocket: refreshing the credential failed; the connection closes when it expires, then reconnects", "err", err)
		}
	})
}
