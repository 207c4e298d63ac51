// Command restload is a load generator for sessiond's REST API over
// loopback. By default it creates -sessions sessions, then runs -c workers
// for -warmup plus -d, each sending POST /v1/sessions/validate on its own
// keep-alive connection with the sessions' tokens in round-robin, and prints
// requests, errors, req/s and the latency distribution of the measured -d
// (warm-up requests are sent but not counted). Any response other than 200
// is an error: they are listed by status with a sample body, and the program
// exits 1 if there was any. -op create measures POST /v1/sessions instead
// (201 expected); -op tokens only creates -sessions sessions and prints
// their tokens, one a line, for wrk; -op churn is background load for
// another measurement: it creates and revokes -rate sessions a second for
// -d (churn.go).
//
// Validation is read-only here: the default policy has no rotation, and its
// touch_interval of 1m means a validation writes a session at most once a
// minute, so runs shorter than a minute after the sessions were created
// write nothing. Latencies are measured by the client and include the Go
// HTTP client's own cost; on a small machine the client and the server share
// the cores (the "cpu" line shows how much each used: pass -server-pid).
//
// # Running it
//
// Build the server, start it on a free port with a throwaway data
// directory (the API key is generated into it), and run the load:
//
//	B=$(mktemp -d)   # binaries and the server's data directory
//	go build -o $B/sessiond ./cmd/sessiond && go build -o $B/restload ./bench/restload
//	$B/sessiond serve --store memory --addr 127.0.0.1:7650 --data-dir $B/data \
//	    --log-level warn --log-format json 2>$B/server.log &
//	SERVER=$!
//	$B/restload -addr 127.0.0.1:7650 -data-dir $B/data -c 64 -d 10s -server-pid $SERVER
//	$B/restload -addr 127.0.0.1:7650 -data-dir $B/data -c 64 -d 10s -server-pid $SERVER -op create
//	kill $SERVER
//
// For the embedded (durable, fsync before ack) store, leave out
// --store memory; every create then waits for a group-committed fsync.
// Against a server started with its defaults (`go run ./cmd/sessiond serve`:
// 127.0.0.1:7600, ./sessiond-data) no flags are needed:
// `go run ./bench/restload -c 64 -d 10s`. The API key is taken from -key,
// else $SESSIOND_API_KEY, else DATA_DIR/api_key.
//
// # Running it with wrk
//
// validate.lua beside this file makes wrk send the same request. It reads
// the API key from $SESSIOND_API_KEY and the token from $SESSIOND_TOKEN, or
// many tokens (one a line, used in turn) from the file named by
// $SESSIOND_TOKENS:
//
//	export SESSIOND_API_KEY=$(cat $B/data/api_key)
//	$B/restload -addr 127.0.0.1:7650 -op tokens -sessions 1000 > $B/tokens.txt
//	SESSIOND_TOKENS=$B/tokens.txt wrk -t2 -c64 -d10s --latency \
//	    -s bench/restload/validate.lua http://127.0.0.1:7650
//	SESSIOND_TOKEN=$(head -1 $B/tokens.txt) wrk -t2 -c64 -d10s --latency \
//	    -s bench/restload/validate.lua http://127.0.0.1:7650
//
// wrk prints "Non-2xx or 3xx responses: N" when any request failed; the
// script also prints the non-200 responses by status when it is done.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/sessiond/sessiond/bench/internal/benchenv"
	"github.com/sessiond/sessiond/bench/internal/hist"
)

type options struct {
	addr      string
	key       string
	dataDir   string
	conns     int
	duration  time.Duration
	sessions  int
	warmup    time.Duration
	op        string
	timeout   time.Duration
	serverPID int
	cpuprof   string
	rate      float64
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:7600", "server address host:port (or a http:// URL)")
	flag.StringVar(&o.key, "key", "", "admin API key (default: $SESSIOND_API_KEY, else DATA_DIR/api_key)")
	flag.StringVar(&o.dataDir, "data-dir", "sessiond-data", "the server's data directory, where its generated api_key is")
	flag.IntVar(&o.conns, "c", 64, "concurrent connections, one worker each")
	flag.DurationVar(&o.duration, "d", 10*time.Second, "measured duration")
	flag.IntVar(&o.sessions, "sessions", 1000, "sessions to create first and validate in round-robin")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "load sent before measuring, not counted")
	flag.StringVar(&o.op, "op", "validate", "validate, create, tokens (create -sessions sessions, print their tokens, exit) or churn (create and revoke -rate sessions a second for -d)")
	flag.Float64Var(&o.rate, "rate", 100, "-op churn: sessions created and revoked a second")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-request timeout")
	flag.IntVar(&o.serverPID, "server-pid", 0, "the server's pid, to report the CPU time it used during the run (Linux)")
	flag.StringVar(&o.cpuprof, "cpuprofile", "", "write this program's CPU profile to the file")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "restload:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	switch o.op {
	case "validate", "create", "tokens", "churn":
	default:
		return fmt.Errorf("-op must be validate, create, tokens or churn (got %q)", o.op)
	}
	if o.conns < 1 || o.sessions < 1 || o.duration <= 0 || o.warmup < 0 || o.rate <= 0 {
		return errors.New("-c and -sessions must be at least 1, -d and -rate positive and -warmup not negative")
	}
	base := o.addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	base = strings.TrimRight(base, "/")
	key, err := apiKey(o)
	if err != nil {
		return err
	}

	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        o.conns,
		MaxIdleConnsPerHost: o.conns,
		MaxConnsPerHost:     o.conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: o.timeout}
	c := &caller{base: base, auth: "Bearer " + key, hc: hc}

	if err := c.ready(); err != nil {
		return err
	}

	if o.op == "churn" {
		return c.churn(o)
	}
	if o.op == "tokens" {
		tokens, _, err := c.createSessions(o.sessions, min(o.conns, 32), "restload-wrk-")
		if err != nil {
			return err
		}
		w := bytes.NewBuffer(nil)
		for _, t := range tokens {
			w.WriteString(t)
			w.WriteByte('\n')
		}
		_, err = os.Stdout.Write(w.Bytes())
		return err
	}

	benchenv.Header(os.Stdout, "restload")
	fmt.Printf("# target: %s  op=%s  c=%d  d=%v  warmup=%v", base, o.op, o.conns, o.duration, o.warmup)
	if o.op == "validate" {
		fmt.Printf("  sessions=%d", o.sessions)
	}
	fmt.Println()

	var bodies [][]byte
	path, want := "/v1/sessions", http.StatusCreated
	if o.op == "validate" {
		path, want = "/v1/sessions/validate", http.StatusOK
		tokens, took, err := c.createSessions(o.sessions, min(o.conns, 32), fmt.Sprintf("restload-%d-", time.Now().UnixNano()))
		if err != nil {
			return err
		}
		fmt.Printf("setup: created %d sessions in %v (%.0f/s)\n", len(tokens), took.Round(time.Millisecond), float64(len(tokens))/took.Seconds())
		for _, t := range tokens {
			b, _ := json.Marshal(map[string]string{"token": t})
			bodies = append(bodies, b)
		}
	}

	if o.cpuprof != "" {
		f, err := os.Create(o.cpuprof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	res := c.load(o, path, want, bodies)
	res.print(o)
	if res.errors > 0 || res.warmErrors > 0 {
		return fmt.Errorf("%d requests failed (%d during warm-up)", res.errors, res.warmErrors)
	}
	if res.requests == 0 {
		return errors.New("no request completed in the measured window")
	}
	return nil
}

func apiKey(o options) (string, error) {
	if o.key != "" {
		return o.key, nil
	}
	if k := os.Getenv("SESSIOND_API_KEY"); k != "" {
		return k, nil
	}
	path := filepath.Join(o.dataDir, "api_key")
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("no API key: pass -key, set SESSIOND_API_KEY, or point -data-dir at the server's data directory (%w)", err)
	}
	k := strings.TrimSpace(string(b))
	if k == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return k, nil
}

type caller struct {
	base string
	auth string
	hc   *http.Client
}

func (c *caller) post(path string, body []byte) (status int, resp []byte, err error) {
	req, err := http.NewRequest("POST", c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Content-Type", "application/json")
	r, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	return r.StatusCode, b, err
}

func (c *caller) ready() error {
	r, err := c.hc.Get(c.base + "/readyz")
	if err != nil {
		return fmt.Errorf("server not reachable at %s: %w", c.base, err)
	}
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		return fmt.Errorf("server at %s is not ready: %s", c.base, r.Status)
	}
	// An authenticated call, to fail early on a wrong key.
	req, _ := http.NewRequest("GET", c.base+"/v1/stats", nil)
	req.Header.Set("Authorization", c.auth)
	r, err = c.hc.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /v1/stats: %s: %s (wrong API key?)", r.Status, bytes.TrimSpace(b))
	}
	return nil
}

// createSessions creates n sessions with `workers` concurrent requests and
// returns their tokens in creation order of index.
func (c *caller) createSessions(n, workers int, subjectPrefix string) ([]string, time.Duration, error) {
	tokens := make([]string, n)
	var next atomic.Int64
	var first error
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				body, _ := json.Marshal(map[string]string{"subject": subjectPrefix + strconv.Itoa(i)})
				status, resp, err := c.post("/v1/sessions", body)
				if err == nil && status != http.StatusCreated {
					err = fmt.Errorf("POST /v1/sessions: %d %s", status, bytes.TrimSpace(resp))
				}
				var out struct {
					Token string `json:"token"`
				}
				if err == nil {
					err = json.Unmarshal(resp, &out)
				}
				if err == nil && out.Token == "" {
					err = errors.New("POST /v1/sessions: no token in the response")
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					next.Store(int64(n)) // stop the others
					return
				}
				tokens[i] = out.Token
			}
		}()
	}
	wg.Wait()
	return tokens, time.Since(start), first
}

type result struct {
	h          *hist.Histogram
	requests   uint64
	errors     uint64
	warmErrors uint64
	window     time.Duration
	byStatus   map[int]uint64 // failed requests by status; 0 is a transport error
	samples    map[int]string // one response body (or error) per status
	cpuClient  time.Duration
	cpuServer  time.Duration
	serverOK   bool
}

type workerResult struct {
	h          hist.Histogram
	errors     uint64
	warmErrors uint64
	byStatus   map[int]uint64
	samples    map[int]string
	last       time.Time
}

// load runs the workers: each sends requests back to back on its own
// keep-alive connection until warmup+d has passed.
func (c *caller) load(o options, path string, want int, bodies [][]byte) *result {
	cpu0 := processCPU()
	srv0, srvOK := procCPU(o.serverPID)

	start := time.Now()
	recordFrom := start.Add(o.warmup)
	end := recordFrom.Add(o.duration)
	workers := make([]*workerResult, o.conns)
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	var wg sync.WaitGroup
	for w := range o.conns {
		wr := &workerResult{byStatus: map[int]uint64{}, samples: map[int]string{}}
		workers[w] = wr
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for k := 0; ; k++ {
				var body []byte
				if bodies != nil {
					body = bodies[(w+k*o.conns)%len(bodies)]
				} else {
					buf = fmt.Appendf(buf[:0], `{"subject":"restload-c-%s-%d-%d"}`, runID, w, k)
					body = buf
				}
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				status, errText := c.once(path, body)
				t1 := time.Now()
				measured := !t0.Before(recordFrom)
				if status != want {
					if measured {
						wr.errors++
					} else {
						wr.warmErrors++
					}
					wr.byStatus[status]++
					if _, ok := wr.samples[status]; !ok {
						wr.samples[status] = errText
					}
					if status == 0 {
						time.Sleep(10 * time.Millisecond) // do not spin on a dead server
					}
				}
				if measured {
					wr.h.Record(t1.Sub(t0))
					wr.last = t1
				}
			}
		}()
	}
	wg.Wait()

	res := &result{h: &hist.Histogram{}, byStatus: map[int]uint64{}, samples: map[int]string{}}
	last := recordFrom
	for _, wr := range workers {
		res.h.Merge(&wr.h)
		res.errors += wr.errors
		res.warmErrors += wr.warmErrors
		for s, n := range wr.byStatus {
			res.byStatus[s] += n
			if _, ok := res.samples[s]; !ok {
				res.samples[s] = wr.samples[s]
			}
		}
		if wr.last.After(last) {
			last = wr.last
		}
	}
	res.requests = res.h.Count()
	res.window = last.Sub(recordFrom)
	res.cpuClient = processCPU() - cpu0
	if srv1, ok := procCPU(o.serverPID); ok && srvOK {
		res.cpuServer, res.serverOK = srv1-srv0, true
	}
	return res
}

// once sends one request and drains the response, so the connection is
// reused. It returns the status (0 for a transport error) and, for a
// failure, the response body or the error.
func (c *caller) once(path string, body []byte) (int, string) {
	req, err := http.NewRequest("POST", c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Content-Type", "application/json")
	r, err := c.hc.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	if r.StatusCode == http.StatusOK || r.StatusCode == http.StatusCreated {
		_, err = io.Copy(io.Discard, r.Body)
		r.Body.Close()
		if err != nil {
			return 0, err.Error()
		}
		return r.StatusCode, ""
	}
	b, _ := io.ReadAll(io.LimitReader(r.Body, 512))
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return r.StatusCode, string(bytes.TrimSpace(b))
}

func (r *result) print(o options) {
	rate := 0.0
	if r.window > 0 {
		rate = float64(r.requests) / r.window.Seconds()
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\trequests\terrors\treq/s\tp50\tp90\tp99\tp99.9\tmax\t")
	q := func(x float64) time.Duration { return hist.Round(r.h.Quantile(x)) }
	fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%v\t%v\t%v\t%v\t%v\t\n", o.op, r.requests, r.errors, rate,
		q(.50), q(.90), q(.99), q(.999), hist.Round(r.h.Max()))
	tw.Flush()
	fmt.Printf("window %v, mean %v, min %v\n", r.window.Round(time.Millisecond), hist.Round(r.h.Mean()), hist.Round(r.h.Min()))
	total := o.warmup + o.duration
	line := fmt.Sprintf("cpu over warm-up+run (%v, %d cores): restload %.2f cores", total, numCPU(), r.cpuClient.Seconds()/total.Seconds())
	if r.serverOK {
		line += fmt.Sprintf(", server %.2f cores", r.cpuServer.Seconds()/total.Seconds())
	}
	fmt.Println(line)
	if r.errors+r.warmErrors > 0 {
		fmt.Printf("FAILED requests: %d measured, %d during warm-up\n", r.errors, r.warmErrors)
		statuses := make([]int, 0, len(r.byStatus))
		for s := range r.byStatus {
			statuses = append(statuses, s)
		}
		slices.Sort(statuses)
		for _, s := range statuses {
			name := strconv.Itoa(s)
			if s == 0 {
				name = "transport error"
			}
			fmt.Printf("  %s: %d, e.g. %s\n", name, r.byStatus[s], r.samples[s])
		}
	}
}
