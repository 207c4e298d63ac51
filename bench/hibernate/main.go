// Command hibernate measures how punctual hibernation is (docs/hibernation.md),
// against two targets of the hibernation issue, one per -mode:
//
//   - hook: "the hibernate hook is called ≤ 50 ms after hibernate_after
//     elapses (p99 over 1,000 sessions)". A real Manager on the embedded
//     store (package pebble, in a temporary directory, every write fsynced
//     as in production) with one policy whose hibernate_after is -after
//     (3s), and a Go Runtime callback. The program creates -n sessions
//     (1,000), then validates each every -every (100ms, from a random
//     phase) until its own end of activity: the ends are spread evenly
//     over -window (2s), so the sessions come due one after another, not
//     all at once. Activity is over before the first comes due. For each
//     hibernate call the callback takes the time and the session as the
//     call carries it (as stored when the transition began), and the
//     program reports the call's lateness: call time minus
//     (LastActive + hibernate_after), LastActive as stored. It splits that
//     into the claim (the hibernating transition's StateSince minus the due
//     time: the deadline index claimed and the compare-and-set decided)
//     and the dispatch (the call minus StateSince: the write's fsync and
//     the call's goroutine), and times the store's writes from the end of
//     the activity on (an Observer). It also prints the call against the last
//     validation the program made, which is not what the engine stored:
//     activity is written at most once per touch_interval, so the stored
//     LastActive may be up to touch_interval older than the last activity,
//     and the session hibernates that much earlier than hibernate_after
//     after it (never later, but for the lateness measured).
//   - wake: "the wake ack is sent ≤ 20 ms after the connect arrives; ready
//     follows the hook's answer by ≤ 20 ms". The real server (the binary
//     -sessiond, `sessiond serve` with a config file written here: the
//     embedded store, an HS256 JWT secret, a policy with hibernate_after,
//     hooks.runtime.url pointing at an HTTP server inside this program).
//     The program creates -n sessions (200) over REST and hibernates each
//     by hand (POST /v1/sessions/{id}/hibernate); then, -c at a time (8),
//     opens a WebSocket to each with its token (X-Session-Token) and a JWT
//     for its subject, and measures the start of the dial to the ack
//     (which must say "waking"), and the hook's answer to the wake (taken
//     by the hook server just before it writes its 200; it
//     answers after -hook-delay, 100ms, so that the two latencies do not
//     overlap) to {"type":"ready"}. Both clocks are this process's.
//
// Both modes use the real clock: they measure latency. The machine (CPU
// model, Go version, load average) is printed first, so that a recorded
// figure carries its machine. Nothing here asserts a time; the program
// prints "met" or "not met" beside each target.
//
//	go run ./bench/hibernate -mode hook
//	B=$(mktemp -d) && go build -o $B/sessiond ./cmd/sessiond
//	go run ./bench/hibernate -mode wake -sessiond $B/sessiond
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/sessiond/sessiond/bench/internal/benchenv"
)

type options struct {
	mode string
	n    int
	dir  string

	// hook
	after  time.Duration
	window time.Duration
	every  time.Duration

	// wake
	sessiond  string
	addr      string
	conc      int
	hookDelay time.Duration
	keep      bool
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "hook", "hook (hibernate hook lateness, in process) or wake (WebSocket wake against the server binary)")
	flag.IntVar(&o.n, "n", 0, "sessions (default: 1000 for hook, 200 for wake)")
	flag.StringVar(&o.dir, "dir", "", "directory for the store or the server's data (default: a new temporary directory, removed after)")
	flag.DurationVar(&o.after, "after", 3*time.Second, "hook: the policy's hibernate_after")
	flag.DurationVar(&o.window, "window", 2*time.Second, "hook: the sessions' last activity is spread evenly over this window")
	flag.DurationVar(&o.every, "every", 100*time.Millisecond, "hook: each session is validated this often until its last activity")
	flag.StringVar(&o.sessiond, "sessiond", "", "wake: the sessiond binary to run (go build -o $B/sessiond ./cmd/sessiond)")
	flag.StringVar(&o.addr, "addr", "127.0.0.1:7695", "wake: the server's address")
	flag.IntVar(&o.conc, "c", 8, "wake: WebSocket connects at once")
	flag.DurationVar(&o.hookDelay, "hook-delay", 100*time.Millisecond, "wake: how long the runtime hook takes to answer a wake")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (and the server's log)")
	flag.Parse()

	benchenv.Header(os.Stdout, "hibernate -mode "+o.mode)
	var err error
	switch o.mode {
	case "hook":
		if o.n == 0 {
			o.n = 1000
		}
		err = hookMode(o)
	case "wake":
		if o.n == 0 {
			o.n = 200
		}
		err = wakeMode(o)
	default:
		err = fmt.Errorf("-mode must be hook or wake (got %q)", o.mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hibernate:", err)
		os.Exit(1)
	}
}

// tempDir returns o.dir, or a new temporary directory and a function that
// removes it (unless -keep).
func tempDir(o options) (string, func(), error) {
	if o.dir != "" {
		return o.dir, func() {}, os.MkdirAll(o.dir, 0o700)
	}
	d, err := os.MkdirTemp("", "sessiond-hibernate-")
	if err != nil {
		return "", nil, err
	}
	return d, func() {
		if o.keep {
			fmt.Println("kept", d)
			return
		}
		_ = os.RemoveAll(d)
	}, nil
}

// quantiles sorts ds and returns its p50, p99 and max (exact: the
// nearest-rank quantile of all values).
func quantiles(ds []time.Duration) (p50, p99, maxD time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	q := func(f float64) time.Duration {
		i := int(f*float64(len(ds))+0.999999) - 1
		return ds[min(max(i, 0), len(ds)-1)]
	}
	return q(.5), q(.99), ds[len(ds)-1]
}

// row prints one distribution: its count, min, p50, p99 and max.
func row(name string, ds []time.Duration) {
	if len(ds) == 0 {
		fmt.Printf("  %-50s (none)\n", name)
		return
	}
	p50, p99, mx := quantiles(ds)
	fmt.Printf("  %-50s n=%-5d min %9s  p50 %9s  p99 %9s  max %9s\n", name, len(ds),
		ms(ds[0]), ms(p50), ms(p99), ms(mx))
}

// ms formats d in milliseconds with two decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }

// verdict says whether p99 is within target.
func verdict(p99, target time.Duration) string {
	if p99 <= target {
		return "met"
	}
	return "not met"
}
