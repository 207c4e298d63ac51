package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lxzan/gws"

	"github.com/sessiond/sessiond/wire"
)

// ident is what one connection presents: a pre-signed credential (its own
// subject) and its own device id.
type ident struct {
	token  string
	device string
}

// Counts across every client of the process.
var (
	pingsReceived atomic.Int64 // server pings answered
	otherMessages atomic.Int64 // messages after the ack (none expected)
)

// wsClient is one client socket: a gws.Conn whose read loop answers pings
// and records the ack and the close. Only the read loop writes its fields;
// others read them after acked or done is closed.
type wsClient struct {
	conn *gws.Conn

	gotAck bool
	ack    wire.Connected
	ackAt  time.Time
	acked  chan struct{}

	closeCode int // from the server's close frame; 0: none
	closeErr  error
	closedAt  time.Time
	done      chan struct{}
}

func (c *wsClient) OnOpen(*gws.Conn) {}

func (c *wsClient) OnClose(_ *gws.Conn, err error) {
	c.closedAt = time.Now()
	var ce *gws.CloseError
	if errors.As(err, &ce) {
		c.closeCode = int(ce.Code)
	}
	c.closeErr = err
	close(c.done)
}

func (c *wsClient) OnPing(socket *gws.Conn, payload []byte) {
	pingsReceived.Add(1)
	_ = socket.WritePong(payload)
}

func (c *wsClient) OnPong(*gws.Conn, []byte) {}

func (c *wsClient) OnMessage(_ *gws.Conn, msg *gws.Message) {
	defer msg.Close()
	if c.gotAck {
		otherMessages.Add(1)
		return
	}
	now := time.Now()
	c.gotAck = true
	_ = json.Unmarshal(msg.Bytes(), &c.ack) // a bad ack fails the Type check
	c.ackAt = now
	close(c.acked)
}

// close sends a normal close frame and drops the socket (gws closes the TCP
// connection right after the frame); the read loop then ends and done closes.
func (c *wsClient) close() {
	_ = c.conn.WriteClose(1000, nil)
}

// nopSession is gws's per-connection storage, which the clients do not use
// (its default is a map per connection).
type nopSession struct{}

func (nopSession) Len() int                           { return 0 }
func (nopSession) Load(string) (any, bool)            { return nil, false }
func (nopSession) Delete(string)                      {}
func (nopSession) Store(string, any)                  {}
func (nopSession) Range(func(key string, v any) bool) {}

type netDialer struct{ d net.Dialer }

func (n *netDialer) Dial(network, addr string) (net.Conn, error) { return n.d.Dial(network, addr) }

// dialer opens client sockets to one server.
type dialer struct {
	url     string // ws://host:port/v1/connect
	timeout time.Duration
}

// dial connects with id and waits for the ack. The returned client's
// ackAt is when the ack was read.
func (d *dialer) dial(id ident) (*wsClient, error) {
	c := &wsClient{acked: make(chan struct{}), done: make(chan struct{})}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+id.token)
	socket, resp, err := gws.NewClient(c, &gws.ClientOption{
		Addr:             d.url + "?device_id=" + url.QueryEscape(id.device),
		RequestHeader:    h,
		ReadBufferSize:   1024, // the ack is the largest message, about 500 bytes
		HandshakeTimeout: d.timeout,
		NewDialer:        func() (gws.Dialer, error) { return &netDialer{net.Dialer{Timeout: d.timeout}}, nil },
		NewSession:       func() gws.SessionStorage { return nopSession{} },
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
			return nil, &dialError{kind: fmt.Sprintf("HTTP %d", resp.StatusCode),
				err: fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))}
		}
		return nil, &dialError{kind: errKind(err), err: err}
	}
	c.conn = socket
	go socket.ReadLoop()
	t := time.NewTimer(d.timeout)
	defer t.Stop()
	select {
	case <-c.acked:
	case <-c.done:
		return nil, &dialError{kind: fmt.Sprintf("closed %d before the ack", c.closeCode), err: c.closeErr}
	case <-t.C:
		_ = socket.NetConn().Close()
		return nil, &dialError{kind: "no ack in time", err: fmt.Errorf("no ack within %v", d.timeout)}
	}
	if c.ack.Type != wire.TypeConnected || c.ack.SessionID == "" {
		c.close()
		return nil, &dialError{kind: "bad ack", err: fmt.Errorf("first message is not a connected ack: %+v", c.ack)}
	}
	return c, nil
}

// dialError carries a short kind for counting failures and the full error
// as a sample.
type dialError struct {
	kind string
	err  error
}

func (e *dialError) Error() string { return e.kind + ": " + e.err.Error() }

func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no local port (EADDRNOTAVAIL)"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too many open files"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	}
	return "other"
}

// failures counts failed operations by kind, with one sample each.
type failures struct {
	mu      sync.Mutex
	n       uint64
	byKind  map[string]uint64
	samples map[string]string
}

func newFailures() *failures {
	return &failures{byKind: map[string]uint64{}, samples: map[string]string{}}
}

func (f *failures) add(kind string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	f.byKind[kind]++
	if _, ok := f.samples[kind]; !ok {
		f.samples[kind] = err.Error()
	}
}

func (f *failures) addErr(err error) {
	var de *dialError
	if errors.As(err, &de) {
		f.add(de.kind, de.err)
		return
	}
	f.add(errKind(err), err)
}

func (f *failures) count() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// print lists the failures by kind, most frequent first.
func (f *failures) print(w io.Writer, what string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		return
	}
	fmt.Fprintf(w, "FAILED %s: %d\n", what, f.n)
	kinds := make([]string, 0, len(f.byKind))
	for k := range f.byKind {
		kinds = append(kinds, k)
	}
	sortByCount(kinds, f.byKind)
	for _, k := range kinds {
		fmt.Fprintf(w, "  %s: %d, e.g. %s\n", k, f.byKind[k], f.samples[k])
	}
}

func sortByCount(keys []string, n map[string]uint64) {
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && (n[keys[j]] > n[keys[j-1]] || n[keys[j]] == n[keys[j-1]] && keys[j] < keys[j-1]); j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
}
