// Command wsload is a load generator for sessiond's WebSocket edge
// (GET /v1/connect, docs/protocol.md) over loopback, against a running
// `sessiond serve`. It measures four things, one per -mode:
//
//   - idle: -n connections (default 15,000), each its own subject and
//     device, connected by -c dialers and held open. The server's VmRSS
//     (from /proc/PID/status) is read before the first connect and again
//     -settle after the last ack: the difference divided by the connections
//     is the memory each costs, its session included. Then, for -idle, the
//     clients only answer the server's pings (a read loop each, nothing
//     sent), and the server's utime+stime over that window, divided by the
//     wall time, is the CPU idle connections cost; it is also printed in six
//     slices of the window. Needs -server-pid. The server's Go runtime
//     gauges (GET /metrics: heap, stacks, goroutines) are printed beside the
//     RSS, per connection. A pong counts as activity, written to the store
//     at most once per touch_interval (1m): from a minute after its connect,
//     each connection's session is written every third pong (75s), so a
//     window that should hold that steady state starts later (-settle 60s)
//     or lasts longer (-idle 3m). Targets: <= 8 KiB per connection, <= 5%
//     of one core.
//   - connect: -n connects (default 20,000) from -c dialers; each counts
//     when its `connected` ack arrives, and its latency runs from the start
//     of the dial (TCP connect, handshake, HS256 verification, session
//     create, ack). Credentials are signed beforehand. Each connection is
//     closed as soon as its ack is read (20,000 open at once would pass the
//     20,000 open-files cap of either process); -hold keeps them all open
//     until the last ack instead, for -n that fits. Target: >= 5,000/s.
//   - resume: -m device sessions (default 2,000) are connected, then all
//     closed by the client; once the server has seen every session
//     disconnected (GET /v1/stats, when the API key is at hand; else after
//     1s), each reconnects with the same subject and device, within the
//     grace, from -c dialers. Its latency runs from the start of the dial to
//     the ack with "resumed": true (an ack without it is an error).
//     Target: p99 <= 20ms.
//   - revoke: -m sessions are connected; then -c workers each take one
//     session at a time, send DELETE /v1/sessions/{id} with the API key and
//     wait for the socket's close frame with code 4500. The latency runs
//     from just before the DELETE is sent to the close frame's arrival.
//     The DELETE's own response time is printed beside it.
//     Target: p99 <= 50ms.
//   - all: idle, then connect, resume and revoke on the same server. Between
//     two modes it waits out the disconnect grace (-grace, plus 2s), then
//     until the server holds no disconnected session (with the API key) and
//     used less than 10% of a core over a second (with -server-pid), so that
//     one mode's sessions ending do not land in the next one's measurement.
//
// Every connection uses device mode (?device_id=..., no session token) and
// so the server's connect policy: with no config file that is the built-in
// "device" policy (ttl 24h, idle_timeout 1h, disconnect_grace 30s, one
// connection per session, heartbeat_interval 25s, heartbeat_timeout 60s;
// the first ping comes after a random part of the interval). Subjects and
// device ids are distinct per connection and per run. Credentials live
// -token-ttl (2h), so no refresh message comes during a run.
//
// The client is gws's (the library the server uses too): one goroutine and
// a 1 KiB read buffer per socket, pings answered from the read loop.
//
// # Running it
//
// Open files are capped at 20,000 per process here (`ulimit -n` prints
// 20000, soft and hard; Go raises its soft limit to the hard one by
// itself). The server needs -n plus a few descriptors (listener, store
// files), the client -n plus a few, so the two run as separate processes
// and nothing is raised. Loopback's ephemeral ports (32768-60999) are
// enough for the 15,000 held connections; connect mode's 20,000
// short-lived ones rely on net.ipv4.tcp_tw_reuse (2, the default, reuses
// TIME_WAIT ports on loopback). The server uses its built-in policies (no
// config file), so connections get the "device" policy described above.
//
//	B=$(mktemp -d)   # binaries and the server's data directory
//	S=wsload-secret-0123456789abcdef0123456789   # HS256 secret, >= 32 bytes
//	go build -o $B/sessiond ./cmd/sessiond && go build -o $B/wsload ./bench/wsload
//	$B/sessiond serve --store memory --addr 127.0.0.1:7650 --data-dir $B/data \
//	    --jwt-secret $S --log-level warn --log-format json 2>$B/server.log &
//	SERVER=$!
//	$B/wsload -addr 127.0.0.1:7650 -jwt-secret $S -mode idle -n 15000 -c 64 -idle 60s -server-pid $SERVER
//	$B/wsload -addr 127.0.0.1:7650 -jwt-secret $S -mode connect -n 20000 -c 64 -server-pid $SERVER
//	$B/wsload -addr 127.0.0.1:7650 -jwt-secret $S -mode resume -m 2000 -c 64 -data-dir $B/data -server-pid $SERVER
//	$B/wsload -addr 127.0.0.1:7650 -jwt-secret $S -mode revoke -m 2000 -c 64 -data-dir $B/data -server-pid $SERVER
//	kill $SERVER
//
// or all four in one go (about 5 minutes) against a fresh server:
//
//	$B/wsload -addr 127.0.0.1:7650 -jwt-secret $S -mode all -data-dir $B/data -server-pid $SERVER
//
// Both programs also read the secret from $SESSIOND_JWT_SECRET. For the
// embedded, durable store (fsync before ack, group commit), leave out
// --store memory and give each server its own empty --data-dir. Run idle
// against a freshly started server, so that its RSS baseline is not that
// of a heap grown by earlier runs (-mode all runs it first). The API key
// (revoke; resume uses it to see the disconnects, the "server:" lines to
// count sessions) is taken from -key, else $SESSIOND_API_KEY, else
// DATA_DIR/api_key.
//
// # Reading the output
//
// A machine header (as bench/restload's, with the load average), a table
// per mode with the latency distribution (HDR-style histogram,
// bench/internal/hist), the CPU the client and the server used, and one
// "target:" line per target with met or NOT MET, then a RESULT line. Each
// mode starts with a "server:" line (with the API key) saying how many
// sessions the server holds, by state: figures from the embedded store
// depend on what it already holds (ended sessions are kept for the
// retention, 24h, and the event log grows to its retention, 100,000
// events), so compare runs on servers with the same history, or fresh ones.
// On a small machine the client shares the cores with the server; its CPU
// is printed so that this is visible. Failed connects or revokes are
// listed by kind with a sample, and make the program exit 1.
//
// # Profiling the server
//
// The sessiond binary serves no /debug/pprof. A build with a file added
// from outside the tree by -overlay serves it, with nothing else changed:
//
//	cat > $B/zz_pprof.go <<'EOF'
//	package main
//
//	import (
//		"net/http"
//		_ "net/http/pprof"
//		"os"
//	)
//
//	func init() {
//		if addr := os.Getenv("SESSIOND_PPROF"); addr != "" {
//			go func() { _ = http.ListenAndServe(addr, nil) }()
//		}
//	}
//	EOF
//	echo '{"Replace":{"'$PWD'/cmd/sessiond/zz_pprof.go":"'$B'/zz_pprof.go"}}' > $B/overlay.json
//	go build -overlay $B/overlay.json -o $B/sessiond-pprof ./cmd/sessiond
//	SESSIOND_PPROF=127.0.0.1:6060 $B/sessiond-pprof serve ...   # as above
//	curl -o $B/cpu.pprof '127.0.0.1:6060/debug/pprof/profile?seconds=30'   # while wsload runs
//	go tool pprof -top -cum $B/sessiond-pprof $B/cpu.pprof
//	curl -o $B/heap.pprof '127.0.0.1:6060/debug/pprof/heap?gc=1'
//	go tool pprof -sample_index=inuse_space -top $B/sessiond-pprof $B/heap.pprof
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/sessiond/sessiond/bench/internal/benchenv"
)

type options struct {
	mode      string
	addr      string
	secret    string
	key       string
	dataDir   string
	n         int
	m         int
	conns     int
	idle      time.Duration
	settle    time.Duration
	grace     time.Duration
	serverPID int
	timeout   time.Duration
	hold      bool
	tokenTTL  time.Duration
	cpuprof   string
}

// Targets.
const (
	targetBytesPerConn = 8 << 10
	targetIdleCPU      = 0.05 // of one core
	targetConnectRate  = 5000 // connects+acks a second
	targetResumeP99    = 20 * time.Millisecond
	targetRevokeP99    = 50 * time.Millisecond
)

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "all", "idle, connect, resume, revoke or all")
	flag.StringVar(&o.addr, "addr", "127.0.0.1:7600", "server address host:port (or a http:// URL)")
	flag.StringVar(&o.secret, "jwt-secret", "", "the server's HS256 secret, to sign credentials (default $SESSIOND_JWT_SECRET)")
	flag.StringVar(&o.key, "key", "", "admin API key (default: $SESSIOND_API_KEY, else DATA_DIR/api_key); revoke needs it")
	flag.StringVar(&o.dataDir, "data-dir", "sessiond-data", "the server's data directory, where its generated api_key is")
	flag.IntVar(&o.n, "n", 0, "connections for idle and connect (0: 15000 for idle, 20000 for connect)")
	flag.IntVar(&o.m, "m", 2000, "sessions for resume and revoke")
	flag.IntVar(&o.conns, "c", 64, "concurrent dialers (and revoke workers)")
	flag.DurationVar(&o.idle, "idle", 60*time.Second, "idle: the window over which the server's CPU is measured")
	flag.DurationVar(&o.settle, "settle", 10*time.Second, "idle: wait this long after the last ack before reading the server's RSS")
	flag.DurationVar(&o.grace, "grace", 30*time.Second, "the connect policy's disconnect_grace (resume checks it is not exceeded; all waits it out between modes)")
	flag.IntVar(&o.serverPID, "server-pid", 0, "the server's pid: its RSS and CPU are read from /proc (required for idle)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-connect and per-revoke timeout")
	flag.BoolVar(&o.hold, "hold", false, "connect: keep every connection open until the last ack (needs -n open files in both processes)")
	flag.DurationVar(&o.tokenTTL, "token-ttl", 2*time.Hour, "lifetime of the signed credentials")
	flag.StringVar(&o.cpuprof, "cpuprofile", "", "write this program's CPU profile to the file")
	flag.Parse()
	if o.secret == "" {
		o.secret = os.Getenv("SESSIOND_JWT_SECRET")
	}
	ok, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsload:", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}

// run returns false when an operation failed (targets missed are reported,
// not failures).
func run(o options) (bool, error) {
	var modes []string
	switch o.mode {
	case "idle", "connect", "resume", "revoke":
		modes = []string{o.mode}
	case "all":
		modes = []string{"idle", "connect", "resume", "revoke"}
	default:
		return false, fmt.Errorf("-mode must be idle, connect, resume, revoke or all (got %q)", o.mode)
	}
	if o.secret == "" {
		return false, errors.New("no JWT secret: pass -jwt-secret or set SESSIOND_JWT_SECRET (the server's --jwt-secret)")
	}
	if o.conns < 1 || o.m < 1 || o.n < 0 || o.idle <= 0 || o.settle < 0 || o.timeout <= 0 {
		return false, errors.New("-c and -m must be at least 1, -n not negative, -idle and -timeout positive")
	}
	if o.serverPID == 0 && (o.mode == "idle" || o.mode == "all") {
		return false, errors.New("idle needs -server-pid: the server's RSS and CPU are read from /proc/PID")
	}
	if o.serverPID != 0 {
		if _, ok := procCPU(o.serverPID); !ok {
			return false, fmt.Errorf("-server-pid %d: cannot read /proc/%d/stat", o.serverPID, o.serverPID)
		}
	}
	r, err := newRunner(o)
	if err != nil {
		return false, err
	}
	if r.key == "" && (o.mode == "revoke" || o.mode == "all") {
		return false, fmt.Errorf("revoke needs the admin API key: %w", r.keyErr)
	}
	if err := r.ready(); err != nil {
		return false, err
	}

	if o.cpuprof != "" {
		f, err := os.Create(o.cpuprof)
		if err != nil {
			return false, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return false, err
		}
		defer pprof.StopCPUProfile()
	}

	benchenv.Header(os.Stdout, "wsload "+strings.Join(os.Args[1:], " "))
	fmt.Printf("# target: %s  mode=%s  c=%d  server-pid=%s  open-files limit=%d\n",
		r.d.url, o.mode, o.conns, pidText(o.serverPID), openFileLimit())

	allOK, allMet := true, true
	for i, mode := range modes {
		if i > 0 {
			r.waitQuiet()
		}
		var res modeResult
		switch mode {
		case "idle":
			res, err = r.idle()
		case "connect":
			res, err = r.connect()
		case "resume":
			res, err = r.resume()
		case "revoke":
			res, err = r.revoke()
		}
		if err != nil {
			return false, fmt.Errorf("%s: %w", mode, err)
		}
		allOK = allOK && res.ok
		allMet = allMet && res.met
	}
	switch {
	case !allMet:
		fmt.Println("\nRESULT: at least one target was not met (see above)")
	default:
		fmt.Println("\nRESULT: all targets met")
	}
	return allOK, nil
}

// modeResult: ok is false when operations failed; met when every target
// of the mode was.
type modeResult struct{ ok, met bool }

func pidText(pid int) string {
	if pid == 0 {
		return "none"
	}
	return strconv.Itoa(pid)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}
