package redis

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// EnvBenchURL names the Redis the benchmarks run against: a standalone
// server's URL with a database of its own, empty at the start (a
// benchmark refuses a database with keys in it, and empties it when done).
const EnvBenchURL = "SESSIOND_BENCH_REDIS_URL"

// defaultBenchURL is the benchmarks' Redis when EnvBenchURL is not set.
const defaultBenchURL = "redis://127.0.0.1:6379/14"

// benchSessions is how many sessions (and raw records) the reads spread over.
const benchSessions = 10_000

// benchClient opens the benchmarks' Redis, or skips the benchmark if none
// answers. The database is emptied when the benchmark ends.
func benchClient(b *testing.B) *Client {
	b.Helper()
	rawURL := cmpOrEnv(EnvBenchURL, defaultBenchURL)
	o, err := ParseURL(rawURL)
	if err != nil {
		b.Fatalf("%s: %v", EnvBenchURL, err)
	}
	if o.Topology != Standalone {
		b.Fatalf("%s: the benchmarks need a standalone server (one database they may empty)", EnvBenchURL)
	}
	o.DialTimeout = time.Second
	c, err := Dial(o)
	if err != nil {
		b.Skipf("no Redis at %s (set %s): %v", o, EnvBenchURL, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		_ = c.Close()
		b.Skipf("no Redis at %s (set %s): %v", o, EnvBenchURL, err)
	}
	n, err := c.rc.Do(ctx, c.rc.B().Dbsize().Build()).AsInt64()
	if err != nil {
		b.Fatal(err)
	}
	if n != 0 {
		_ = c.Close()
		b.Fatalf("%s holds %d keys: the benchmarks need an empty database, which they empty again when done", o, n)
	}
	b.Cleanup(func() {
		if err := c.rc.Do(context.Background(), c.rc.B().Flushdb().Build()).Error(); err != nil {
			b.Errorf("emptying %s: %v", o, err)
		}
		_ = c.Close()
	})
	return c
}

func cmpOrEnv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// concurrently runs op b.N times from exactly n goroutines (not a
// multiple of GOMAXPROCS, as b.RunParallel would), each call with its own
// number, and reports the rate.
func concurrently(b *testing.B, n int, op func(ctx context.Context, i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	ctx := context.Background()
	b.ResetTimer()
	for range n {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := op(ctx, int(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// serverCounts are what Redis says it did: commands by name (INFO
// commandstats, without INFO itself) and keyspace changes
// (rdb_changes_since_last_save, which only a save resets: run the
// benchmarks on a server that does not save).
type serverCounts struct {
	calls     map[string]int64
	changes   int64
	serverCPU time.Duration // Redis's, user and system (INFO cpu)
	clientCPU time.Duration // this process's, user and system
	syscw     int64         // this process's write system calls (/proc/self/io)
}

func readServerCounts(b *testing.B, c *Client) serverCounts {
	b.Helper()
	ctx := context.Background()
	stats, err := c.rc.Do(ctx, c.rc.B().Info().Section("commandstats").Build()).ToString()
	if err != nil {
		b.Fatal(err)
	}
	out := serverCounts{calls: map[string]int64{}}
	for line := range strings.Lines(strings.TrimPrefix(stats, "txt:")) {
		name, rest, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "cmdstat_"), ":calls=")
		if !ok || name == "info" {
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		n, _ := strconv.ParseInt(calls, 10, 64)
		out.calls[name] = n
	}
	persistence, err := c.rc.Do(ctx, c.rc.B().Info().Section("persistence").Build()).ToString()
	if err != nil {
		b.Fatal(err)
	}
	out.changes, _ = strconv.ParseInt(infoField(persistence, "rdb_changes_since_last_save"), 10, 64)
	cpu, err := c.rc.Do(ctx, c.rc.B().Info().Section("cpu").Build()).ToString()
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range []string{"used_cpu_sys", "used_cpu_user"} {
		sec, _ := strconv.ParseFloat(infoField(cpu, f), 64)
		out.serverCPU += time.Duration(sec * float64(time.Second))
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		out.clientCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if io, err := os.ReadFile("/proc/self/io"); err == nil {
		out.syscw, _ = strconv.ParseInt(infoField(string(io), "syscw"), 10, 64)
	}
	return out
}

// reportServerCounts reports the commands Redis ran and the keys it
// changed per operation, between before and now, and logs the commands
// by name (go test -v). The counts are the server's: other clients of
// the same server add to them.
func reportServerCounts(b *testing.B, c *Client, before serverCounts) {
	b.Helper()
	after := readServerCounts(b, c)
	var total int64
	var by []string
	for name, n := range after.calls {
		if d := n - before.calls[name]; d > 0 {
			total += d
			by = append(by, fmt.Sprintf("%s %.3f", name, float64(d)/float64(b.N)))
		}
	}
	b.ReportMetric(float64(total)/float64(b.N), "cmds/op")
	b.ReportMetric(float64(after.changes-before.changes)/float64(b.N), "writes/op")
	b.ReportMetric(float64((after.serverCPU-before.serverCPU).Microseconds())/float64(b.N), "redis-cpu-µs/op")
	b.ReportMetric(float64((after.clientCPU-before.clientCPU).Microseconds())/float64(b.N), "client-cpu-µs/op")
	if after.syscw > 0 {
		b.ReportMetric(float64(after.syscw-before.syscw)/float64(b.N), "client-writes/op")
	}
	b.Logf("N=%d, Redis commands per op: %s", b.N, strings.Join(by, ", "))
}

// countingObserver counts the engine's calls of the store: reads (get),
// writes (update) and any other.
type countingObserver struct {
	sessiond.NopObserver
	gets, updates, others atomic.Int64
}

func (o *countingObserver) StoreOp(op string, _ time.Duration, _ error) {
	switch op {
	case "get":
		o.gets.Add(1)
	case "update":
		o.updates.Add(1)
	default:
		o.others.Add(1)
	}
}

// take returns the counts since the last take.
func (o *countingObserver) take() (gets, updates, others int64) {
	return o.gets.Swap(0), o.updates.Swap(0), o.others.Swap(0)
}

// BenchmarkValidateVsGet puts the engine's validation on Redis beside the
// least a read of a session can cost: a GET of a record of the same size,
// over the same rueidis client, from the same number of callers.
//
//	go test ./redis/ -run '^$' -bench ValidateVsGet -benchtime 3s -count 3
//
// At each concurrency, in turn:
//
//   - GET: the raw client, GET of one of 10,000 string keys holding as
//     many random bytes as a session's record;
//   - StoreGet: Store.Get of one of 10,000 sessions (what a validation
//     reads);
//   - Validate: Manager.Validate of the sessions' tokens, under a policy
//     without rotation whose touch_interval (1h) has not elapsed, so that
//     no validation writes.
//
// Besides ops/s each reports cmds/op and writes/op as Redis counted them
// (INFO commandstats and rdb_changes_since_last_save, server-wide), and
// Validate the engine's store calls per validation (gets/op, and
// otherstoreops/op: updates and anything else, background work included).
func BenchmarkValidateVsGet(b *testing.B) {
	c := benchClient(b)
	ctx := context.Background()
	st, err := NewStore(c, StoreOptions{})
	if err != nil {
		b.Fatal(err)
	}
	obs := &countingObserver{}
	policy := sessiond.Policy{Name: "bench", TTL: 24 * time.Hour, IdleTimeout: 2 * time.Hour, TouchInterval: time.Hour}
	m, err := sessiond.New(sessiond.Config{Store: st, Policies: []sessiond.Policy{policy}, Observer: obs, Node: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close(); _ = st.Close() })

	tokens := make([]string, benchSessions)
	ids := make([]string, benchSessions)
	for i := range tokens {
		created, err := m.Create(ctx, sessiond.CreateRequest{Subject: fmt.Sprint("user-", i)})
		if err != nil {
			b.Fatal(err)
		}
		tokens[i], ids[i] = created.Token, created.Session.ID
	}
	recLen, err := c.rc.Do(ctx, c.rc.B().Strlen().Key(st.k.record(st.k.homePartition(ids[0]), ids[0])).Build()).AsInt64()
	if err != nil || recLen == 0 {
		b.Fatalf("the length of a session's record: %d, %v", recLen, err)
	}
	b.Logf("a session's record: %d bytes", recLen)
	val := make([]byte, recLen)
	_, _ = rand.Read(val)
	raw := make([]string, benchSessions)
	for i := range raw {
		raw[i] = "bench:raw:" + strconv.Itoa(i)
		if err := c.rc.Do(ctx, c.rc.B().Set().Key(raw[i]).Value(string(val)).Build()).Error(); err != nil {
			b.Fatal(err)
		}
	}

	for _, n := range []int{16, 64} {
		b.Run(fmt.Sprintf("c=%d", n), func(b *testing.B) {
			b.Run("GET", func(b *testing.B) {
				before := readServerCounts(b, c)
				concurrently(b, n, func(ctx context.Context, i int) error {
					return c.rc.Do(ctx, c.rc.B().Get().Key(raw[i%benchSessions]).Build()).Error()
				})
				reportServerCounts(b, c, before)
			})
			b.Run("StoreGet", func(b *testing.B) {
				before := readServerCounts(b, c)
				concurrently(b, n, func(ctx context.Context, i int) error {
					_, err := st.Get(ctx, ids[i%benchSessions])
					return err
				})
				reportServerCounts(b, c, before)
			})
			b.Run("Validate", func(b *testing.B) {
				obs.take()
				before := readServerCounts(b, c)
				concurrently(b, n, func(ctx context.Context, i int) error {
					_, err := m.Validate(ctx, tokens[i%benchSessions], sessiond.Device{})
					return err
				})
				reportServerCounts(b, c, before)
				gets, updates, others := obs.take()
				b.ReportMetric(float64(gets)/float64(b.N), "gets/op")
				b.ReportMetric(float64(updates+others)/float64(b.N), "otherstoreops/op")
			})
		})
	}
}

// memoryUsage is MEMORY USAGE of a key, exact (SAMPLES 0): its value, its
// name and the keyspace's entry for it, as Redis counts them.
func memoryUsage(b *testing.B, c *Client, key string) int64 {
	b.Helper()
	n, err := c.rc.Do(context.Background(), c.rc.B().MemoryUsage().Key(key).Samples(0).Build()).AsInt64()
	if err != nil && !isNil(err) {
		b.Fatalf("MEMORY USAGE %s: %v", key, err)
	}
	return n
}

func isNil(err error) bool { return err != nil && strings.Contains(err.Error(), "nil") }

func usedMemory(b *testing.B, c *Client) int64 {
	b.Helper()
	info, err := c.rc.Do(context.Background(), c.rc.B().Info().Section("memory").Build()).ToString()
	if err != nil {
		b.Fatal(err)
	}
	n, _ := strconv.ParseInt(infoField(info, "used_memory"), 10, 64)
	return n
}

// BenchmarkMemoryPerSession creates b.N sessions without metadata or
// device, one subject each, through the engine on an empty database, and
// reports what Redis holds for each:
//
//		go test ./redis/ -run '^$' -bench MemoryPerSession -benchtime 100000x
//
//	  - used-bytes/session: INFO memory's used_memory after the creates
//	    less before, over b.N (the whole server's: run it on a Redis no one
//	    else uses);
//	  - keys-bytes/session: the sum of MEMORY USAGE of every key the store
//	    wrote, over b.N (this database's keys only);
//	  - without-log-bytes/session: the same without the event log, which
//	    holds one created event per session here but is capped at
//	    StoreOptions.EventRetention events whatever the sessions;
//	  - session-key, live-key, subj-key: MEMORY USAGE of one session's own
//	    keys (its hash, its subject's live and all-sessions indexes).
//
// The keys by name are logged (-v).
func BenchmarkMemoryPerSession(b *testing.B) {
	c := benchClient(b)
	ctx := context.Background()
	flush := func() {
		if err := c.rc.Do(ctx, c.rc.B().Flushdb().Build()).Error(); err != nil {
			b.Fatal(err)
		}
	}
	flush()
	st, err := NewStore(c, StoreOptions{})
	if err != nil {
		b.Fatal(err)
	}
	policy := sessiond.Policy{Name: "bench", TTL: 24 * time.Hour, IdleTimeout: 2 * time.Hour, TouchInterval: time.Hour}
	m, err := sessiond.New(sessiond.Config{Store: st, Policies: []sessiond.Policy{policy}, Node: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() { m.Close(); _ = st.Close(); flush() }()
	before := usedMemory(b, c)
	subject := func(i int) string { return fmt.Sprintf("user-%07d", i) }
	var first *sessiond.Session
	var once sync.Once
	concurrently(b, 32, func(ctx context.Context, i int) error {
		created, err := m.Create(ctx, sessiond.CreateRequest{Subject: subject(i)})
		if err == nil {
			once.Do(func() { first = created.Session })
		}
		return err
	})
	if first == nil {
		return
	}
	after := usedMemory(b, c)
	p := st.k.subjectPartition(first.Subject)
	own := map[string]int64{
		"session": memoryUsage(b, c, st.k.session(p, first.ID)),
		"record":  memoryUsage(b, c, st.k.record(p, first.ID)),
		"live":    memoryUsage(b, c, st.k.live(p, first.Subject)),
		"subj":    memoryUsage(b, c, st.k.subject(p, first.Subject)),
	}
	// Keys shared by a partition's sessions, summed over the partitions.
	shared := map[string]int64{"leases": memoryUsage(b, c, st.k.leases())}
	var keys int64 // every session's own keys, by the ids indexes
	for q := range st.k.n {
		for name, key := range map[string]string{"ids": st.k.ids(q), "bystate": st.k.byState(q), "stats": st.k.stats(q), "events": st.k.events(q), "due": st.k.due(q)} {
			if n, err := c.rc.Do(ctx, c.rc.B().Exists().Key(key).Build()).AsInt64(); err == nil && n == 1 {
				shared[name] += memoryUsage(b, c, key)
			}
		}
		ids, err := st.rangeLex(ctx, st.k.ids(q), "-", "+", -1)
		if err != nil {
			b.Fatal(err)
		}
		for _, id := range ids {
			s, err := st.Get(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			keys += memoryUsage(b, c, st.k.session(q, id)) + memoryUsage(b, c, st.k.record(q, id)) +
				memoryUsage(b, c, st.k.live(q, s.Subject)) + memoryUsage(b, c, st.k.subject(q, s.Subject))
		}
	}
	var all int64
	for _, n := range shared {
		all += n
	}
	n := float64(b.N)
	b.ReportMetric(float64(after-before)/n, "used-bytes/session")
	b.ReportMetric(float64(keys+all)/n, "keys-bytes/session")
	b.ReportMetric(float64(keys+all-shared["events"])/n, "without-log-bytes/session")
	b.ReportMetric(float64(own["session"]), "session-key")
	b.ReportMetric(float64(own["record"]), "record-key")
	b.ReportMetric(float64(own["live"]), "live-key")
	b.ReportMetric(float64(own["subj"]), "subj-key")
	dbsize, _ := c.rc.Do(ctx, c.rc.B().Dbsize().Build()).AsInt64()
	fields, _ := c.rc.Do(ctx, c.rc.B().Hgetall().Key(st.k.session(p, first.ID)).Build()).AsStrMap()
	var lens []string
	for f, v := range fields {
		lens = append(lens, fmt.Sprintf("%s %d", f, len(v)))
	}
	enc, _ := c.rc.Do(ctx, c.rc.B().ObjectEncoding().Key(st.k.session(p, first.ID)).Build()).ToString()
	b.Logf("N=%d: %d keys; one session's keys: %v (its hash: %s, fields in bytes: %s); shared keys: %v; used_memory %d -> %d",
		b.N, dbsize, own, enc, strings.Join(lens, ", "), shared, before, after)
}
