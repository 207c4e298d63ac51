// Package postgres keeps the lifecycle history of sessions in PostgreSQL:
// every event of a store's log, once, for audit and analytics.
//
// A History follows the store's durable event log (sessiond.Store.Events)
// with a cursor of its own, kept in PostgreSQL and moved in the same
// transaction as the rows it writes. So it is never on a validation's
// path, a PostgreSQL outage needs no spool (the log is the spool: the sink
// goes on from its cursor when PostgreSQL is back), a restart or a second
// node following the same log writes nothing twice (the cursor's row is
// locked while a batch is written, and a batch read past a cursor that
// moved is not written), and an outage longer than the log's retention
// shows as a gap, recorded in sessiond_history_gaps and counted.
//
// Events go to a table partitioned by day (sessiond_events, made as events
// arrive), and every connection the events describe to one row of
// sessiond_connections (opened by its connected or resumed event, closed
// by its connection_closed, in the same transaction), partitioned by the
// day it opened; Prune drops the days older than the retention. The schema is in
// migrations/, applied by Open under an advisory lock, so nodes that start
// together apply it once.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/wait"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Defaults of Options' zero values.
const (
	DefaultRetention = 90 * 24 * time.Hour
	DefaultBatch     = 1000
	DefaultPoll      = time.Second
	DefaultLinger    = 100 * time.Millisecond
	DefaultName      = "default"
)

// Options configure a History.
type Options struct {
	// Schema holds the tables; "" means public.
	Schema string
	// Retention is how long events are kept: days older are dropped by
	// Prune. 0 means DefaultRetention.
	Retention time.Duration
	// Name names the log followed (the cursor's row): "" means
	// DefaultName. Nodes that share a store share it.
	Name string
	// Batch is how many events one transaction writes at most. 0 means
	// DefaultBatch.
	Batch int
	// Poll is how long Follow waits for new events when the store cannot
	// say when its log grows (sessiond.EventWaiter). 0 means DefaultPoll.
	Poll time.Duration
	// Linger is how long Follow waits, once the store's log has grown
	// after a batch that was not full, before it reads the next: so that a
	// trickle of events is written in a few transactions a second, not one
	// per commit. 0 means DefaultLinger; negative, none.
	Linger time.Duration
	Logger *slog.Logger
}

// History is the history sink and its tables.
type History struct {
	pool   *pgxpool.Pool
	o      Options
	schema string // quoted

	mu   sync.Mutex
	days map[string]bool // partitions known to exist, by name (sessiond_events_20260102)

	written, gaps, failures atomic.Int64
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// CheckDSN reports whether dsn is a connection string Open can use,
// without connecting: a postgres:// URL or key=value pairs that parse. Its
// error does not show the password.
func CheckDSN(dsn string) error {
	if _, err := pgxpool.ParseConfig(dsn); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// Open connects to the database the DSN names, and creates or updates the
// tables.
func Open(ctx context.Context, dsn string, o Options) (*History, error) {
	if o.Schema == "" {
		o.Schema = "public"
	}
	if !schemaName.MatchString(o.Schema) {
		return nil, fmt.Errorf("postgres: schema %q: lower-case letters, digits and _ only", o.Schema)
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.Linger == 0 {
		o.Linger = DefaultLinger
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "sessiond-history"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	h := &History{pool: pool, o: o, schema: pgx.Identifier{o.Schema}.Sanitize(), days: map[string]bool{}}
	if err := h.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return h, nil
}

// Close closes the connections.
func (h *History) Close() { h.pool.Close() }

// Stats are a History's counts since it opened.
type Stats struct {
	Written  int64 // events written
	Gaps     int64 // gaps found in the log
	Failures int64 // batches that failed (and were tried again)
}

// Stats returns the counts.
func (h *History) Stats() Stats {
	return Stats{Written: h.written.Load(), Gaps: h.gaps.Load(), Failures: h.failures.Load()}
}

// migrate applies the migrations not applied yet, each once, under a
// transaction-scoped advisory lock: nodes that start together take turns.
func (h *History) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	slices.Sort(names)
	tx, err := h.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	lock := fnv.New64a()
	_, _ = lock.Write([]byte("sessiond-history:" + h.o.Schema))                                      // a hash.Hash never fails
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(lock.Sum64())); err != nil { //nolint:gosec // a lock key: the bits, not the value
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+h.schema); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+h.schema+".sessiond_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL)"); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	for _, name := range names {
		var done bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+h.schema+".sessiond_migrations WHERE name = $1)", name).Scan(&done); err != nil {
			return fmt.Errorf("postgres: migrate: %w", err)
		}
		if done {
			continue
		}
		src, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		var sql strings.Builder
		if err := template.Must(template.New(name).Parse(string(src))).Execute(&sql, struct{ Schema string }{h.schema}); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, sql.String()); err != nil {
			return fmt.Errorf("postgres: migration %s: %w", name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+h.schema+".sessiond_migrations VALUES ($1, now())", name); err != nil {
			return fmt.Errorf("postgres: migrate: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// Follow copies the store's events into the history until ctx ends, and
// drops days past the retention once an hour. A batch that fails (the
// database unreachable) is tried again after a pause that grows to 5s.
// It returns ctx's error.
func (h *History) Follow(ctx context.Context, st sessiond.Store) error {
	pause := 100 * time.Millisecond
	pruned := time.Time{}
	for ctx.Err() == nil {
		if time.Since(pruned) > time.Hour {
			if err := h.Prune(ctx, time.Now()); err != nil {
				h.o.Logger.Warn("history: dropping old days", "err", err)
			} else {
				pruned = time.Now()
			}
		}
		n, pos, err := h.Step(ctx, st)
		switch {
		case err != nil && ctx.Err() == nil:
			h.failures.Add(1)
			h.o.Logger.Warn("history: writing events; trying again", "in", pause, "err", err)
			_ = wait.Sleep(ctx, pause)
			pause = min(2*pause, 5*time.Second)
		case n == h.o.Batch:
			pause = 100 * time.Millisecond
		default:
			pause = 100 * time.Millisecond
			h.wait(ctx, st, pos)
			if h.o.Linger > 0 {
				_ = wait.Sleep(ctx, h.o.Linger)
			}
		}
	}
	return ctx.Err()
}

// wait returns once the store's log may hold events past pos, or after
// the poll interval.
func (h *History) wait(ctx context.Context, st sessiond.Store, pos sessiond.Cursor) {
	sessiond.AwaitEvents(ctx, sessiond.SystemClock{}, st, pos, h.o.Poll)
}

// Step writes the next batch of the store's events past the cursor, and
// moves the cursor, in one transaction. It returns how many events it
// wrote and the cursor after them.
func (h *History) Step(ctx context.Context, st sessiond.Store) (int, sessiond.Cursor, error) {
	tx, err := h.pool.Begin(ctx)
	if err != nil {
		return 0, sessiond.Cursor{}, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	pos, err := h.lockCursor(ctx, tx)
	if err != nil {
		return 0, pos, err
	}
	evs, err := st.Events(ctx, pos, h.o.Batch)
	if err != nil || len(evs) == 0 {
		return 0, pos, err
	}
	next, gaps := pos, 0
	for _, e := range evs {
		if next.Missed(e) > 0 {
			gaps++
			if _, err := tx.Exec(ctx, "INSERT INTO "+h.schema+".sessiond_history_gaps VALUES (now(), $1, $2, $3)",
				e.Partition, int64(next.Seq(e.Partition)), int64(e.Seq)); err != nil { //nolint:gosec // Seqs stay far below 2^63
				return 0, pos, err
			}
		}
		next = next.After(e)
	}
	var made []string // partitions this transaction makes
	if err := h.insert(ctx, tx, evs, &made); err != nil {
		return 0, pos, h.partitionGone(err)
	}
	if err := h.upsertConns(ctx, tx, evs, &made); err != nil {
		return 0, pos, h.partitionGone(err)
	}
	if _, err := tx.Exec(ctx, "UPDATE "+h.schema+".sessiond_history_cursor SET position = $2, updated_at = now() WHERE name = $1",
		h.o.Name, next.String()); err != nil {
		return 0, pos, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, pos, err
	}
	h.known(made)
	h.written.Add(int64(len(evs)))
	if gaps > 0 {
		h.gaps.Add(int64(gaps))
		h.o.Logger.Warn("history: the store's log no longer held some events (an outage longer than its retention)", "gaps", gaps)
	}
	return len(evs), next, nil
}

// lockCursor reads the cursor's row, locked until the transaction ends
// (made at the log's beginning if there is none).
func (h *History) lockCursor(ctx context.Context, tx pgx.Tx) (sessiond.Cursor, error) {
	if _, err := tx.Exec(ctx, "INSERT INTO "+h.schema+".sessiond_history_cursor VALUES ($1, '0', now()) ON CONFLICT (name) DO NOTHING", h.o.Name); err != nil {
		return sessiond.Cursor{}, err
	}
	var text string
	if err := tx.QueryRow(ctx, "SELECT position FROM "+h.schema+".sessiond_history_cursor WHERE name = $1 FOR UPDATE", h.o.Name).Scan(&text); err != nil {
		return sessiond.Cursor{}, err
	}
	c, err := sessiond.ParseCursor(text)
	if err != nil {
		return c, fmt.Errorf("postgres: the history's cursor %q: %w", text, err)
	}
	return c, nil
}

// eventColumns are the columns of sessiond_events that insert writes.
var eventColumns = []string{"at", "log_part", "seq", "type", "session_id", "subject", "state", "reason", "version", "generation", "connection", "event"}

// insert writes events into day partitions made first if need be, with
// COPY: the cursor's row is locked and the events come from past it, so
// none of them can be in the table already (a transaction that wrote one
// moved the cursor past it). Should one be there all the same (the
// cursor's row set back by hand), the COPY, run under a savepoint, fails
// on the primary key, and the batch is written again with an INSERT that
// leaves the events already there as they are.
func (h *History) insert(ctx context.Context, tx pgx.Tx, evs []sessiond.Event, made *[]string) error {
	n := len(evs)
	at, part, seq := make([]time.Time, n), make([]int32, n), make([]int64, n)
	typ, sid, subj, state, reason, conn := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	version, gen := make([]int64, n), make([]int64, n)
	docs := make([]string, n)
	days := map[string]time.Time{}
	for i, e := range evs {
		at[i], part[i], seq[i] = e.Time.UTC(), int32(e.Partition), int64(e.Seq) //nolint:gosec // partitions < 2^31, Seqs < 2^63
		typ[i], sid[i], subj[i], state[i], reason[i], conn[i] = string(e.Type), e.SessionID, e.Subject, e.State.String(), string(e.Reason), e.Connection
		version[i], gen[i] = int64(e.Version), int64(e.Generation) //nolint:gosec // versions stay far below 2^63
		doc, err := json.Marshal(e)
		if err != nil {
			return err
		}
		docs[i] = string(doc)
		d := at[i].Truncate(24 * time.Hour)
		days[d.Format("20060102")] = d
	}
	for name, day := range days {
		if err := h.ensureDay(ctx, tx, "sessiond_events", name, day, made); err != nil {
			return err
		}
	}
	dup, err := copyRows(ctx, tx, pgx.Identifier{h.o.Schema, "sessiond_events"}, eventColumns, n, func(i int) []any {
		return []any{at[i], part[i], seq[i], typ[i], sid[i], subj[i], state[i], reason[i], version[i], gen[i], conn[i], docs[i]}
	})
	if !dup {
		return err
	}
	h.o.Logger.Warn("history: events past the cursor were in the table already (was the cursor set back?): keeping the rows there", "events", n)
	_, err = tx.Exec(ctx, `INSERT INTO `+h.schema+`.sessiond_events (`+strings.Join(eventColumns, ", ")+`)
		SELECT * FROM unnest($1::timestamptz[], $2::int[], $3::bigint[], $4::text[], $5::text[], $6::text[],
			$7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::text[], $12::jsonb[])
		ON CONFLICT DO NOTHING`,
		at, part, seq, typ, sid, subj, state, reason, version, gen, conn, docs)
	return err
}

// copyRows writes n rows into table with COPY, under a savepoint. If a
// row's key is in the table already, it rolls the savepoint back and
// returns dup: the caller writes the rows again in a way that keeps what
// is there (the COPY is the fast path of rows that cannot be there: see
// insert).
func copyRows(ctx context.Context, tx pgx.Tx, table pgx.Identifier, cols []string, n int, row func(int) []any) (dup bool, err error) {
	if n == 0 {
		return false, nil
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return false, err
	}
	_, err = sp.CopyFrom(ctx, table, cols, pgx.CopyFromSlice(n, func(i int) ([]any, error) { return row(i), nil }))
	if err == nil {
		return false, sp.Commit(ctx)
	}
	if rerr := sp.Rollback(ctx); rerr != nil || !isUniqueViolation(err) {
		return false, err
	}
	return true, nil
}

// isUniqueViolation reports whether err is PostgreSQL's unique_violation.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// ensureDay makes the day partition of table (sessiond_events or
// sessiond_connections) in tx, if this process does not know it exists,
// and adds its name to made: it is known once tx commits (known). A
// partition made in a transaction that rolls back is gone with it, so it
// must not be taken for made before then; IF NOT EXISTS makes making it
// again, or one another node made, cost nothing.
func (h *History) ensureDay(ctx context.Context, tx pgx.Tx, table, name string, day time.Time, made *[]string) error {
	part := table + "_" + name
	h.mu.Lock()
	known := h.days[part]
	h.mu.Unlock()
	if known {
		return nil
	}
	_, err := tx.Exec(ctx, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s PARTITION OF %s.%s FOR VALUES FROM ('%s') TO ('%s')",
		h.schema, part, h.schema, table, day.Format(time.RFC3339), day.Add(24*time.Hour).Format(time.RFC3339)))
	if err != nil {
		return err
	}
	*made = append(*made, part)
	return nil
}

// partitionGone returns err, and if it says a row had no partition (one
// this process took for made was dropped: by another node's Prune), forgets
// the partitions it knows, so that the next batch makes them again.
func (h *History) partitionGone(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23514" && strings.Contains(pe.Message, "no partition") {
		h.mu.Lock()
		clear(h.days)
		h.mu.Unlock()
	}
	return err
}

// known records partitions a committed transaction made.
func (h *History) known(parts []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range parts {
		h.days[p] = true
	}
}

var dayPartition = regexp.MustCompile(`^sessiond_(?:events|connections)_(\d{8})$`)

// Prune drops the day partitions (of events, and of connections by the
// day they opened) that end before now less the retention.
func (h *History) Prune(ctx context.Context, now time.Time) error {
	rows, err := h.pool.Query(ctx, `SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
		JOIN pg_namespace n ON n.oid = p.relnamespace
		WHERE p.relname IN ('sessiond_events', 'sessiond_connections') AND n.nspname = $1`, h.o.Schema)
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	cutoff := now.Add(-h.o.Retention)
	var errs []error
	for _, name := range names {
		m := dayPartition.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		day, err := time.Parse("20060102", m[1])
		if err != nil || day.Add(24*time.Hour).After(cutoff) {
			continue
		}
		if _, err := h.pool.Exec(ctx, "DROP TABLE IF EXISTS "+h.schema+"."+pgx.Identifier{name}.Sanitize()); err != nil {
			errs = append(errs, err)
			continue
		}
		h.mu.Lock()
		delete(h.days, name)
		h.mu.Unlock()
	}
	return errors.Join(errs...)
}
