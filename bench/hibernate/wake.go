package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/internal/workers"
	"github.com/sessiond/sessiond/jwt"
	"github.com/sessiond/sessiond/wire"
)

// The bounds: connect to ack, and the hook's answer to ready.
const (
	ackTarget   = 20 * time.Millisecond
	readyTarget = 20 * time.Millisecond
)

const (
	jwtSecret  = "hibernate-bench-secret-0123456789abcdef"
	hookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// wakeCall is one wake the hook server answered.
type wakeCall struct {
	received time.Time // the request arrived (its handler began)
	answered time.Time // its 200 was about to be written
}

// hookServer is the runtime webhook: it verifies each call as a receiver
// would, answers hibernate and dispose at once and wake after delay, and
// records the wakes by session id.
type hookServer struct {
	wh    *standardwebhooks.Webhook
	delay time.Duration
	bad   atomic.Int64 // calls that did not verify or parse
	mu    sync.Mutex
	wakes map[string][]wakeCall
}

func (h *hookServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	received := time.Now()
	b, err := io.ReadAll(r.Body)
	var m sessiond.RuntimeMessage
	if err == nil {
		err = h.wh.Verify(b, r.Header)
	}
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil || m.Data.Session == nil {
		h.bad.Add(1)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	wake := m.Data.Action == sessiond.RuntimeWake
	if wake {
		time.Sleep(h.delay) // the workspace starting
	}
	// The time is taken just before the answer, a complete one (no
	// body), is written: the server may act on it before this handler
	// goes on.
	answered := time.Now()
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	_ = http.NewResponseController(w).Flush()
	if wake {
		h.mu.Lock()
		h.wakes[m.Data.Session.ID] = append(h.wakes[m.Data.Session.ID], wakeCall{received, answered})
		h.mu.Unlock()
	}
}

// wake returns the wakes of session id answered so far, waiting a little
// for the first: the server may send ready before the handler records it.
func (h *hookServer) wake(id string) []wakeCall {
	for deadline := time.Now().Add(time.Second); ; time.Sleep(time.Millisecond) {
		h.mu.Lock()
		calls := slices.Clone(h.wakes[id])
		h.mu.Unlock()
		if len(calls) > 0 || time.Now().After(deadline) {
			return calls
		}
	}
}

// wakeMode runs -mode wake (see the package comment).
func wakeMode(o options) error {
	if o.sessiond == "" {
		return errors.New("-mode wake needs -sessiond: the server binary (go build -o $B/sessiond ./cmd/sessiond)")
	}
	dir, cleanup, err := tempDir(o)
	if err != nil {
		return err
	}
	defer cleanup()

	wh, err := standardwebhooks.NewWebhook(hookSecret)
	if err != nil {
		return err
	}
	hook := &hookServer{wh: wh, delay: o.hookDelay, wakes: map[string][]wakeCall{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: hook, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()

	// The server: the embedded store, a JWT secret, the hook, one policy
	// that hibernates (after long enough that nothing hibernates by itself
	// during the run: the sessions are hibernated by hand).
	cfg := fmt.Sprintf(`addr: %s
data_dir: %s
log_format: json
log_level: warn
access_log: false
jwt:
  secret: %s
websocket:
  connects_per_address: -1
hooks:
  runtime:
    url: http://%s/runtime
    secret: %s
policies:
  workspace:
    ttl: 1h
    idle_timeout: 30m
    hibernate_after: 10m
    wake_timeout: 30s
`, o.addr, filepath.Join(dir, "data"), jwtSecret, ln.Addr(), hookSecret)
	cfgPath := filepath.Join(dir, "sessiond.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	fmt.Printf("# server: %s serve --config %s (the embedded store; policy hibernate_after 10m, wake_timeout 30s)\n", o.sessiond, cfgPath)
	fmt.Printf("# %d sessions hibernated by hand, then woken by a WebSocket each, %d at a time; the hook answers a wake after %v\n",
		o.n, o.conc, o.hookDelay)
	stop, err := startServer(o, dir, cfgPath)
	if err != nil {
		return err
	}
	defer stop()
	key, err := os.ReadFile(filepath.Join(dir, "data", "api_key"))
	if err != nil {
		return err
	}
	c := client.New(o.addr, strings.TrimSpace(string(key)))
	ctx := context.Background()

	// Sessions, hibernated by hand; a credential for each subject.
	type target struct {
		id, token, cred string
	}
	targets := make([]target, o.n)
	run := strconv.FormatInt(time.Now().Unix(), 36)
	t0 := time.Now()
	if err := workers.Each(o.n, o.conc, func(i int) error {
		subject := "hib-" + run + "-" + strconv.Itoa(i)
		cr, err := c.Create(ctx, client.CreateRequest{Subject: subject, Policy: "workspace"})
		if err != nil {
			return err
		}
		s, err := c.Hibernate(ctx, cr.ID)
		if err != nil {
			return err
		}
		if s.State != sessiond.StateHibernated {
			return fmt.Errorf("session %s is %v after hibernate", cr.ID, s.State)
		}
		cred, err := jwt.Sign([]byte(jwtSecret), subject, time.Hour, time.Now())
		targets[i] = target{cr.ID, cr.Token, cred}
		return err
	}); err != nil {
		return err
	}
	fmt.Printf("created and hibernated %d sessions in %v\n", o.n, time.Since(t0).Round(time.Millisecond))

	// The connects.
	ackLat := make([]time.Duration, o.n)
	readyLat := make([]time.Duration, o.n)
	toHook := make([]time.Duration, o.n)
	total := make([]time.Duration, o.n)
	t0 = time.Now()
	if err := workers.Each(o.n, o.conc, func(i int) error {
		tg := targets[i]
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		h := http.Header{}
		h.Set("Authorization", "Bearer "+tg.cred)
		h.Set("X-Session-Token", tg.token)
		start := time.Now()
		ws, _, err := websocket.Dial(ctx, "ws://"+o.addr+"/v1/connect", &websocket.DialOptions{HTTPHeader: h})
		if err != nil {
			return fmt.Errorf("connect %d: %w", i, err)
		}
		defer ws.CloseNow()
		_, b, err := ws.Read(ctx)
		ackAt := time.Now()
		if err != nil {
			return fmt.Errorf("connect %d: reading the ack: %w", i, err)
		}
		var ack wire.Connected
		if err := json.Unmarshal(b, &ack); err != nil || ack.Type != wire.TypeConnected || ack.SessionID != tg.id || ack.State != "waking" {
			return fmt.Errorf("connect %d: the ack is %s, want connected to %s, waking", i, b, tg.id)
		}
		_, b, err = ws.Read(ctx)
		readyAt := time.Now()
		if err != nil {
			return fmt.Errorf("connect %d: reading ready: %w", i, err)
		}
		var ready wire.Ready
		if err := json.Unmarshal(b, &ready); err != nil || ready.Type != wire.TypeReady || ready.State != "active" {
			return fmt.Errorf("connect %d: after the ack came %s, want ready, active", i, b)
		}
		calls := hook.wake(tg.id)
		if len(calls) != 1 {
			return fmt.Errorf("connect %d: the hook answered %d wakes of %s, want 1", i, len(calls), tg.id)
		}
		ackLat[i] = ackAt.Sub(start)
		readyLat[i] = readyAt.Sub(calls[0].answered)
		toHook[i] = calls[0].received.Sub(start)
		total[i] = readyAt.Sub(start)
		return ws.Close(websocket.StatusNormalClosure, "")
	}); err != nil {
		return err
	}
	fmt.Printf("woke %d sessions in %v; hook calls that did not verify: %d\n\n", o.n, time.Since(t0).Round(time.Millisecond), hook.bad.Load())
	row("dial start -> ack (state waking)", ackLat)
	row("hook's answer -> ready", readyLat)
	row("dial start -> the hook's wake call arrives", toHook)
	row("dial start -> ready (includes the hook's delay)", total)
	_, ackP99, _ := quantiles(ackLat)
	_, readyP99, _ := quantiles(readyLat)
	fmt.Printf("\ntarget: ack p99 <= %v: %s (p99 %s); ready after the hook's answer p99 <= %v: %s (p99 %s)\n",
		ackTarget, verdict(ackP99, ackTarget), ms(ackP99), readyTarget, verdict(readyP99, readyTarget), ms(readyP99))
	return nil
}

// startServer starts `sessiond serve --config cfgPath`, its log in dir,
// and waits until it is ready. stop ends it (SIGTERM, then SIGKILL).
func startServer(o options, dir, cfgPath string) (stop func(), err error) {
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.sessiond, "serve", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logf.Close()
	}
	hc := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case <-exited:
			log, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("the server exited:\n%s", log)
		default:
		}
		if r, err := hc.Get("http://" + o.addr + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return stop, nil
			}
		}
	}
	stop()
	return nil, fmt.Errorf("the server was not ready within 30s (its log: %s)", logf.Name())
}
