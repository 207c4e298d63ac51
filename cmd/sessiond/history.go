package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/internal/wait"
	"github.com/sessiond/sessiond/metrics"
	"github.com/sessiond/sessiond/postgres"
	"github.com/sessiond/sessiond/wire"
)

// historySink copies the store's event log into PostgreSQL (--history) in
// the background: the server does not wait for PostgreSQL to start or to
// serve, and a PostgreSQL that is down at start is tried again until it
// answers (docs/history.md).
type historySink struct {
	cancel context.CancelFunc
	done   sync.WaitGroup

	mu   sync.Mutex
	h    *postgres.History    // nil until opened
	last metrics.HistoryStats // its counts when it closed
}

func startHistory(dsn string, o postgres.Options, st sessiond.Store, log *slog.Logger) *historySink {
	ctx, cancel := context.WithCancel(context.Background())
	hs := &historySink{cancel: cancel}
	hs.done.Go(func() {
		pause := 100 * time.Millisecond
		for ctx.Err() == nil {
			h, err := postgres.Open(ctx, dsn, o)
			if err == nil {
				hs.mu.Lock()
				hs.h = h
				hs.mu.Unlock()
				log.Info("history: following the event log into PostgreSQL", "history", redactDSN(dsn))
				_ = h.Follow(ctx, st)
				hs.mu.Lock()
				counts := h.Stats()
				hs.last = metrics.HistoryStats{Written: counts.Written, Gaps: counts.Gaps, Failures: counts.Failures}
				hs.h = nil
				hs.mu.Unlock()
				h.Close()
				return
			}
			log.Warn("history: cannot open PostgreSQL; trying again", "in", pause, "err", err)
			_ = wait.Sleep(ctx, pause)
			pause = min(2*pause, 30*time.Second)
		}
	})
	return hs
}

func (hs *historySink) close() {
	hs.cancel()
	hs.done.Wait()
}

// redactDSN hides a DSN's password.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

var _ sessiond.HistoryReader = (*historySink)(nil)

// stats are the sink's counts, kept across the PostgreSQL connections it
// opens (zero until the first).
func (hs *historySink) stats() metrics.HistoryStats {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.h == nil {
		return hs.last
	}
	st := hs.h.Stats()
	return metrics.HistoryStats{Written: st.Written, Gaps: st.Gaps, Failures: st.Failures}
}

// reader is the opened history, or an error a client may retry.
func (hs *historySink) reader() (*postgres.History, error) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.h == nil {
		return nil, &sessiond.Error{Code: sessiond.CodeUnavailable, Message: "the history (PostgreSQL) is not reachable yet; retry"}
	}
	return hs.h, nil
}

// SessionHistory implements sessiond.HistoryReader.
func (hs *historySink) SessionHistory(ctx context.Context, id string, q sessiond.HistoryQuery) (sessiond.HistoryPage, error) {
	h, err := hs.reader()
	if err != nil {
		return sessiond.HistoryPage{}, err
	}
	return h.SessionHistory(ctx, id, q)
}

// SubjectHistory implements sessiond.HistoryReader.
func (hs *historySink) SubjectHistory(ctx context.Context, subject string, q sessiond.HistoryQuery) (sessiond.HistoryPage, error) {
	h, err := hs.reader()
	if err != nil {
		return sessiond.HistoryPage{}, err
	}
	return h.SubjectHistory(ctx, subject, q)
}

// cmdHistory prints the lifecycle history of a session (sessiond history
// ID) or of a subject's sessions (--subject), oldest first, from a server
// started with --history: every event, and with those about a connection
// (connected, resumed, connection_closed) what the connection was, and
// for connection_closed when it opened, how long it lasted and why it
// closed. --type connection_closed lists every connection that closed.
func cmdHistory(fs *flag.FlagSet) action {
	asJSON := fs.Bool("json", false, "print the events as JSON, one a line")
	subject := fs.String("subject", "", "the history of every session of `SUBJECT`")
	since := fs.String("since", "", "from `TIME` (RFC 3339) or this long ago (1h)")
	until := fs.String("until", "", "before `TIME` (RFC 3339) or this long ago")
	limit := fs.Int("limit", 0, "print at most `N` events; 0: all")
	types := fs.String("type", "", "only events of these `TYPES`, comma-separated (connection_closed: every connection that closed)")
	return func(ctx context.Context, in *input) error {
		return history(ctx, in, *asJSON, *subject, *since, *until, *types, *limit)
	}
}

func history(ctx context.Context, in *input, asJSON bool, subject, since, until, types string, limit int) error {
	pos, stdout := in.args, in.stdout
	if (len(pos) == 1) == (subject != "") || len(pos) > 1 {
		return usageError{"history takes a session id or --subject S"}
	}
	c, err := adminClient(in)
	if err != nil {
		return err
	}
	o := client.HistoryOptions{Since: since, Until: until, Limit: 1000}
	if types != "" {
		for t := range strings.SplitSeq(types, ",") {
			o.Types = append(o.Types, sessiond.EventType(strings.TrimSpace(t)))
		}
	}
	read := func() (*wire.HistoryResponse, error) { return c.SubjectHistory(ctx, subject, o) }
	if subject == "" {
		read = func() (*wire.HistoryResponse, error) { return c.SessionHistory(ctx, pos[0], o) }
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if !asJSON {
		fmt.Fprintln(tw, "TIME\tSESSION\tSUBJECT\tEVENT\tSTATE\tREASON\tCONNECTION\tKIND\tNODE\tCLIENT_IP\tOPENED\tDURATION\tCLOSE\tCODE\tUSER_AGENT")
	}
	n := 0
	for {
		page, err := read()
		if err != nil {
			return err
		}
		for _, e := range page.Events {
			if limit > 0 && n == limit {
				return tw.Flush()
			}
			n++
			if asJSON {
				if err := json.NewEncoder(stdout).Encode(e); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format(time.RFC3339), e.SessionID, e.Subject, e.Type, e.State, e.Reason, e.Connection, connColumns(e.Conn))
		}
		if page.NextCursor == "" {
			return tw.Flush()
		}
		o.Cursor = page.NextCursor
	}
}

// connColumns are the history's columns that describe an event's
// connection (KIND to USER_AGENT), tab-separated; empty for an event
// without one. OPENED to CODE are of a connection_closed event.
func connColumns(d *sessiond.ConnDetail) string {
	if d == nil {
		return strings.Repeat("\t", 7)
	}
	var opened, duration, code string
	if !d.ClosedAt.IsZero() {
		opened, duration = d.OpenedAt.Format(time.RFC3339), d.Duration().Round(time.Millisecond).String()
		if d.CloseCode != 0 {
			code = strconv.Itoa(d.CloseCode)
		}
	}
	ua := d.UserAgent
	if ua != "" {
		ua = strconv.Quote(ua) // it has spaces
	}
	return strings.Join([]string{d.Kind, d.Node, d.ClientIP, opened, duration, string(d.CloseReason), code, ua}, "\t")
}
