package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/client"
)

// The kill -9 test: the embedded store promises that nothing acknowledged
// is lost when the process dies, so this test runs the real binary, hammers
// it with creates, kills it with SIGKILL in the middle of the stream,
// restarts it on the same data directory and checks every create whose 201
// arrived. Its size is set by environment variables:
//
//	SESSIOND_DURABILITY_CYCLES    kill/restart cycles (default 3)
//	SESSIOND_DURABILITY_DURATION  how long each cycle hammers before the kill (default 300ms)
//	SESSIOND_DURABILITY_WRITERS   concurrent writers (default 16)
//
// for example:
//
//	SESSIOND_DURABILITY_CYCLES=10 SESSIOND_DURABILITY_DURATION=2s go test -run Kill9 -v ./cmd/sessiond/
func TestKill9Durability(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary; skipped with -short")
	}
	cycles := envInt(t, "SESSIOND_DURABILITY_CYCLES", 3)
	hammerFor := envDuration(t, "SESSIOND_DURABILITY_DURATION", 300*time.Millisecond)
	writers := envInt(t, "SESSIOND_DURABILITY_WRITERS", 16)

	h := newHarness(t)
	p := h.start()
	var acked []ack
	for cycle := 1; cycle <= cycles; cycle++ {
		res := h.hammerAndKill(p, cycle, writers, hammerFor)
		acked = append(acked, res.acked...)
		if t.Failed() {
			t.FailNow()
		}
		p = h.start()
		h.checkAll(p, acked)
		total := h.stats(p).Total
		t.Logf("cycle %d: %d creates acknowledged in %v (%.0f/s), %d in flight at the kill; after restart all %d acknowledged so far found and valid (%d sessions stored: %d landed without their 201 reaching us)",
			cycle, len(res.acked), res.elapsed.Round(time.Millisecond), float64(len(res.acked))/res.elapsed.Seconds(),
			res.inFlight, len(acked), total, total-len(acked))
		if t.Failed() {
			t.FailNow()
		}
	}

	h.expiredWhileDown(p, acked)
}

// ack is a create whose 201 response arrived.
type ack struct {
	id, token, subject string
}

type harness struct {
	t       *testing.T
	bin     string
	dataDir string
	logPath string
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, bin: buildSessiond(t), dataDir: t.TempDir(), logPath: filepath.Join(t.TempDir(), "sessiond.log")}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(h.logPath)
			t.Logf("sessiond stderr (%s):\n%s", h.logPath, b)
		}
	})
	return h
}

// built is the command as buildSessiond built it: once for all the
// tests of this run, in dir, which TestMain removes.
var built struct {
	once      sync.Once
	dir, path string
	skip      string // why it cannot be built here
	err       error
}

// buildSessiond builds the command, once for all the tests that run it,
// and returns its path.
func buildSessiond(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			built.skip = fmt.Sprintf("no go tool to build the binary with: %v", err)
			return
		}
		out, err := exec.Command(goTool, "env", "GOMOD").Output()
		if err != nil || strings.TrimSpace(string(out)) == "" {
			built.err = fmt.Errorf("finding the module root: %v %q", err, out)
			return
		}
		if built.dir, built.err = os.MkdirTemp("", "sessiond-test-"); built.err != nil {
			return
		}
		bin := filepath.Join(built.dir, "sessiond")
		cmd := exec.Command(goTool, "build", "-o", bin, "./cmd/sessiond")
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(out)))
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		built.path = bin
		t.Logf("built %s in %v", bin, time.Since(start).Round(time.Millisecond))
	})
	if built.skip != "" {
		t.Skip(built.skip)
	}
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// TestMain removes the binary buildSessiond built, once every test has
// run. The tests run without the OTEL_* variables of whoever runs them
// (clearOTELEnv).
func TestMain(m *testing.M) {
	clearOTELEnv()
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// proc is one run of the binary.
type proc struct {
	cmd       *exec.Cmd
	logPath   string // its output goes here ...
	logOffset int64  // ... from here on
	addr      string
	key       string
	c         *client.Client
	exited    chan struct{}
	err       error // from Wait, once exited is closed
}

// startRaw runs bin with args, its output appended to logPath after a line
// naming the command, without waiting for anything. It is killed, if it
// still runs, when the test ends.
func startRaw(t *testing.T, bin, logPath string, args ...string) *proc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== %s %s\n", filepath.Base(bin), strings.Join(args, " "))
	offset, err := logf.Seek(0, io.SeekEnd)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SESSIOND_") { // the developer's settings must not leak in
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, logPath: logPath, logOffset: offset, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.kill)
	return p
}

// log is what the process has written so far.
func (p *proc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b[min(p.logOffset, int64(len(b))):])
}

// start runs `sessiond serve` on the harness's data directory on a free
// port and waits until /readyz answers 200.
func (h *harness) start(args ...string) *proc {
	t := h.t
	t.Helper()
	for attempt := 1; ; attempt++ {
		p, err := h.tryStart(args)
		if err == nil {
			return p
		}
		// Another process may have taken the port between our picking it
		// and the server binding it; try another.
		if attempt < 3 && strings.Contains(err.Error(), "address already in use") {
			continue
		}
		t.Fatalf("starting sessiond: %v", err)
	}
}

func (h *harness) tryStart(extra []string) (*proc, error) {
	t := h.t
	addr := freeAddr(t)
	p := startRaw(t, h.bin, h.logPath, append([]string{"serve", "--addr", addr, "--data-dir", h.dataDir, "--log-format", "json"}, extra...)...)
	p.addr = addr
	// Not sessiondtest.Eventually: a big store may take longer than its
	// 10s to load, and a start that lost its port returns an error here,
	// for start to try another.
	for deadline := time.Now().Add(60 * time.Second); readyStatus(addr) != http.StatusOK; time.Sleep(20 * time.Millisecond) {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("sessiond exited before it was ready (%v): %s", p.err, p.log())
		default:
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("%s/readyz did not answer 200 within 60s", addr)
		}
	}
	p.key = readKey(t, h.dataDir)
	p.c = client.New(addr, p.key)
	p.c.HTTP = &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
	}
	return p, nil
}

// kill sends SIGKILL unless the process is gone, and waits for it to go.
func (p *proc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Kill()
	<-p.exited
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type hammerResult struct {
	acked    []ack
	elapsed  time.Duration // from the first create to the kill
	inFlight int           // creates that failed because of the kill
}

// hammerAndKill creates sessions from several goroutines, recording each
// create whose 201 arrived, and SIGKILLs the server while they run.
func (h *harness) hammerAndKill(p *proc, cycle, writers int, d time.Duration) hammerResult {
	t := h.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu       sync.Mutex
		acked    []ack
		killed   atomic.Bool
		inFlight atomic.Int64
		wg       sync.WaitGroup
	)
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				// A new subject every 50 creates: a fast machine would
				// reach the default limit of 100 live sessions per subject.
				subject := fmt.Sprintf("cycle%d-writer%02d-%d", cycle, w, i/50)
				meta := json.RawMessage(fmt.Sprintf(`{"cycle":%d,"writer":%d,"n":%d}`, cycle, w, i))
				r, err := p.c.Create(ctx, client.CreateRequest{Subject: subject, Metadata: meta})
				if err == nil {
					mu.Lock()
					acked = append(acked, ack{id: r.ID, token: r.Token, subject: subject})
					mu.Unlock()
					continue
				}
				if killed.Load() {
					inFlight.Add(1) // refused, reset or cut off by the kill: not acknowledged
					return
				}
				t.Errorf("writer %d: create failed while the server was up: %v", w, err)
				return
			}
		}()
	}

	// Kill at a varying point of the stream, after at least one
	// acknowledgement per writer.
	time.Sleep(d/2 + rand.N(d))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= writers || time.Now().After(deadline) || t.Failed() {
			break
		}
	}
	killed.Store(true)
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	<-p.exited
	elapsed := time.Since(start)
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("the server did not die of the SIGKILL: %v", p.err)
	}

	// Writers stop on their first error, which every one gets now that the
	// server is gone; cancel in case one is between requests.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		cancel()
		<-done
	}
	if len(acked) == 0 {
		t.Errorf("cycle %d: no create was acknowledged before the kill", cycle)
	}
	return hammerResult{acked: acked, elapsed: elapsed, inFlight: int(inFlight.Load())}
}

// checkAll checks every acknowledged create: it is stored, live, and its
// token validates.
func (h *harness) checkAll(p *proc, acked []ack) {
	t := h.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var (
		mu       sync.Mutex
		failures []string
		nfail    int
		wg       sync.WaitGroup
		next     atomic.Int64
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if nfail++; len(failures) < 10 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(acked) || ctx.Err() != nil {
					return
				}
				a := acked[i]
				s, err := p.c.Get(ctx, a.id)
				if err != nil {
					fail("acknowledged session %s (%s): GET: %v", a.id, a.subject, err)
					continue
				}
				if s.ID != a.id || s.Subject != a.subject || s.State != sessiond.StateActive {
					fail("acknowledged session %s: GET returned id %s subject %s state %v", a.id, s.ID, s.Subject, s.State)
				}
				v, err := p.c.Validate(ctx, a.token, nil)
				if err != nil {
					fail("acknowledged session %s (%s): validate: %v", a.id, a.subject, err)
					continue
				}
				if v.Session.ID != a.id {
					fail("the token of %s validates as session %s", a.id, v.Session.ID)
				}
			}
		}()
	}
	wg.Wait()
	if nfail > 0 {
		t.Errorf("%d of %d acknowledged sessions lost or broken after kill -9 and restart; first ones:\n%s",
			nfail, len(acked), strings.Join(failures, "\n"))
	}
}

func (h *harness) stats(p *proc) *client.Stats {
	h.t.Helper()
	st, err := p.c.Stats(context.Background())
	if err != nil {
		h.t.Fatalf("stats: %v", err)
	}
	return st
}

// expiredWhileDown checks that sessions whose deadline passed while no
// server ran are ended on start, with reason expired and their events
// recorded: with a config file whose default policy has a ttl of 2s, it
// creates a few sessions, kills the server, waits until the ttl has passed
// and restarts it.
func (h *harness) expiredWhileDown(p *proc, acked []ack) {
	t := h.t
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "sessiond.yaml")
	err := os.WriteFile(cfgPath, []byte(`# the built-in policy the earlier sessions were created under, and a short one
default_policy: short
policies:
  default:
    ttl: 24h
    idle_timeout: 30m
    touch_interval: 1m
    rotation_grace: 30s
  short:
    ttl: 2s
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p.kill()
	p = h.start("--config", cfgPath)

	// Watch the live event stream while creating, as a consumer would, to
	// learn where in the event log these sessions begin.
	live := openEvents(t, "http://"+p.addr, p.key, "")
	const n = 8
	ctx := context.Background()
	created := make([]*client.CreateResponse, n)
	ids := map[string]bool{}
	var latest time.Time
	for i := range created {
		r, err := p.c.Create(ctx, client.CreateRequest{Subject: "expiring", Metadata: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))})
		if err != nil {
			t.Fatalf("create under the short policy: %v", err)
		}
		s := r.Session
		if s.Policy != "short" || s.IdleTimeout != 0 || s.ExpiresAt.Sub(s.CreatedAt) != 2*time.Second {
			t.Fatalf("created %+v, want policy short with a ttl of 2s and no idle timeout", s)
		}
		created[i] = r
		ids[r.ID] = true
		latest = s.ExpiresAt
	}
	var firstSeq uint64
	seen := 0
	live.until(t, func(e sessiond.Event) bool {
		if ids[e.SessionID] && e.Type == sessiond.EventCreated {
			if firstSeq == 0 || e.Seq < firstSeq {
				firstSeq = e.Seq
			}
			seen++
		}
		return seen == n
	})
	live.close()
	if t.Failed() {
		t.FailNow()
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exited

	// The one real wait of this test. The deadlines must pass while no
	// sessiond process exists at all, and the process under test reads the
	// system clock: a fake clock (or testing/synctest) lives inside one
	// process and cannot be carried across a SIGKILL and a fresh exec, so
	// the only way to have the ttl pass while the server is down is to let
	// real time pass. The ttl is 2s, so this is at most ~2s.
	time.Sleep(time.Until(latest) + 100*time.Millisecond)

	logBefore, _ := os.ReadFile(h.logPath)
	p = h.start("--config", cfgPath)

	// They were ended by the start itself, not lazily by the reads below.
	logAfter, _ := os.ReadFile(h.logPath)
	loaded := startupLog(t, logAfter[len(logBefore):])
	if loaded.Ended < n {
		t.Errorf("on start the server ended %d overdue sessions, want at least %d (log %+v)", loaded.Ended, n, loaded)
	}

	for _, r := range created {
		s, err := p.c.Get(ctx, r.ID)
		if err != nil {
			t.Errorf("GET %s after the restart: %v", r.ID, err)
			continue
		}
		if s.State != sessiond.StateEnded || s.EndReason != sessiond.EndExpired {
			t.Errorf("session %s: state %v end_reason %q, want ended expired", r.ID, s.State, s.EndReason)
		}
		if s.EndedAt.Before(s.ExpiresAt) {
			t.Errorf("session %s ended at %v, before its expiry %v", r.ID, s.EndedAt, s.ExpiresAt)
		}
		if _, err := p.c.Validate(ctx, r.Token, nil); !errors.Is(err, sessiond.ErrExpired) {
			t.Errorf("validating expired session %s: %v, want session_expired", r.ID, err)
		}
	}

	// Each got its ending and ended events, with the reason: resume the
	// event stream from the first of their created events, as a consumer
	// that saw it before the crash would with Last-Event-ID.
	//
	// (Not ?after=0: the API reads after=0 as no Last-Event-ID at all and
	// streams only events recorded from now on, so the log's first event can
	// never be replayed. Resuming from a seen event also keeps this cheap
	// however many events earlier cycles left in the log.)
	resumed := openEvents(t, "http://"+p.addr, p.key, strconv.FormatUint(firstSeq, 10))
	var evs []sessiond.Event
	ended := 0
	resumed.until(t, func(e sessiond.Event) bool {
		if !ids[e.SessionID] {
			return false
		}
		if e.Seq <= firstSeq {
			t.Errorf("resumed after %d, got event %d", firstSeq, e.Seq)
		}
		evs = append(evs, e)
		if e.Type == sessiond.EventEnded {
			ended++
		}
		return ended == n
	})
	resumed.close()
	for _, r := range created {
		var ending, ended int
		for _, e := range evs {
			if e.SessionID != r.ID {
				continue
			}
			switch e.Type {
			case sessiond.EventEnding:
				ending++
				if e.Reason != sessiond.EndExpired {
					t.Errorf("session %s: ending event with reason %q, want expired", r.ID, e.Reason)
				}
			case sessiond.EventEnded:
				ended++
				if e.Reason != sessiond.EndExpired || e.State != sessiond.StateEnded {
					t.Errorf("session %s: ended event %+v, want reason expired and state ended", r.ID, e)
				}
			}
		}
		if ending != 1 || ended != 1 {
			t.Errorf("session %s: %d ending and %d ended events, want one of each", r.ID, ending, ended)
		}
	}
	t.Logf("expiry while down: %d sessions with a 2s ttl ended as expired on start (%d ended of %d deadlines handled), events recorded",
		n, loaded.Ended, loaded.Handled)

	// And the sessions of every earlier cycle came through this cycle too.
	h.checkAll(p, acked)
}

type startupLine struct {
	Msg     string `json:"msg"`
	Handled int    `json:"handled"`
	Ended   int    `json:"ended"`
}

// startupLog finds the engine's "deadlines due at start handled" line in
// JSON logs.
func startupLog(t *testing.T, logs []byte) startupLine {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l startupLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "deadlines due at start handled" {
			return l
		}
	}
	t.Fatalf("no \"deadlines due at start handled\" line in the server's log:\n%s", logs)
	return startupLine{}
}

// eventStream is an open GET /v1/events.
type eventStream struct {
	r      *bufio.Reader
	body   io.Closer
	cancel context.CancelFunc
}

// openEvents opens the server-sent event stream of the server at base
// with the API key, resuming after the given Last-Event-ID if it is not
// empty. Reading it fails the test after 10s.
func openEvents(t *testing.T, base, key, lastEventID string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET /v1/events: %v", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		cancel()
		t.Fatalf("GET /v1/events: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	es := &eventStream{r: bufio.NewReader(resp.Body), body: resp.Body, cancel: cancel}
	// The server subscribes before it writes its first comment: once that
	// is read, no later event can be missed.
	if line, err := es.r.ReadString('\n'); err != nil || !strings.HasPrefix(line, ":") {
		es.close()
		t.Fatalf("GET /v1/events began with %q, %v", line, err)
	}
	return es
}

func (es *eventStream) close() {
	es.cancel()
	es.body.Close()
}

// next returns the next event, skipping comments and keep-alives.
func (es *eventStream) next() (sessiond.Event, error) {
	e, _, err := es.nextWithID()
	return e, err
}

// nextWithID returns the next event and its id line (the stream's
// position after it).
func (es *eventStream) nextWithID() (sessiond.Event, string, error) {
	var typ, id, data string
	for {
		line, err := es.r.ReadString('\n')
		if err != nil {
			return sessiond.Event{}, "", err // an incomplete line is not parsed
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "" && data != "":
			var e sessiond.Event
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				return e, "", fmt.Errorf("event data %q: %w", data, err)
			}
			if c, err := sessiond.ParseCursor(id); err != nil || string(e.Type) != typ || !c.Covers(e) {
				return e, "", fmt.Errorf("event %s: id line %q and event line %q disagree with the data", data, id, typ)
			}
			return e, id, nil
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			typ = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
}

// until reads events until done returns true; it fails the test if the
// stream ends or its deadline passes first.
func (es *eventStream) until(t *testing.T, done func(sessiond.Event) bool) {
	t.Helper()
	for {
		e, err := es.next()
		if err != nil {
			t.Errorf("reading events: %v", err)
			return
		}
		if done(e) {
			return
		}
	}
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration like 2s", name, v)
	}
	return d
}
