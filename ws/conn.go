package ws

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/wire"
)

// conn is one socket's state. It is kept small: idle connections are the
// common case, and there may be many.
type conn struct {
	e       *Edge
	ws      *gws.Conn
	subject string
	// counted: the socket is in Edge.live, which Shutdown waits on; one
	// upgraded once Shutdown had begun is not, and closes at once.
	counted bool

	// Set once attached; read-only after.
	id, sessionID string
	hbInterval    int64 // ns
	hbTimeout     int64 // ns
	touchEvery    int64 // ns; 0: activity is not written
	registered    int64 // ns: when it was registered on the edge
	release       func()

	lastSeen atomic.Int64 // ns: anything received

	mu          sync.Mutex // guards the fields below, and timer resets
	timer       sessiond.Timer
	nextPing    int64 // ns
	credExp     int64 // ns; 0: the credential does not expire
	refreshAt   int64 // ns: when to send the refresh message
	refreshSent bool
	lastTouch   int64          // ns
	pending     *pendingAttach // set while the attach message is awaited
	done        bool

	// Read loop only.
	tokens   float64
	lastFill int64

	closeCode atomic.Int32 // the code this side closed with, if any
}

// pendingAttach is the connect of a socket that names its session in its
// first message: the request, and the attempt's span, which ends once the
// message is handled.
type pendingAttach struct {
	req sessiond.ConnectRequest
	at  attempt
}

// attached finishes a connection whose session the engine attached it to:
// it becomes a resource of the session, replaced connections close, the
// ack goes out, and the timer starts. If the session ended meanwhile, or a
// newer connection replaced this one, it closes the socket and returns
// why.
func (c *conn) attached(ctx context.Context, a *sessiond.Connected) error {
	e := c.e
	now := e.clock.Now().UnixNano()
	c.id, c.sessionID = a.Conn.ID, a.Session.ID
	c.hbInterval, c.hbTimeout = int64(a.Policy.HeartbeatInterval), int64(a.Policy.HeartbeatTimeout)
	c.touchEvery = int64(a.Policy.TouchInterval)
	release, err := e.m.Attach(ctx, c.sessionID, "websocket", sessiond.ResourceFunc(c.dispose))
	if err != nil {
		// The session ended between attaching and now.
		c.close(wire.CloseForError(err))
		return err
	}
	c.release = release
	c.registered = now
	e.mu.Lock()
	delete(e.pending, c)
	e.conns[c.id] = c
	e.mu.Unlock()
	for _, r := range a.Replaced {
		e.mu.Lock()
		old := e.conns[r.ID]
		e.mu.Unlock()
		if old != nil {
			old.close(wire.CloseReplaced)
		}
	}
	// Registered first, checked after: a connection that replaced this one
	// before it was registered found nothing to close, and this check sees
	// that; one that replaces it from now on finds it registered.
	if _, err := e.m.Connection(ctx, c.id); err != nil {
		code := wire.CloseReplaced
		if !errors.Is(err, sessiond.ErrConnectionNotFound) {
			e.log.Warn("checking a new connection", "err", err)
			code = wire.CloseInternalError
		}
		c.close(code)
		return err
	}
	e.stats.connected(a)

	ack := wire.Connected{
		Type: wire.TypeConnected, SessionID: c.sessionID, ConnectionID: c.id,
		Resumed: !a.Created, State: a.Session.State.String(),
		HeartbeatIntervalMS: a.Policy.HeartbeatInterval.Milliseconds(),
		HeartbeatTimeoutMS:  a.Policy.HeartbeatTimeout.Milliseconds(),
		SessionToken:        a.Token,
	}
	c.mu.Lock()
	if c.credExp > 0 {
		ack.ExpiresAt = time.Unix(0, c.credExp).UTC()
	}
	c.lastTouch = now
	// The first ping comes after a random part of the interval, so that a
	// mass reconnect does not ping in lockstep.
	c.nextPing = onGrid(now + int64(jitter(time.Duration(c.hbInterval))))
	c.mu.Unlock()
	c.send(ack)
	c.schedule()
	if a.Session.State == sessiond.StateWaking {
		go c.awaitAwake(a.Session)
	}
	return nil
}

// awaitAwake tells a connection that woke its session when the session is
// awake ({"type":"ready"}), or closes it if the wake failed: 4003, which
// means reconnect (and wake it again). The wait is bounded by the
// policy's wake_timeout and ends early when the edge shuts down.
func (c *conn) awaitAwake(s *sessiond.Session) {
	s, err := c.e.m.AwaitAwake(c.e.life, s)
	switch {
	case c.e.life.Err() != nil:
		// Shutting down: the socket is closed with 1001.
	case err != nil:
		c.close(wire.CloseForError(err))
	case c.closeCode.Load() == 0:
		c.send(wire.Ready{Type: wire.TypeReady, State: s.State.String()})
	}
}

// schedule arms the connection's one timer for whatever comes first: the
// next ping, the heartbeat deadline, the refresh, the credential's expiry.
func (c *conn) schedule() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	next := c.nextPing
	if dl := c.lastSeen.Load() + c.hbTimeout; dl < next {
		next = dl
	}
	if c.credExp > 0 {
		at := c.credExp
		if !c.refreshSent {
			at = c.refreshAt
		}
		if at < next {
			next = at
		}
	}
	d := time.Duration(next - c.e.clock.Now().UnixNano())
	if c.timer == nil {
		c.timer = c.e.clock.AfterFunc(d, c.tick)
	} else {
		c.timer.Reset(d)
	}
}

// setCredential records a credential's expiry (zero: none) and when to ask
// for a new one: RefreshBefore ahead of it, or a tenth of the life it has
// left if that is shorter, so that a short-lived credential is not asked to
// refresh at once (and again and again). c.mu is held, or c is not shared yet.
func (c *conn) setCredential(exp time.Time, now int64) {
	c.credExp, c.refreshAt, c.refreshSent = 0, 0, false
	if exp.IsZero() {
		return
	}
	c.credExp = exp.UnixNano()
	lead := min(int64(c.e.refreshBefore), (c.credExp-now)/10)
	c.refreshAt = c.credExp - max(lead, 0)
}

func (c *conn) tick() {
	now := c.e.clock.Now().UnixNano()
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		return
	}
	var code wire.CloseCode
	var refresh, ping bool
	switch {
	case now-c.lastSeen.Load() >= c.hbTimeout:
		code = wire.CloseHeartbeatTimeout
	case c.credExp > 0 && now >= c.credExp:
		code = wire.CloseCredentialExpired
	default:
		if c.credExp > 0 && !c.refreshSent && now >= c.refreshAt {
			c.refreshSent, refresh = true, true
		}
		if now >= c.nextPing {
			c.nextPing, ping = onGrid(now+c.hbInterval), true
		}
	}
	exp := c.credExp
	c.mu.Unlock()
	if code != 0 {
		if code == wire.CloseHeartbeatTimeout {
			c.e.stats.heartbeatTimeouts.Add(1)
		}
		c.close(code)
		return
	}
	if refresh {
		c.send(wire.Refresh{Type: wire.TypeRefresh, ExpiresAt: time.Unix(0, exp).UTC()})
	}
	if ping {
		c.write(func() error { return c.ws.WritePing(nil) })
	}
	c.schedule()
}

// pingGrid quantizes ping times: sockets whose pings fall in the same
// 100ms slot are pinged on one wake-up of the process rather than one each.
// With a 25s interval that is still 250 slots, so pings stay spread.
const pingGrid = int64(100 * time.Millisecond)

// onGrid rounds a time in Unix nanoseconds up to the ping grid.
func onGrid(t int64) int64 { return (t + pingGrid - 1) / pingGrid * pingGrid }

// heard notes a sign of life. While the socket is attached its session is
// active (the engine does not idle-expire sessions with connections), so
// pings and pongs cost no write; messages also record activity (touch).
func (c *conn) heard() {
	c.lastSeen.Store(c.e.clock.Now().UnixNano())
}

// active records activity on the session, at most once per touch interval.
func (c *conn) active() {
	now := c.e.clock.Now().UnixNano()
	if c.touchEvery <= 0 || c.sessionID == "" {
		return
	}
	c.mu.Lock()
	due := now-c.lastTouch >= c.touchEvery
	if due {
		c.lastTouch = now
	}
	c.mu.Unlock()
	if due {
		// At most once per touch interval per connection, off the read loop.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = c.e.m.Touch(ctx, c.sessionID) // an ended session closes the socket anyway
		}()
	}
}

func (c *conn) message(msg *gws.Message) {
	c.heard()
	c.active()
	c.e.stats.messages.Add(1)
	if msg.Opcode != gws.OpcodeText {
		c.close(wire.CloseUnsupportedData)
		return
	}
	if !c.allow() {
		c.close(wire.ClosePolicyViolation)
		return
	}
	var m wire.ClientMessage
	err := json.Unmarshal(msg.Bytes(), &m)
	pending := c.isPending()
	switch {
	case pending && (err != nil || m.Type != wire.TypeAttach || m.SessionToken == ""):
		c.close(wire.CloseBadRequest)
	case pending:
		c.attachByMessage(m.SessionToken)
	case err != nil || m.Type == "":
		c.send(wire.Error{Type: wire.TypeError, Code: wire.CodeInvalidMessage, Message: "a message is a JSON object with a string \"type\""})
	case m.Type == wire.TypePing:
		c.send(wire.Envelope{Type: wire.TypePong})
	case m.Type == wire.TypeRefresh:
		c.refresh(m.Token)
	default:
		c.e.stats.unknown.Add(1)
		c.send(wire.Error{Type: wire.TypeError, Code: wire.CodeUnknownType, Message: "unknown message type " + quote(m.Type), Re: m.Type})
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// allow is the per-connection token bucket. It runs on the read loop only.
func (c *conn) allow() bool {
	now := c.e.clock.Now().UnixNano()
	if c.lastFill == 0 {
		c.tokens, c.lastFill = c.e.burst, now
	}
	c.tokens = min(c.e.burst, c.tokens+float64(now-c.lastFill)/1e9*c.e.rate)
	c.lastFill = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

func (c *conn) isPending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending != nil
}

func (c *conn) attachByMessage(token string) {
	c.mu.Lock()
	p := c.pending
	c.pending = nil
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.mu.Unlock()
	req := p.req
	req.Token = token
	ctx, cancel := context.WithTimeout(p.at.context(context.Background()), 10*time.Second)
	defer cancel()
	a, err := c.e.m.Connect(ctx, req)
	if err != nil {
		c.e.stats.refused.Add(1)
		c.close(wire.CloseForError(err))
		p.at.ended(c, false, err)
		return
	}
	p.at.ended(c, a.Created, c.attached(ctx, a))
}

func (c *conn) refresh(token string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	subject, exp, err := c.e.verify(ctx, token)
	if err == nil && subject != c.subject {
		err = errors.New("the credential names another subject")
	}
	if err != nil {
		c.send(wire.Error{Type: wire.TypeError, Code: sessiond.CodeUnauthorized, Message: "refresh refused: " + errorText(err), Re: wire.TypeRefresh})
		return
	}
	c.mu.Lock()
	c.setCredential(exp, c.e.clock.Now().UnixNano())
	c.mu.Unlock()
	c.send(wire.Refreshed{Type: wire.TypeRefreshed, ExpiresAt: exp.UTC()}) // zero: left out
	c.schedule()
}

func errorText(err error) string {
	var se *sessiond.Error
	if errors.As(err, &se) {
		return se.Message
	}
	return err.Error()
}

// send writes a JSON message.
func (c *conn) send(v any) {
	b := jsonMsg(v)
	c.write(func() error { return c.ws.WriteMessage(gws.OpcodeText, b) })
}

// write runs one write under the write deadline. A write that fails or times
// out breaks the socket; gws closes it and OnClose follows.
func (c *conn) write(f func() error) {
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.e.writeTimeout))
	_ = f()
}

// close closes the socket with a code, once; OnClose then cleans up.
func (c *conn) close(code wire.CloseCode) {
	if !c.closeCode.CompareAndSwap(0, int32(code)) {
		return
	}
	c.e.stats.closedWith(code)
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.e.writeTimeout))
	_ = c.ws.WriteClose(uint16(code), []byte(code.Reason()))
}

// closeCause is why a socket closed, for its connection_closed event: the
// code this side closed it with (sent), or else what gws saw: a close
// frame from the client with its code, a protocol error gws closed it for
// (with the code it sent), or a socket lost without a close (1006).
func closeCause(sent wire.CloseCode, err error) sessiond.CloseCause {
	if sent != 0 {
		return sessiond.CloseCause{Reason: closeReason(sent), Code: int(sent)}
	}
	var ce *gws.CloseError
	if errors.As(err, &ce) {
		code := int(ce.Code)
		if code < 1000 || code > 4999 {
			code = 0 // 1005 (no status) comes as 0; anything else is not a code to record
		}
		return sessiond.CloseCause{Reason: sessiond.ClosedByClient, Code: code}
	}
	var sc interface{ Uint16() uint16 } // gws's own close codes (a message over the read limit: 1009)
	if errors.As(err, &sc) {
		if code := int(sc.Uint16()); code >= 1000 && code <= 4999 {
			return sessiond.CloseCause{Reason: sessiond.ClosedProtocolError, Code: code}
		}
	}
	return sessiond.CloseCause{Reason: sessiond.ClosedLost, Code: int(wire.CloseAbnormal)}
}

// closeReason is the close reason of a code the server closes with.
func closeReason(code wire.CloseCode) sessiond.CloseReason {
	switch code {
	case wire.CloseHeartbeatTimeout:
		return sessiond.ClosedHeartbeatTimeout
	case wire.CloseCredentialExpired:
		return sessiond.ClosedCredentialExpired
	case wire.CloseGoingAway:
		return sessiond.ClosedShutdown
	case wire.CloseReplaced:
		return sessiond.ClosedReplaced
	case wire.CloseWakeFailed:
		return sessiond.ClosedWakeFailed // recorded by the engine already, as it dropped the connection
	case wire.CloseUnsupportedData, wire.ClosePolicyViolation, wire.CloseMessageTooBig, wire.CloseBadRequest:
		return sessiond.ClosedProtocolError
	case wire.CloseSessionRevoked, wire.CloseSessionExpired, wire.CloseSessionEnded:
		return sessiond.ClosedSessionEnded
	}
	return sessiond.ClosedByServer
}

// dispose is the connection as a resource of its session: the session is
// ending, so the socket closes with the code of the reason.
func (c *conn) dispose(ctx context.Context) error {
	code := wire.CloseSessionEnded
	if s := sessiond.EndingSession(ctx); s != nil {
		code = wire.CloseForReason(s.EndReason)
	}
	c.close(code)
	return nil
}

// closed runs once, when the socket is gone (OnClose, with what gws saw):
// it stops the timer, forgets the connection and tells the engine why it
// closed.
func (c *conn) closed(err error) {
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		return
	}
	c.done = true
	if c.timer != nil {
		c.timer.Stop()
	}
	p := c.pending
	c.pending = nil
	c.mu.Unlock()
	if p != nil {
		// Closed before its attach message came: its attempt ends here.
		sent := wire.CloseCode(c.closeCode.Load())
		p.at.closedPending(sent, closeCause(sent, err))
	}
	e := c.e
	// The descriptor is closed already: its place is free at once, not
	// after the detach (a store write that may wait out an outage).
	e.sockets.Add(-1)
	e.mu.Lock()
	delete(e.pending, c)
	if c.id != "" && e.conns[c.id] == c {
		delete(e.conns, c.id)
	}
	e.mu.Unlock()
	if c.closeCode.Load() == 0 {
		e.stats.clientClosed.Add(1)
	}
	if c.release != nil {
		c.release()
	}
	if c.id != "" {
		e.detach(c.id, closeCause(wire.CloseCode(c.closeCode.Load()), err))
	}
	if c.counted {
		e.live.Done()
	}
}
