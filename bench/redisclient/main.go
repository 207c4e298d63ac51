// Command redisclient measures what decides the Redis client of the Redis
// store: go-redis v9 (a pool, one connection per call in flight) against
// rueidis (calls from many goroutines pipelined on shared connections), on
// the two operations the store lives on, from parallel callers:
//
//   - read: GET of a 300-byte session record, what a validation costs (one
//     round trip, no write);
//   - write: a Lua script called by SHA that creates a record if its id is
//     free, adds it to its subject's index and to a deadline set, in one
//     hash slot (what a create costs).
//
// Each client runs each operation at each concurrency for -d, in turn, on
// the same server in one run. It is its own module so that the client that
// lost never becomes a dependency of sessiond.
//
//	cd bench/redisclient && go run . -addr 127.0.0.1:6379 -db 15 -d 5s
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
)

// createScript is the shape of the store's create: refuse a taken id, write
// the record, index it by subject and schedule its deadline.
const createScript = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
return 1`

// client is one Redis client under test.
type client struct {
	name   string
	get    func(ctx context.Context, key string) error
	create func(ctx context.Context, keys []string, args ...string) error
	close  func()
}

func main() {
	addr := flag.String("addr", "127.0.0.1:6379", "Redis address")
	db := flag.Int("db", 15, "Redis database (flushed before and after)")
	dur := flag.Duration("d", 5*time.Second, "duration of each measurement")
	conc := flag.String("c", "1,16,64,256", "concurrencies")
	flag.Parse()
	var levels []int
	for f := range strings.SplitSeq(*conc, ",") {
		n, err := strconv.Atoi(f)
		check(err)
		levels = append(levels, n)
	}
	fmt.Printf("# redisclient: %s db %d, %v per measurement, %d CPUs, %s\n", *addr, *db, *dur, runtime.NumCPU(), runtime.Version())

	ctx := context.Background()
	val := make([]byte, 300)
	_, _ = rand.Read(val)
	const records = 10_000
	admin := goredis.NewClient(&goredis.Options{Addr: *addr, DB: *db})
	check(admin.FlushDB(ctx).Err())
	defer func() { check(admin.FlushDB(ctx).Err()); _ = admin.Close() }()
	for i := range records {
		check(admin.Set(ctx, recordKey(i), val, 0).Err())
	}

	round := 0 // numbers the measurements: their ids never collide
	for _, op := range []string{"read", "write"} {
		fmt.Printf("\n%-6s %-34s %6s %12s %9s %9s\n", "op", "client", "conc", "ops/s", "p50", "p99")
		for _, n := range levels {
			for _, mk := range []func() client{
				func() client { return goRedis(*addr, *db, 0) },
				func() client { return goRedis(*addr, *db, n) },
				func() client { return rueidisClient(*addr, *db) },
			} {
				c := mk()
				round++
				var run func(ctx context.Context, i int64) error
				switch op {
				case "read":
					run = func(ctx context.Context, i int64) error { return c.get(ctx, recordKey(int(i%records))) }
				case "write":
					run = func(ctx context.Context, i int64) error {
						id := strconv.Itoa(round) + "-" + strconv.FormatInt(i, 36)
						sub := "u" + strconv.FormatInt(i%1000, 10)
						return c.create(ctx, []string{"{" + sub + "}:s:" + id, "{" + sub + "}:subj", "{" + sub + "}:dl"},
							string(val), strconv.FormatInt(time.Now().Unix()+3600, 10), id)
					}
				}
				ops, p50, p99 := measure(ctx, n, *dur, run)
				fmt.Printf("%-6s %-34s %6d %12.0f %9s %9s\n", op, c.name, n, ops, p50, p99)
				c.close()
			}
		}
	}
}

func recordKey(i int) string { return "{s" + strconv.Itoa(i) + "}:rec" }

func goRedis(addr string, db, pool int) client {
	name := "go-redis v9, default pool"
	opts := &goredis.Options{Addr: addr, DB: db}
	if pool > 0 {
		name = fmt.Sprintf("go-redis v9, pool %d", pool)
		opts.PoolSize = pool
	}
	r := goredis.NewClient(opts)
	script := goredis.NewScript(createScript)
	return client{
		name: name,
		get: func(ctx context.Context, key string) error {
			_, err := r.Get(ctx, key).Bytes()
			return err
		},
		create: func(ctx context.Context, keys []string, args ...string) error {
			a := make([]any, len(args))
			for i, s := range args {
				a[i] = s
			}
			return script.Run(ctx, r, keys, a...).Err()
		},
		close: func() { _ = r.Close() },
	}
}

func rueidisClient(addr string, db int) client {
	r, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, SelectDB: db, DisableCache: true})
	check(err)
	script := rueidis.NewLuaScript(createScript)
	return client{
		name: "rueidis, auto pipelining",
		get: func(ctx context.Context, key string) error {
			_, err := r.Do(ctx, r.B().Get().Key(key).Build()).AsBytes()
			return err
		},
		create: func(ctx context.Context, keys []string, args ...string) error {
			return script.Exec(ctx, r, keys, args).Error()
		},
		close: r.Close,
	}
}

// measure runs op from n goroutines for d and returns the rate and the
// median and 99th percentile latencies.
func measure(ctx context.Context, n int, d time.Duration, op func(context.Context, int64) error) (float64, time.Duration, time.Duration) {
	var (
		next  atomic.Int64
		stop  atomic.Bool
		mu    sync.Mutex
		lats  []time.Duration
		wg    sync.WaitGroup
		first error
	)
	// Warm up: connections open, the script is loaded.
	for i := range int64(n) {
		check(op(ctx, 1<<40+i))
	}
	start := time.Now()
	for range n {
		wg.Go(func() {
			mine := make([]time.Duration, 0, 1<<14)
			for !stop.Load() {
				t := time.Now()
				if err := op(ctx, next.Add(1)); err != nil {
					mu.Lock()
					first = cmp(first, err)
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		})
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	took := time.Since(start)
	check(first)
	slices.Sort(lats)
	pct := func(p float64) time.Duration { return lats[int(float64(len(lats)-1)*p)].Round(time.Microsecond) }
	return float64(len(lats)) / took.Seconds(), pct(0.50), pct(0.99)
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "redisclient:", err)
		os.Exit(1)
	}
}
