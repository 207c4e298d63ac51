// Command million holds a million live sessions in one process and measures
// what they cost in memory and how punctually their deadlines fire.
//
// Phase "memory" creates -n sessions (no metadata, one subject each unless
// -per-subject says otherwise) through a sessiond.Manager on the inmem store,
// under the default policy (ttl 24h, idle 30m: nothing expires meanwhile),
// from many goroutines, and reports the heap they hold per session. It
// breaks the total down by building each part alone: a deadline.Scheduler
// with -n keys, the session records, a memindex.Index holding them, and the
// inmem store's event ring (preallocated, so a fixed cost). With -metadata N
// (default 256) the engine run is repeated with N bytes of metadata per
// session, to show what metadata adds beyond its own bytes. The target is
// at most 400 bytes per session for the engine plus its scheduler, beyond
// the metadata itself.
//
// Memory is HeapAlloc read after runtime.GC() (run twice, so sync.Pool
// caches are emptied too): after a forced collection it is exactly the
// bytes of the objects still reachable, each rounded up to its allocation
// size class, so it measures the data structures and nothing of the
// allocation history. HeapInuse is printed beside it: it also counts the
// free slots inside spans that still hold a live object, such as those of
// the Manager's own copy of each new Session, freed once the store has
// cloned it, which sit between the live copies. Those slots are reused by
// later allocations, so HeapInuse is an upper bound that depends on the order
// things were allocated in; HeapAlloc is the cost of what the engine keeps.
//
// Phase "lateness" creates -lateness-n sessions under a policy with only a
// ttl, at a steady pace over -spread (30s for a million; for fewer, the same
// 33,333 a second, over at least 5s). Session i is due at exactly
// start + i*spread/n + ttl: a per-create ttl override (within the policy's
// bounds) takes off however late its create ran, so the deadlines are evenly
// spread even when creation stutters. Then every session expires through the
// scheduler, with no reads. Each fired deadline's lateness
// (Observer.SchedulerLag) goes into a histogram; the program reports count,
// p50, p90, p99, p99.9 and max against the target p99 <= 10ms, how long after
// the last deadline all sessions were ended (counted from the Observer's
// ended events), the GC cycles meanwhile, and a per-second timeline of the
// worst lateness beside the GC cycles that ended. A control goroutine in the
// same process sleeps to a deadline every millisecond over the same window
// and reports its own lateness: when it is late too, the machine or the Go
// runtime was, not the engine.
//
//	go run ./bench/million -n 20000 -lateness-n 20000    # quick check, ~15s
//	B=$(mktemp -d) && go build -o $B/million ./bench/million
//	$B/million                                           # the full million, ~2 min
//	$B/million -phases memory -memprofile $B/mem.pprof
//	go tool pprof -sample_index=inuse_space -top $B/million $B/mem.pprof
//	GODEBUG=gctrace=1 $B/million -phases lateness -cpuprofile $B/cpu.pprof
//	go tool pprof -top $B/million $B/cpu.pprof
//
// The header names the machine and the Go version, so that the figures can
// be recorded with them; record them from a quiet machine (the control line
// shows how quiet it was). The engine logs at warn level into io.Discard; at
// info it would format a line per ended session.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/sessiond/sessiond/bench/internal/benchenv"
)

type options struct {
	n            int
	perSubject   int
	metadata     int
	goroutines   int
	phases       []string
	latenessN    int
	spread       time.Duration
	ttl          time.Duration
	schedWorkers int
	timeline     bool
	cpuprofile   string
	memprofile   string
	memrate      int
}

func main() {
	var o options
	var phases string
	flag.IntVar(&o.n, "n", 1_000_000, "live sessions for the memory phase")
	flag.IntVar(&o.perSubject, "per-subject", 1, "sessions per subject (1: every session its own subject, the index's worst case)")
	flag.IntVar(&o.metadata, "metadata", 256, "repeat the engine run with this many bytes of metadata per session (0: skip)")
	flag.IntVar(&o.goroutines, "goroutines", 16, "goroutines creating sessions")
	flag.StringVar(&phases, "phases", "memory,lateness", "phases to run, comma separated: memory, lateness")
	flag.IntVar(&o.latenessN, "lateness-n", -1, "sessions for the lateness phase (default: -n)")
	flag.DurationVar(&o.spread, "spread", 0, "lateness phase: create at a steady pace over this long, so deadlines spread over it (default: 30s for a million sessions, shorter in proportion for fewer, at least 5s)")
	flag.DurationVar(&o.ttl, "ttl", 0, "lateness phase: the sessions' ttl (default: spread*4/3 + 1s, so creation is over before the first expiry)")
	flag.IntVar(&o.schedWorkers, "sched-workers", 0, "Config.Workers: deadlines handled at once (0: the engine's default, 32)")
	flag.BoolVar(&o.timeline, "timeline", true, "lateness phase: print a per-second timeline of fired deadlines, their worst lateness and GC cycles")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run to the file")
	flag.StringVar(&o.memprofile, "memprofile", "", "write a heap profile taken with the engine's -n sessions live (memory phase)")
	flag.IntVar(&o.memrate, "memprofilerate", 16<<10, "runtime.MemProfileRate while -memprofile is set")
	flag.Parse()
	if o.latenessN < 0 {
		o.latenessN = o.n
	}
	if o.spread == 0 {
		// 1M over 30s: 33,333 deadlines a second, kept for smaller runs.
		o.spread = time.Duration(float64(o.latenessN) / 1e6 * float64(30*time.Second))
		o.spread = min(max(o.spread, 5*time.Second), 30*time.Second).Round(100 * time.Millisecond)
	}
	if o.ttl == 0 {
		o.ttl = (o.spread + o.spread/3 + time.Second).Round(100 * time.Millisecond)
	}
	for p := range strings.SplitSeq(phases, ",") {
		switch p = strings.TrimSpace(p); p {
		case "memory", "lateness":
			o.phases = append(o.phases, p)
		case "":
		default:
			fail(fmt.Errorf("-phases: unknown phase %q (memory, lateness)", p))
		}
	}
	if o.n < 1 || o.perSubject < 1 || o.goroutines < 1 || o.metadata < 0 || o.spread <= 0 || o.ttl < o.spread/2 {
		fail(fmt.Errorf("bad flags: need -n >= 1, -per-subject >= 1, -goroutines >= 1, -metadata >= 0, -spread > 0, -ttl >= spread/2"))
	}
	if o.memprofile != "" {
		runtime.MemProfileRate = o.memrate
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			fail(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer pprof.StopCPUProfile()
	}

	benchenv.Header(os.Stdout, "million "+strings.Join(os.Args[1:], " "))
	ok := true
	if slices.Contains(o.phases, "memory") {
		met, err := memoryPhase(o)
		if err != nil {
			fail(err)
		}
		ok = ok && met
	}
	if slices.Contains(o.phases, "lateness") && o.latenessN > 0 {
		met, err := latenessPhase(o)
		if err != nil {
			fail(err)
		}
		ok = ok && met
	}
	if !ok {
		fmt.Println("\nRESULT: at least one target was not met (see above)")
	} else {
		fmt.Println("\nRESULT: all targets met")
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "million:", err)
	os.Exit(1)
}

// quietLogger discards everything; info lines are not even formatted.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
