package main

import (
	"context"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/postgres"
)

// historySink copies the store's event log into PostgreSQL (--history) in
// the background: the server does not wait for PostgreSQL to start or to
// serve, and a PostgreSQL that is down at start is tried again until it
// answers (docs/history.md).
type historySink struct {
	cancel context.CancelFunc
	done   sync.WaitGroup

	mu sync.Mutex
	h  *postgres.History // nil until opened
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
				hs.h = nil
				hs.mu.Unlock()
				h.Close()
				return
			}
			log.Warn("history: cannot open PostgreSQL; trying again", "in", pause, "err", err)
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
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
