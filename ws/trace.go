package ws

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/tracing"
	"github.com/sessiond/sessiond/wire"
)

// The attributes of a connect's span, besides error.type and sessiond.sid.
const (
	attachKey    = attribute.Key("sessiond.ws.attach")     // header | message: how the session is named
	outcomeKey   = attribute.Key("sessiond.ws.outcome")    // created | resumed | refused | closed | failed
	closeCodeKey = attribute.Key("sessiond.ws.close_code") // of a socket upgraded but closed before it was attached
)

// attempt is the span of one connect (Config.TracerProvider): from the
// handshake to the attach, or to the refusal; not the socket's life. The
// zero attempt (tracing off) records nothing.
type attempt struct{ span trace.Span }

// startAttempt starts the span of the connect r, if the edge traces.
func (e *Edge) startAttempt(r *http.Request, byMessage bool) (*http.Request, attempt) {
	if e.tracer == nil {
		return r, attempt{}
	}
	how := "header"
	if byMessage {
		how = "message"
	}
	ctx, span := tracing.StartRequest(e.tracer, r, "sessiond.ws/connect", attachKey.String(how))
	return r.WithContext(ctx), attempt{span}
}

// context is ctx carrying the attempt's span, for the engine's and the
// store's spans of an attach that runs apart from the request.
func (a attempt) context(ctx context.Context) context.Context {
	if a.span == nil {
		return ctx
	}
	return trace.ContextWithSpan(ctx, a.span)
}

// refused ends the attempt of a handshake answered with an error of code.
func (a attempt) refused(code sessiond.Code) {
	if a.span == nil {
		return
	}
	a.span.SetAttributes(outcomeKey.String("refused"))
	tracing.SetCode(a.span, code)
	a.span.End()
}

// failed ends the attempt of a handshake the upgrader refused.
func (a attempt) failed() {
	if a.span == nil {
		return
	}
	a.span.SetAttributes(outcomeKey.String("failed"))
	a.span.SetStatus(codes.Error, "upgrade failed")
	a.span.End()
}

// ended ends the attempt of an upgraded socket once the engine attached
// it (err nil) or not: attached to its session, created or resumed (also
// if the socket closes right after its ack, as when the server stops);
// else refused, with the close code and the engine's error code. A socket
// upgraded as the edge began to shut down (not counted) is refused too,
// whatever the engine did.
func (a attempt) ended(c *conn, created bool, err error) {
	if a.span == nil {
		return
	}
	tracing.SetCode(a.span, sessiond.ErrorCode(err))
	switch {
	case err != nil || !c.counted:
		a.span.SetAttributes(outcomeKey.String("refused"))
		if code := wire.CloseCode(c.closeCode.Load()); code != 0 {
			a.span.SetAttributes(closeCodeKey.Int(int(code)))
		}
	case created:
		a.span.SetAttributes(outcomeKey.String("created"), tracing.SIDKey.String(sessiond.LogID(c.sessionID)))
	default:
		a.span.SetAttributes(outcomeKey.String("resumed"), tracing.SIDKey.String(sessiond.LogID(c.sessionID)))
	}
	a.span.End()
}

// closedPending ends the attempt of a socket that closed while it waited
// for its attach message: refused if this side closed it (the attach
// timed out or was malformed, the edge shut down), else "closed" (the
// client left), with the close code.
func (a attempt) closedPending(sent wire.CloseCode, cause sessiond.CloseCause) {
	if a.span == nil {
		return
	}
	outcome := "closed"
	if sent != 0 {
		outcome = "refused"
	}
	a.span.SetAttributes(outcomeKey.String(outcome), closeCodeKey.Int(cause.Code))
	a.span.End()
}
