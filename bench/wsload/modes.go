package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/sessiond/sessiond/bench/internal/hist"
	"github.com/sessiond/sessiond/jwt"
	"github.com/sessiond/sessiond/wire"
)

type runner struct {
	o      options
	d      *dialer
	base   string // http://host:port
	hc     *http.Client
	key    string // admin API key; "" if none was found
	keyErr error  // why not
	runID  string
}

func newRunner(o options) (*runner, error) {
	base := o.addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	base = strings.TrimRight(base, "/")
	if !strings.HasPrefix(base, "http://") {
		return nil, errors.New("-addr: only plain http (ws) is supported: host:port or http://host:port")
	}
	r := &runner{o: o, base: base, runID: strconv.FormatInt(time.Now().UnixNano(), 36)}
	r.d = &dialer{url: "ws" + strings.TrimPrefix(base, "http") + "/v1/connect", timeout: o.timeout}
	r.key, r.keyErr = apiKey(o)
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        o.conns,
		MaxIdleConnsPerHost: o.conns,
		MaxConnsPerHost:     o.conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	r.hc = &http.Client{Transport: tr, Timeout: o.timeout}
	return r, nil
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

// ready checks the server answers, the key (if any) is right, and the
// WebSocket edge is on and takes our credentials.
func (r *runner) ready() error {
	resp, err := r.hc.Get(r.base + "/readyz")
	if err != nil {
		return fmt.Errorf("server not reachable at %s: %w", r.base, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("server at %s is not ready: %s", r.base, resp.Status)
	}
	if r.key != "" {
		if _, err := r.stats(); err != nil {
			return err
		}
	}
	ids, err := r.idents("probe", 1)
	if err != nil {
		return err
	}
	c, err := r.d.dial(ids[0])
	if err != nil {
		return fmt.Errorf("probe connection to %s: %w (is the edge on, with the same --jwt-secret?)", r.d.url, err)
	}
	c.close()
	<-c.done
	return nil
}

// idents signs n credentials, each for its own subject, with its own device
// id. Signing is done here, before anything is measured.
func (r *runner) idents(mode string, n int) ([]ident, error) {
	ids := make([]ident, n)
	now := time.Now()
	for i := range ids {
		tok, err := jwt.Sign([]byte(r.o.secret), fmt.Sprintf("wsload-%s-%s-%d", r.runID, mode, i), r.o.tokenTTL, now)
		if err != nil {
			return nil, fmt.Errorf("signing credentials: %w", err)
		}
		ids[i] = ident{token: tok, device: fmt.Sprintf("wsload-%s-%s-dev-%d", r.runID, mode, i)}
	}
	return ids, nil
}

func (r *runner) stats() (*wire.StatsResponse, error) {
	if r.key == "" {
		return nil, r.keyErr
	}
	req, _ := http.NewRequest("GET", r.base+"/v1/stats", nil)
	req.Header.Set("Authorization", "Bearer "+r.key)
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/stats: %s: %s (wrong API key?)", resp.Status, bytes.TrimSpace(b))
	}
	var st wire.StatsResponse
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("GET /v1/stats: %w", err)
	}
	return &st, nil
}

// connectAll opens one connection per id from -c dialers and records each
// one's latency, dial start to ack, in h. check, if set, refuses an ack
// (its error is counted as a failure). With keep, the connections stay open
// and are returned (nil where the connect failed); without, each is closed
// as soon as its ack is read. window runs from the first dial to the last
// ack.
func (r *runner) connectAll(ids []ident, keep bool, h *hist.Histogram, f *failures, check func(*wsClient) error) (clients []*wsClient, window time.Duration) {
	if keep {
		clients = make([]*wsClient, len(ids))
	}
	var next atomic.Int64
	var last atomic.Int64 // unix ns of the latest ack
	var wg sync.WaitGroup
	start := time.Now()
	for range min(r.o.conns, len(ids)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ids) {
					return
				}
				t0 := time.Now()
				c, err := r.d.dial(ids[i])
				if err == nil && check != nil {
					if err = check(c); err != nil {
						c.close()
					}
				}
				if err != nil {
					f.addErr(err)
					continue
				}
				h.Record(c.ackAt.Sub(t0))
				for {
					l := last.Load()
					if c.ackAt.UnixNano() <= l || last.CompareAndSwap(l, c.ackAt.UnixNano()) {
						break
					}
				}
				if keep {
					clients[i] = c
				} else {
					c.close()
				}
			}
		})
	}
	wg.Wait()
	if l := last.Load(); l > 0 {
		window = time.Unix(0, l).Sub(start)
	}
	return clients, window
}

// closeAll closes the open clients from -c workers and waits until each
// one's read loop has ended (or -timeout).
func (r *runner) closeAll(clients []*wsClient) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range r.o.conns {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(clients) {
					return
				}
				if c := clients[i]; c != nil {
					c.close()
				}
			}
		})
	}
	wg.Wait()
	deadline := time.After(r.o.timeout)
	for _, c := range clients {
		if c == nil {
			continue
		}
		select {
		case <-c.done:
		case <-deadline:
			return
		}
	}
}

func countOpen(clients []*wsClient) (open, closed int) {
	for _, c := range clients {
		if c == nil {
			continue
		}
		select {
		case <-c.done:
			closed++
		default:
			open++
		}
	}
	return open, closed
}

// cpuMeter measures the CPU this process and the server use over a span.
type cpuMeter struct {
	pid            int
	start          time.Time
	client, server time.Duration
	serverOK       bool
}

func startCPU(pid int) *cpuMeter {
	m := &cpuMeter{pid: pid, start: time.Now(), client: processCPU()}
	m.server, m.serverOK = procCPU(pid)
	return m
}

// line reports the cores each process used since start.
func (m *cpuMeter) line(what string) string {
	wall := time.Since(m.start)
	line := fmt.Sprintf("cpu over %s (%v, %d cores): wsload %.2f cores", what, wall.Round(time.Millisecond),
		runtime.NumCPU(), (processCPU()-m.client).Seconds()/wall.Seconds())
	if s, ok := procCPU(m.pid); ok && m.serverOK {
		line += fmt.Sprintf(", server %.2f cores", (s-m.server).Seconds()/wall.Seconds())
	}
	return line
}

// latency rows of a mode's table.
type row struct {
	op     string
	h      *hist.Histogram
	errors uint64
	window time.Duration // for the rate; 0: no rate
}

func printTable(rows []row) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tn\terrors\trate/s\tp50\tp90\tp99\tp99.9\tmax\tmean\t")
	for _, r := range rows {
		rate := "-"
		if r.window > 0 {
			rate = fmt.Sprintf("%.0f", float64(r.h.Count())/r.window.Seconds())
		}
		q := func(x float64) time.Duration { return hist.Round(r.h.Quantile(x)) }
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%v\t%v\t%v\t%v\t%v\t%v\t\n", r.op, r.h.Count(), r.errors, rate,
			q(.50), q(.90), q(.99), q(.999), hist.Round(r.h.Max()), hist.Round(r.h.Mean()))
	}
	tw.Flush()
}

func (r *runner) sizeN(def int) int {
	if r.o.n > 0 {
		return r.o.n
	}
	return def
}

// checkFiles fails early when n sockets cannot be open in this process.
func checkFiles(n int) error {
	if lim := openFileLimit(); lim > 0 && uint64(n)+32 > lim {
		return fmt.Errorf("%d connections held open need about %d open files; this process may open %d (ulimit -n)", n, n+32, lim)
	}
	return nil
}

// idle holds N connections: memory per connection, then idle CPU.
func (r *runner) idle() (modeResult, error) {
	n := r.sizeN(15000)
	if err := checkFiles(n); err != nil {
		return modeResult{}, err
	}
	fmt.Printf("\n## idle: %d connections from %d dialers, settle %v, idle window %v\n", n, r.o.conns, r.o.settle, r.o.idle)
	r.serverLine()
	ids, err := r.idents("idle", n)
	if err != nil {
		return modeResult{}, err
	}
	pid := r.o.serverPID
	rss0, err := procStatus(pid, "VmRSS")
	if err != nil {
		return modeResult{}, err
	}
	fds0 := openFiles(pid)
	gm0, gmErr := r.goMetrics()

	h, f := &hist.Histogram{}, newFailures()
	cpu := startCPU(pid)
	clients, window := r.connectAll(ids, true, h, f, nil)
	connectCPU := cpu.line("the connects")
	ok := int(h.Count())
	fmt.Fprintf(os.Stderr, "wsload: idle: %d connected in %v; settling %v\n", ok, window.Round(time.Millisecond), r.o.settle)
	time.Sleep(r.o.settle)
	rss1, err := procStatus(pid, "VmRSS")
	if err != nil {
		return modeResult{}, err
	}
	fds1 := openFiles(pid)
	var gm1 goMetrics
	if gmErr == nil {
		gm1, gmErr = r.goMetrics()
	}
	var hbMS int64
	for _, c := range clients {
		if c != nil {
			hbMS = c.ack.HeartbeatIntervalMS
			break
		}
	}

	// The idle window: the clients only answer pings.
	fmt.Fprintf(os.Stderr, "wsload: idle: measuring the server's CPU for %v\n", r.o.idle)
	pings0, others0 := pingsReceived.Load(), otherMessages.Load()
	_, closedBefore := countOpen(clients)
	clientCPU0 := processCPU()
	u0, s0, _ := procTimes(pid)
	t0 := time.Now()
	// The server's CPU in slices of the window, to show whether it is
	// steady or still settling from the connects.
	slice := max(r.o.idle/6, time.Second)
	var slices []float64
	prev, prevAt := u0+s0, t0
	for end := t0.Add(r.o.idle); time.Until(end) > 0; {
		time.Sleep(min(slice, time.Until(end)))
		u, s, _ := procTimes(pid)
		now := time.Now()
		slices = append(slices, (u+s-prev).Seconds()/now.Sub(prevAt).Seconds())
		prev, prevAt = u+s, now
	}
	u1, s1, _ := procTimes(pid)
	srv0, srv1 := u0+s0, u1+s1
	wall := time.Since(t0)
	clientCPU := processCPU() - clientCPU0
	pings, others := pingsReceived.Load()-pings0, otherMessages.Load()-others0
	rss2, _ := procStatus(pid, "VmRSS")
	hwm, _ := procStatus(pid, "VmHWM")
	open, closed := countOpen(clients)
	clientRSS, _ := procStatus(os.Getpid(), "VmRSS")
	codes := map[int]int{}
	for _, c := range clients {
		if c == nil {
			continue
		}
		select {
		case <-c.done:
			codes[c.closeCode]++
		default:
		}
	}

	r.closeAll(clients)

	perConn := float64(rss1-rss0) / float64(max(ok, 1))
	perConnEnd := float64(rss2-rss0) / float64(max(ok, 1))
	cpuFrac := (srv1 - srv0).Seconds() / wall.Seconds()

	printTable([]row{{op: "connect", h: h, errors: f.count(), window: window}})
	fmt.Println(connectCPU)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "held\tclosed\trss before\trss settled\tper conn\trss after idle\tper conn\tVmHWM\tfds\t")
	fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%.2f KiB\t%s\t%.2f KiB\t%s\t%d -> %d\t\n", open, closed, mib(rss0), mib(rss1),
		perConn/1024, mib(rss2), perConnEnd/1024, mib(hwm), fds0, fds1)
	tw.Flush()
	if gmErr == nil {
		printGoMetrics(gm0, gm1, ok)
	} else {
		fmt.Printf("(no runtime breakdown: %v)\n", gmErr)
	}
	expected := float64(ok) * wall.Seconds() / (float64(hbMS) / 1000)
	fmt.Printf("idle window %v: server cpu %v (user %v, system %v) = %.2f%% of one core; wsload cpu %.2f%% of one core; client rss %s\n",
		wall.Round(time.Millisecond), srv1-srv0, u1-u0, s1-s0, 100*cpuFrac, 100*clientCPU.Seconds()/wall.Seconds(), mib(clientRSS))
	fmt.Printf("server cpu by %v slice of the window:", slice)
	for _, f := range slices {
		fmt.Printf(" %.2f%%", 100*f)
	}
	fmt.Println()
	fmt.Printf("pings answered %d (%.0f/s; %d conns x %v / %v heartbeat = %.0f expected), other messages %d\n",
		pings, float64(pings)/wall.Seconds(), ok, wall.Round(time.Second), time.Duration(hbMS)*time.Millisecond, expected, others)
	if closed > closedBefore || len(codes) > 0 {
		fmt.Printf("connections closed during the idle window: %d, by close code: %v\n", closed-closedBefore, codes)
	}
	f.print(os.Stdout, "connects")

	memMet := perConn <= targetBytesPerConn && ok == n
	cpuMet := cpuFrac <= targetIdleCPU && closed == 0 && ok == n
	fmt.Printf("target: server memory <= %d KiB per connection (RSS delta / %d): %.2f KiB: %s\n",
		targetBytesPerConn>>10, ok, perConn/1024, verdict(memMet))
	fmt.Printf("target: idle cpu <= %.0f%% of one core with %v heartbeats: %.2f%%: %s\n",
		100*targetIdleCPU, time.Duration(hbMS)*time.Millisecond, 100*cpuFrac, verdict(cpuMet))
	return modeResult{ok: f.count() == 0 && closed == 0, met: memMet && cpuMet}, nil
}

// connect measures connects+acks a second.
func (r *runner) connect() (modeResult, error) {
	n := r.sizeN(20000)
	if r.o.hold {
		if err := checkFiles(n); err != nil {
			return modeResult{}, err
		}
	}
	how := "each closed after its ack"
	if r.o.hold {
		how = "held until the last ack"
	}
	fmt.Printf("\n## connect: %d connects from %d dialers, %s\n", n, r.o.conns, how)
	r.serverLine()
	ids, err := r.idents("connect", n)
	if err != nil {
		return modeResult{}, err
	}
	h, f := &hist.Histogram{}, newFailures()
	cpu := startCPU(r.o.serverPID)
	clients, window := r.connectAll(ids, r.o.hold, h, f, nil)
	cpuLine := cpu.line("the connects")
	if r.o.hold {
		r.closeAll(clients)
	}
	printTable([]row{{op: "connect", h: h, errors: f.count(), window: window}})
	fmt.Printf("window %v (first dial to last ack)\n", window.Round(time.Millisecond))
	fmt.Println(cpuLine)
	f.print(os.Stdout, "connects")
	rate := float64(h.Count()) / window.Seconds()
	met := rate >= targetConnectRate && f.count() == 0
	fmt.Printf("target: connect+ack with HS256 >= %d/s: %.0f/s (p99 %v): %s\n", targetConnectRate, rate,
		hist.Round(h.Quantile(.99)), verdict(met))
	return modeResult{ok: f.count() == 0, met: met}, nil
}

// resume measures reconnects within the grace: dial start to the resumed ack.
func (r *runner) resume() (modeResult, error) {
	m := r.o.m
	if err := checkFiles(m); err != nil {
		return modeResult{}, err
	}
	fmt.Printf("\n## resume: %d device sessions, closed by the client, reconnected from %d dialers\n", m, r.o.conns)
	r.serverLine()
	ids, err := r.idents("resume", m)
	if err != nil {
		return modeResult{}, err
	}
	h0, f0 := &hist.Histogram{}, newFailures()
	clients, window0 := r.connectAll(ids, true, h0, f0, func(c *wsClient) error {
		if c.ack.Resumed {
			return &dialError{kind: "resumed on first connect", err: fmt.Errorf("ack %+v", c.ack)}
		}
		return nil
	})
	var disc0 int
	st, stErr := r.stats()
	if stErr == nil {
		disc0 = st.Sessions["disconnected"]
	}

	// Close them all; wait until the server has every session disconnected.
	closedAt := time.Now()
	r.closeAll(clients)
	connected := 0
	for _, c := range clients {
		if c != nil {
			connected++
		}
	}
	waitWhat := "1s (no API key: " + fmt.Sprint(r.keyErr) + ")"
	if stErr == nil {
		waitWhat = "the server to count them disconnected"
		deadline := time.Now().Add(r.o.grace / 2)
		for {
			st, err := r.stats()
			if err == nil && st.Sessions["disconnected"] >= disc0+connected {
				break
			}
			if time.Now().After(deadline) {
				return modeResult{}, fmt.Errorf("after %v the server counts %d disconnected sessions, want %d (err %v)",
					r.o.grace/2, st.Sessions["disconnected"], disc0+connected, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	} else {
		time.Sleep(time.Second)
	}
	disconnectedIn := time.Since(closedAt)

	// Reconnect the ones that connected, with the same subject and device.
	again := make([]ident, 0, connected)
	for i, c := range clients {
		if c != nil {
			again = append(again, ids[i])
		}
	}
	h, f := &hist.Histogram{}, newFailures()
	cpu := startCPU(r.o.serverPID)
	resumed, window := r.connectAll(again, true, h, f, func(c *wsClient) error {
		if !c.ack.Resumed {
			return &dialError{kind: "not resumed", err: fmt.Errorf("ack %+v", c.ack)}
		}
		return nil
	})
	cpuLine := cpu.line("the reconnects")
	sinceClose := time.Since(closedAt)
	r.closeAll(resumed)

	printTable([]row{
		{op: "connect (setup)", h: h0, errors: f0.count(), window: window0},
		{op: "resume", h: h, errors: f.count(), window: window},
	})
	fmt.Printf("closed %d, waited %v for %s; reconnects done %v after the first close (grace %v)\n",
		connected, disconnectedIn.Round(time.Millisecond), waitWhat, sinceClose.Round(time.Millisecond), r.o.grace)
	fmt.Println(cpuLine)
	f0.print(os.Stdout, "setup connects")
	f.print(os.Stdout, "resumes")
	p99 := h.Quantile(.99)
	met := p99 <= targetResumeP99 && f.count() == 0 && h.Count() > 0
	if sinceClose >= r.o.grace {
		fmt.Println("WARNING: the reconnects ended after the grace; some sessions may have ended first")
	}
	fmt.Printf("target: resume p99 <= %v: %v: %s\n", targetResumeP99, hist.Round(p99), verdict(met))
	return modeResult{ok: f0.count()+f.count() == 0, met: met}, nil
}

// revoke measures DELETE /v1/sessions/{id} to the socket's close frame.
func (r *runner) revoke() (modeResult, error) {
	if r.key == "" {
		return modeResult{}, r.keyErr
	}
	m := r.o.m
	if err := checkFiles(m + r.o.conns); err != nil {
		return modeResult{}, err
	}
	fmt.Printf("\n## revoke: %d sessions, revoked by %d workers\n", m, r.o.conns)
	r.serverLine()
	ids, err := r.idents("revoke", m)
	if err != nil {
		return modeResult{}, err
	}
	h0, f0 := &hist.Histogram{}, newFailures()
	clients, window0 := r.connectAll(ids, true, h0, f0, nil)

	hClose, hDelete, f := &hist.Histogram{}, &hist.Histogram{}, newFailures()
	var next atomic.Int64
	var last atomic.Int64
	var wg sync.WaitGroup
	cpu := startCPU(r.o.serverPID)
	start := time.Now()
	for range r.o.conns {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(clients) {
					return
				}
				c := clients[i]
				if c == nil {
					continue
				}
				req, _ := http.NewRequest("DELETE", r.base+"/v1/sessions/"+c.ack.SessionID, nil)
				req.Header.Set("Authorization", "Bearer "+r.key)
				t0 := time.Now()
				resp, err := r.hc.Do(req)
				t1 := time.Now()
				if err != nil {
					f.add("DELETE "+errKind(err), err)
				} else {
					b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
					resp.Body.Close()
					if resp.StatusCode != http.StatusNoContent {
						f.add(fmt.Sprintf("DELETE HTTP %d", resp.StatusCode), fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b)))
					} else {
						hDelete.Record(t1.Sub(t0))
					}
				}
				select {
				case <-c.done:
				case <-time.After(r.o.timeout):
					f.add("no close in time", fmt.Errorf("session %s: no close frame within %v", c.ack.SessionID, r.o.timeout))
					c.close()
					continue
				}
				if c.closeCode != int(wire.CloseSessionRevoked) {
					f.add(fmt.Sprintf("close code %d", c.closeCode), fmt.Errorf("session %s: %v", c.ack.SessionID, c.closeErr))
					continue
				}
				hClose.Record(c.closedAt.Sub(t0))
				for {
					l := last.Load()
					if c.closedAt.UnixNano() <= l || last.CompareAndSwap(l, c.closedAt.UnixNano()) {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	cpuLine := cpu.line("the revokes")
	window := time.Duration(0)
	if l := last.Load(); l > 0 {
		window = time.Unix(0, l).Sub(start)
	}
	r.closeAll(clients) // any left open after a failure

	printTable([]row{
		{op: "connect (setup)", h: h0, errors: f0.count(), window: window0},
		{op: "revoke->close 4500", h: hClose, errors: f.count(), window: window},
		{op: "DELETE response", h: hDelete, window: 0},
	})
	fmt.Println(cpuLine)
	f0.print(os.Stdout, "setup connects")
	f.print(os.Stdout, "revokes")
	p99 := hClose.Quantile(.99)
	met := p99 <= targetRevokeP99 && f.count() == 0 && hClose.Count() > 0
	fmt.Printf("target: revoke to socket closed p99 <= %v: %v: %s\n", targetRevokeP99, hist.Round(p99), verdict(met))
	return modeResult{ok: f0.count()+f.count() == 0, met: met}, nil
}

// goMetrics reads the server's Go runtime gauges from /metrics (open, no
// key needed): they break its RSS down into heap, stacks and goroutines.
type goMetrics map[string]float64

var runtimeGauges = []struct{ name, label string }{
	{"go_goroutines", "goroutines"},
	{"go_memstats_heap_alloc_bytes", "heap alloc"},
	{"go_memstats_heap_inuse_bytes", "heap inuse"},
	{"go_memstats_heap_objects", "heap objects"},
	{"go_memstats_stack_inuse_bytes", "stacks"},
	{"go_memstats_next_gc_bytes", "next GC at"},
	{"go_memstats_sys_bytes", "runtime sys"},
}

func (r *runner) goMetrics() (goMetrics, error) {
	resp, err := r.hc.Get(r.base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	m := goMetrics{}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(name, "go_") {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			m[name] = f
		}
	}
	return m, nil
}

// printGoMetrics prints the gauges before and after, and the difference per
// connection.
func printGoMetrics(before, after goMetrics, n int) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server (/metrics)	before	settled	per conn	")
	for _, g := range runtimeGauges {
		b, okb := before[g.name]
		a, oka := after[g.name]
		if !okb || !oka {
			continue
		}
		per := (a - b) / float64(max(n, 1))
		if strings.HasSuffix(g.name, "_bytes") {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f KiB\t\n", g.label, mib(int64(b)), mib(int64(a)), per/1024)
		} else {
			fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.2f\t\n", g.label, b, a, per)
		}
	}
	tw.Flush()
}

// waitQuiet waits between two modes: for the grace of the previous mode's
// sessions, then until none is left disconnected (with the API key) and the
// server is idle (with -server-pid), for at most five minutes more.
func (r *runner) waitQuiet() {
	start := time.Now()
	time.Sleep(r.o.grace + 2*time.Second)
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); {
		quiet := true
		if st, err := r.stats(); err == nil && st.Sessions["disconnected"]+st.Sessions["ending"] > 0 {
			quiet = false
		}
		c0, ok := procCPU(r.o.serverPID)
		time.Sleep(time.Second)
		if c1, ok1 := procCPU(r.o.serverPID); ok && ok1 && c1-c0 > 100*time.Millisecond {
			quiet = false
		}
		if quiet {
			break
		}
	}
	fmt.Printf("\n(waited %v for the previous mode's sessions to end and the server to go quiet)\n", time.Since(start).Round(time.Second))
}

// serverLine prints what the server holds, when the API key is at hand.
func (r *runner) serverLine() {
	st, err := r.stats()
	if err != nil {
		return
	}
	states := make([]string, 0, len(st.Sessions))
	for _, k := range []string{"active", "disconnected", "ending", "ended"} {
		states = append(states, fmt.Sprintf("%s %d", k, st.Sessions[k]))
	}
	line := fmt.Sprintf("server: %d sessions stored (%s)", st.Total, strings.Join(states, ", "))
	if st.WebSocket != nil {
		line += fmt.Sprintf(", %d sockets open, %d connects so far", st.WebSocket.Open, st.WebSocket.Connects)
	}
	fmt.Println(line)
}
