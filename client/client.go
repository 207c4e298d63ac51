// Package client is a Go client for the sessiond REST API.
//
//	c := client.New("http://127.0.0.1:7600", apiKey)
//	created, err := c.Create(ctx, client.CreateRequest{Subject: "alice"})
//	v, err := c.Validate(ctx, created.Token, nil)
//	if errors.Is(err, sessiond.ErrExpired) { ... }
//
// Errors from the server are *sessiond.Error values carrying the server's
// stable code, so errors.Is against the sessiond sentinels works.
//
// DialWS is the WebSocket side (docs/protocol.md): it holds a live
// connection to a session, answers the server's pings and credential
// refreshes, and reconnects with backoff after any close that allows it,
// resuming the same session within its grace.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/wire"
)

// Request and response bodies are the protocol's own types (package wire),
// which the server uses too.
type (
	CreateRequest    = wire.CreateRequest
	CreateResponse   = wire.CreateResponse
	ValidateResponse = wire.ValidateResponse
	ListResponse     = wire.ListResponse
	Stats            = wire.StatsResponse
	Node             = wire.Node
)

// Client calls one sessiond server.
type Client struct {
	base   string
	apiKey string
	// HTTP is the client requests go through; New sets one with a 30s timeout.
	HTTP *http.Client
}

// New returns a client for the server at baseURL ("http://host:port"),
// authenticating admin calls with apiKey. A baseURL without a scheme gets
// http://.
func New(baseURL, apiKey string) *Client {
	if !strings.Contains(baseURL, "://") {
		baseURL = "http://" + baseURL
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), apiKey: apiKey, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// Create creates a session; the token in the response is shown only once.
func (c *Client) Create(ctx context.Context, req CreateRequest) (*CreateResponse, error) {
	var out CreateResponse
	return &out, c.do(ctx, "POST", "/v1/sessions", req, &out, http.StatusCreated)
}

// Validate checks a session token. dev may be nil. If the response carries a
// Token, the session was rotated and the client must use the new token.
func (c *Client) Validate(ctx context.Context, token string, dev *sessiond.Device) (*ValidateResponse, error) {
	var out ValidateResponse
	return &out, c.do(ctx, "POST", "/v1/sessions/validate", wire.ValidateRequest{Token: token, Device: dev}, &out, http.StatusOK)
}

// ValidateAndWake is Validate that also begins waking a hibernated
// session (the request's "wake": true): the session returned is then
// "waking"; Wake waits for it.
func (c *Client) ValidateAndWake(ctx context.Context, token string, dev *sessiond.Device) (*ValidateResponse, error) {
	var out ValidateResponse
	return &out, c.do(ctx, "POST", "/v1/sessions/validate", wire.ValidateRequest{Token: token, Device: dev, Wake: true}, &out, http.StatusOK)
}

// Hibernate puts a session with no connections to sleep now, and returns
// it once its runtime did (hibernated). A session with connections is
// refused with sessiond.ErrInvalidState; a runtime that failed is
// sessiond.ErrRuntimeFailed (the session is active again). The call may
// take up to the policy's wake_timeout: it is bounded by ctx, and by
// LongCallTimeout if ctx has no deadline, not by HTTP's Timeout.
func (c *Client) Hibernate(ctx context.Context, id string) (*sessiond.Session, error) {
	var out sessiond.Session
	return &out, c.doLong(ctx, "POST", "/v1/sessions/"+url.PathEscape(id)+"/hibernate", &out)
}

// Wake wakes a hibernated session now, and returns it once its runtime
// did (active). A runtime that failed is sessiond.ErrRuntimeFailed (the
// session is hibernated again). Bounded like Hibernate.
func (c *Client) Wake(ctx context.Context, id string) (*sessiond.Session, error) {
	var out sessiond.Session
	return &out, c.doLong(ctx, "POST", "/v1/sessions/"+url.PathEscape(id)+"/wake", &out)
}

// LongCallTimeout bounds Hibernate and Wake when their ctx has no
// deadline.
const LongCallTimeout = 5 * time.Minute

// doLong is do for calls that wait on a session's runtime: HTTP's Timeout
// does not cut them, ctx (or LongCallTimeout) does.
func (c *Client) doLong(ctx context.Context, method, path string, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, LongCallTimeout)
		defer cancel()
	}
	long := *c
	h := *c.HTTP
	h.Timeout = 0
	long.HTTP = &h
	return long.do(ctx, method, path, nil, out, http.StatusOK)
}

// AddConnection registers a connection of a kind other than WebSocket
// (an HTTP or VNC proxy's, say) to a session; keep it alive with
// Heartbeat every HeartbeatInterval. A connection to a hibernated session
// wakes it: State is then "waking", and heartbeats say when it is
// "active".
func (c *Client) AddConnection(ctx context.Context, sessionID string, req wire.ConnectionRequest) (*wire.ConnectionResponse, error) {
	var out wire.ConnectionResponse
	return &out, c.do(ctx, "POST", "/v1/sessions/"+url.PathEscape(sessionID)+"/connections", req, &out, http.StatusCreated)
}

// Heartbeat keeps a connection registered by AddConnection alive.
func (c *Client) Heartbeat(ctx context.Context, connID string) (*wire.ConnectionResponse, error) {
	var out wire.ConnectionResponse
	return &out, c.do(ctx, "POST", "/v1/connections/"+url.PathEscape(connID)+"/heartbeat", nil, &out, http.StatusOK)
}

// RemoveConnection detaches a connection registered by AddConnection.
func (c *Client) RemoveConnection(ctx context.Context, connID string) error {
	return c.do(ctx, "DELETE", "/v1/connections/"+url.PathEscape(connID), nil, nil, http.StatusNoContent)
}

// Get returns a session by id, in any state.
func (c *Client) Get(ctx context.Context, id string) (*sessiond.Session, error) {
	var out sessiond.Session
	return &out, c.do(ctx, "GET", "/v1/sessions/"+url.PathEscape(id), nil, &out, http.StatusOK)
}

// Rotate issues a new token for a session now.
func (c *Client) Rotate(ctx context.Context, id string) (*ValidateResponse, error) {
	var out ValidateResponse
	return &out, c.do(ctx, "POST", "/v1/sessions/"+url.PathEscape(id)+"/rotate", nil, &out, http.StatusOK)
}

// Revoke ends a session. Revoking an ended session succeeds.
func (c *Client) Revoke(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/v1/sessions/"+url.PathEscape(id), nil, nil, http.StatusNoContent)
}

// ListOptions filter List. Zero fields do not filter.
type ListOptions struct {
	Subject string
	State   string
	Limit   int
	Cursor  string
}

// List returns one page of sessions; pass NextCursor back for the next.
func (c *Client) List(ctx context.Context, opts ListOptions) (*ListResponse, error) {
	q := url.Values{}
	for k, v := range map[string]string{"subject": opts.Subject, "state": opts.State, "cursor": opts.Cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	path := "/v1/sessions"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out ListResponse
	return &out, c.do(ctx, "GET", path, nil, &out, http.StatusOK)
}

// ListSubject returns a subject's live sessions, oldest first.
func (c *Client) ListSubject(ctx context.Context, subject string) ([]*sessiond.Session, error) {
	var out ListResponse
	err := c.do(ctx, "GET", "/v1/subjects/"+url.PathEscape(subject)+"/sessions", nil, &out, http.StatusOK)
	return out.Sessions, err
}

// HistoryOptions select a page of history: Since and Until take an RFC
// 3339 time or a duration back from now ("1h"); Types keeps events of
// those types only (sessiond.EventConnectionClosed: every connection that
// closed, with its duration); zero values do not filter.
type HistoryOptions struct {
	Since, Until, Cursor string
	Types                []sessiond.EventType
	Limit                int
}

// SessionHistory reads a page of a session's lifecycle history (a server
// started with --history).
func (c *Client) SessionHistory(ctx context.Context, id string, o HistoryOptions) (*wire.HistoryResponse, error) {
	return c.history(ctx, "/v1/sessions/"+url.PathEscape(id)+"/history", o)
}

// SubjectHistory reads a page of the lifecycle history of a subject's
// sessions.
func (c *Client) SubjectHistory(ctx context.Context, subject string, o HistoryOptions) (*wire.HistoryResponse, error) {
	return c.history(ctx, "/v1/subjects/"+url.PathEscape(subject)+"/history", o)
}

func (c *Client) history(ctx context.Context, path string, o HistoryOptions) (*wire.HistoryResponse, error) {
	q := url.Values{}
	for k, v := range map[string]string{"since": o.Since, "until": o.Until, "cursor": o.Cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	for _, t := range o.Types {
		q.Add("type", string(t))
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out wire.HistoryResponse
	return &out, c.do(ctx, "GET", path, nil, &out, http.StatusOK)
}

// RevokeSubject ends all of a subject's live sessions and returns how many.
func (c *Client) RevokeSubject(ctx context.Context, subject string) (int, error) {
	var out wire.RevokeSubjectResponse
	err := c.do(ctx, "DELETE", "/v1/subjects/"+url.PathEscape(subject)+"/sessions", nil, &out, http.StatusOK)
	return out.Revoked, err
}

// Stats returns the server's counts.
func (c *Client) Stats(ctx context.Context) (*Stats, error) {
	var out Stats
	return &out, c.do(ctx, "GET", "/v1/stats", nil, &out, http.StatusOK)
}

// Nodes lists the nodes sharing the server's store, by name
// (GET /v1/nodes).
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	var out wire.NodesResponse
	if err := c.do(ctx, "GET", "/v1/nodes", nil, &out, http.StatusOK); err != nil {
		return nil, err
	}
	return out.Nodes, nil
}

// Ready reports whether the server answers /readyz with 200.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, "GET", "/readyz", nil, nil, http.StatusOK)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any, want int) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		var eb wire.ErrorBody
		if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
			return &sessiond.Error{Code: eb.Error.Code, Field: eb.Error.Field, Message: eb.Error.Message}
		}
		return fmt.Errorf("sessiond: %s %s: unexpected status %s", method, path, resp.Status)
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("sessiond: %s %s: decoding response: %w", method, path, err)
		}
	}
	return nil
}
