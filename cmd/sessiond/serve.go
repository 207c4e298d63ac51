package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/console"
	"github.com/sessiond/sessiond/httpapi"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/internal/realip"
	"github.com/sessiond/sessiond/jwt"
	"github.com/sessiond/sessiond/metrics"
	"github.com/sessiond/sessiond/pebble"
	"github.com/sessiond/sessiond/postgres"
	"github.com/sessiond/sessiond/redis"
	"github.com/sessiond/sessiond/storetrace"
	"github.com/sessiond/sessiond/webhook"
	"github.com/sessiond/sessiond/wire"
	"github.com/sessiond/sessiond/ws"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// server is a running sessiond: store, engine, HTTP edge.
type server struct {
	cfg    Config
	log    *slog.Logger
	stderr io.Writer

	store sessiond.Store
	m     *sessiond.Manager
	jwt   *jwt.Verifier // nil: the WebSocket edge is off
	edge  *ws.Edge
	api   *httpapi.Server
	http  *http.Server
	ln    net.Listener
	debug *http.Server  // the profiler, with --debug-addr
	certs *certReloader // nil: plain HTTP
	hist  *historySink  // nil: no --history

	notify *notifier                // nil: no webhooks
	traces *sdktrace.TracerProvider // nil: tracing off (the OTEL_* variables)

	keySource string // configured, saved or generated
	textLogs  bool   // logs are for a human: print a banner too
}

// openServer opens the store, starts the engine (which settles sessions
// that came due while nothing ran) and binds the listener. It does not
// serve yet.
//
// Every step gives up when ctx is done (a signal): opening the store goes
// on in the background if Pebble cannot be interrupted, and the process
// exits without waiting for it. Such an interrupted start returns an error
// matching errInterrupted, after logging where it stopped.
func openServer(ctx context.Context, config Config, stderr io.Writer) (_ *server, err error) {
	s := &server{cfg: config, stderr: stderr}
	cfg := &s.cfg
	cfg.fillDefaults()
	if err := cfg.check(); err != nil {
		return nil, usageError{err.Error()} // the configuration's mistake: exit 2, as from config
	}
	s.log, s.textLogs = newLogger(*cfg, stderr)
	stage := "preparing the data directory"
	defer func() {
		if err == nil {
			return
		}
		err = errors.Join(err, s.close())
		if ctx.Err() != nil {
			s.log.Warn("startup interrupted; stopped before serving", "stage", stage, "cause", context.Cause(ctx).Error())
			err = fmt.Errorf("%w while %s: %w", errInterrupted, stage, err)
		}
	}()
	if cfg.TLS.on() {
		if s.certs, err = newCertReloader(cfg.TLS.Cert, cfg.TLS.Key, s.log); err != nil {
			return nil, err
		}
	}
	proxies, err := realip.ParsePrefixes(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("trusted_proxies: %w", err)
	}
	clientIP := realip.New(proxies).ClientIP

	if cfg.DataDir != "" {
		fixed, err := makePrivate(cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("data directory %s: %w", cfg.DataDir, err)
		}
		if fixed > 0 {
			s.log.Warn("made the data directory private to this user (directories 0700, files 0600)", "dir", cfg.DataDir, "changed", fixed)
		}
	}
	if err := s.loadAPIKey(); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	obs := metrics.New(reg)
	if s.traces, err = startTracing(ctx, os.Getenv, cfg.Node, s.log); err != nil {
		return nil, err
	}

	stage = "opening the store"
	var storeCheck func(context.Context) error
	system := "pebble" // the store's db.system.name in traces
	switch {
	case cfg.Store == "memory":
		s.store, system = inmem.New(inmem.Options{EventRetention: cfg.EventRetention}), "memory"
	case cfg.redisStore():
		st, err := redis.OpenStore(ctx, cfg.Store, redis.StoreOptions{EventRetention: cfg.EventRetention, OpTimeout: cfg.storeOpTimeout})
		if err != nil {
			return nil, fmt.Errorf("redis store: %w", err)
		}
		s.store, storeCheck, system = st, st.Ping, "redis"
	default:
		st, err := s.openStore(ctx)
		if err != nil {
			return nil, err
		}
		s.store = st
		metrics.RegisterDisk(reg, func() metrics.DiskStats {
			d := st.Disk()
			return metrics.DiskStats{FreeBytes: d.FreeBytes, MinFreeBytes: d.MinFreeBytes,
				WritesRefused: d.WritesRefused, Failed: d.Failed, Quarantined: d.Quarantined}
		})
	}
	// The store's own checks and counts (Ping, Disk) were taken from it
	// above; everything else uses it through the wrapper, which has the
	// store's optional interfaces.
	s.store = storetrace.Wrap(s.store, s.tracerProvider(), storetrace.Options{System: system})
	stage = "handling the deadlines due at start"

	policies, def, err := cfg.policies()
	if err != nil {
		return nil, err
	}
	mcfg := sessiond.Config{
		Store: s.store, Policies: policies, DefaultPolicy: def, ConnectPolicy: cfg.ConnectPolicy,
		Retention: time.Duration(cfg.Retention), MaxMetadata: cfg.MaxMetadataBytes, MaxSubscribers: cfg.MaxSubscribers,
		Logger: s.log, Observer: obs, Node: cfg.Node, DisposeTimeout: time.Duration(cfg.DisposeTimeout),
		LeaseTTL: time.Duration(cfg.LeaseTTL), ValidationCache: time.Duration(cfg.ValidationCache),
		ValidationCacheSize: cfg.ValidationCacheSize,
	}
	if cfg.EndingHookURL != "" {
		secret, _ := webhook.ParseSecret(cfg.EndingHookSecret) // checked by validate; nil when unset
		mcfg.EndingHooks = append(mcfg.EndingHooks, webhook.EndingHook(&webhook.Sender{URL: cfg.EndingHookURL, Secret: secret,
			AttemptTimeout: 2 * time.Second, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}))
	}
	mcfg.Runtime = cfg.Hooks.Runtime.runtime()
	if !cfg.Hooks.Runtime.on() {
		for _, p := range policies {
			if p.HibernateAfter > 0 {
				s.log.Warn("a policy hibernates sessions, but no runtime hook is configured (hooks.runtime): hibernating and waking change only the sessions' state",
					"policy", p.Name)
			}
		}
	}
	if s.m, err = sessiond.New(mcfg); err != nil {
		return nil, err
	}
	if err := s.m.Start(ctx); err != nil {
		return nil, err
	}
	metrics.RegisterStats(reg, s.m.Stats)
	if cfg.History != "" {
		s.hist = startHistory(cfg.History, postgres.Options{Schema: cfg.historySchema, Logger: s.log}, s.store, s.log)
		metrics.RegisterHistory(reg, s.hist.stats)
	}
	if len(cfg.Webhooks) > 0 {
		stage = "starting the webhooks"
		if s.notify, err = startNotifier(cfg, s.store, s.log); err != nil {
			return nil, err
		}
		metrics.RegisterWebhooks(reg, s.notify.stats)
	}

	api := httpapi.Config{
		Manager: s.m, APIKey: cfg.APIKey, Logger: s.log, Version: serverVersion(),
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		Observe: obs.ObserveRequest, ClientIP: clientIP, AuthFailed: obs.AdminAuthFailed,
		TracerProvider: s.tracerProvider(),
		Connect: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			wire.WriteError(w, &sessiond.Error{Code: wire.CodeRouteNotFound,
				Message: "the WebSocket edge is off: configure --jwt-secret, --jwt-public-key or --jwt-jwks-url"})
		}),
	}
	if cfg.AccessLog {
		api.AccessLog = s.log
	}
	if cfg.Console {
		api.Console = console.Handler()
	}
	if s.hist != nil {
		api.History = s.hist
	}
	stage = "setting up credentials"
	if s.jwt, err = newVerifier(ctx, cfg.JWT, s.log); err != nil {
		return nil, err
	}
	if s.jwt != nil {
		verifier := s.jwt
		s.edge, err = ws.New(ws.Config{
			Manager: s.m, Logger: s.log,
			Verify: func(ctx context.Context, tok string) (string, time.Time, error) {
				c, err := verifier.Verify(ctx, tok)
				if err != nil {
					return "", time.Time{}, err
				}
				return c.Subject, c.ExpiresAt, nil
			},
			MaxMessageSize: cfg.WebSocket.MaxMessageSize, MessageRate: cfg.WebSocket.MessageRate,
			MessageBurst: cfg.WebSocket.MessageBurst, RefreshBefore: time.Duration(cfg.WebSocket.RefreshBefore),
			ClientIP: clientIP, AllowedOrigins: cfg.WebSocket.AllowedOrigins,
			MaxSockets: cfg.WebSocket.MaxSockets, ConnectsPerSubject: cfg.WebSocket.ConnectsPerSubject,
			ConnectsPerAddress: cfg.WebSocket.ConnectsPerAddress, TracerProvider: s.tracerProvider(),
		})
		if err != nil {
			return nil, err
		}
		api.Connect, api.EdgeStats = s.edge, s.edge.Stats
		api.Checks = func() map[string]wire.Check {
			ok, detail := verifier.Ready()
			return map[string]wire.Check{"websocket": {OK: ok, Detail: detail}}
		}
		metrics.RegisterEdge(reg, s.edge.Stats)
	}
	if storeCheck != nil {
		edgeChecks := api.Checks
		api.Checks = func() map[string]wire.Check {
			checks := map[string]wire.Check{}
			if edgeChecks != nil {
				maps.Copy(checks, edgeChecks())
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			c := wire.Check{OK: true}
			if err := storeCheck(ctx); err != nil {
				c = wire.Check{Detail: "redis: " + err.Error()}
			}
			checks["store"] = c
			return checks
		}
	}
	s.api, err = httpapi.New(api)
	if err != nil {
		return nil, err
	}
	s.http = &http.Server{
		Handler:           s.api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(&slogWriter{s.log}, "", 0),
	}
	if s.certs != nil {
		s.http.TLSConfig = s.certs.tlsConfig()
	}
	s.http.RegisterOnShutdown(s.api.Close)
	stage = "binding the listener"
	if s.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	if cfg.DebugAddr != "" {
		if err := s.serveDebug(cfg.DebugAddr); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// tracerProvider is what the edges and the store trace with: nil, not a
// nil *sdktrace.TracerProvider, while tracing is off.
func (s *server) tracerProvider() trace.TracerProvider {
	if s.traces == nil {
		return nil
	}
	return s.traces
}

// errInterrupted is a start stopped by a signal.
var errInterrupted = errors.New("startup interrupted")

// openStore opens the embedded store in DATA_DIR/store: at once refused if
// the disk is below min_free_space, given up when ctx is done.
func (s *server) openStore(ctx context.Context) (*pebble.Store, error) {
	dir := filepath.Join(s.cfg.DataDir, "store")
	minFree := int64(s.cfg.MinFreeSpace)
	if minFree == 0 {
		minFree = -1 // off
	}
	s.log.Info("opening the store", "dir", dir, "min_free_space", s.cfg.MinFreeSpace.String())
	start := time.Now()
	st, err := pebble.OpenContext(ctx, pebble.Options{
		Dir: dir, EventRetention: s.cfg.EventRetention, Logger: s.log, MinFreeBytes: minFree,
	})
	var se *pebble.SpaceError
	if errors.As(err, &se) {
		return nil, fmt.Errorf("store: %s free on %s, need %s (min_free_space): free space or lower the threshold",
			pebble.FormatBytes(se.Free), se.Dir, pebble.FormatBytes(se.Need))
	}
	if err != nil {
		return nil, err
	}
	d := st.Disk()
	s.log.Info("store opened", "dir", dir, "took", time.Since(start).Round(time.Millisecond).String(),
		"free", pebble.FormatBytes(d.FreeBytes), "quarantined", d.Quarantined)
	if d.Quarantined > 0 {
		s.log.Warn("the store holds records that did not decode, set aside; the server runs without them. "+
			"List them with `sessiond store check` while the server is stopped", "quarantined", d.Quarantined, "dir", dir)
	}
	return st, nil
}

// loadAPIKey takes the configured key, or the one saved in the data
// directory, or generates and saves one.
func (s *server) loadAPIKey() error {
	if s.cfg.APIKey != "" {
		s.keySource = "configured"
		return nil
	}
	path := s.cfg.apiKeyFile()
	b, err := os.ReadFile(path) //nolint:gosec // G304: the operator names the data directory
	if err == nil {
		if s.cfg.APIKey = strings.TrimSpace(string(b)); s.cfg.APIKey == "" {
			return fmt.Errorf("%s is empty: delete it to have a new key generated", path)
		}
		s.keySource = "saved"
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var raw [32]byte
	rand.Read(raw[:])
	key := "sdk_" + base64.RawURLEncoding.EncodeToString(raw[:])
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return err
	}
	if err := writeFileSync(path, []byte(key+"\n"), 0o600); err != nil {
		return fmt.Errorf("saving the generated API key: %w", err)
	}
	s.cfg.APIKey, s.keySource = key, "generated"
	return nil
}

// writeFileSync writes a file atomically and durably: temp file, fsync, rename.
func writeFileSync(path string, data []byte, perm fs.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	// The rename is durable once the directory is.
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	return errors.Join(dir.Sync(), dir.Close())
}

// Addr is the address the server listens on.
func (s *server) Addr() string { return s.ln.Addr().String() }

// run serves until ctx is done, then shuts down gracefully: readiness goes
// to 503, open requests and event streams finish, the engine stops, the
// store closes. Sessions stay in the store.
func (s *server) run(ctx context.Context) error {
	errc := make(chan error, 1)
	if s.certs != nil {
		stop := s.reloadOnSIGHUP()
		defer stop()
		go func() { errc <- s.http.ServeTLS(s.ln, "", "") }()
	} else {
		go func() { errc <- s.http.Serve(s.ln) }()
	}
	s.api.SetReady(true)
	s.banner()

	select {
	case err := <-errc:
		return errors.Join(err, s.close())
	case <-ctx.Done():
	}
	s.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.cfg.ShutdownTimeout))
	defer cancel()
	s.api.SetReady(false)
	var err error
	if s.edge != nil {
		// First, while the engine and the store still run: every socket
		// hears "going away, reconnect" and its session waits out its grace.
		err = s.edge.Shutdown(sctx)
	}
	err = errors.Join(err, s.http.Shutdown(sctx))
	if cerr := s.close(); err == nil {
		err = cerr
	}
	s.log.Info("stopped")
	return err
}

// reloadOnSIGHUP reloads the TLS certificate on each SIGHUP until stop.
func (s *server) reloadOnSIGHUP() (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-hup:
				_ = s.certs.reload("SIGHUP") // a failure is logged; the old certificate stays
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		<-finished
	}
}

// serveDebug serves Go's profiler on a loopback address of its own.
func (s *server) serveDebug(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("debug_addr: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.debug = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.debug.Serve(ln) }()
	s.log.Info("profiler listening", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	return nil
}

func (s *server) close() error {
	if s.debug != nil {
		_ = s.debug.Close()
	}
	if s.ln != nil {
		_ = s.ln.Close() // closed already by a Shutdown
	}
	if s.api != nil {
		s.api.Close()
	}
	if s.edge != nil {
		_ = s.edge.Shutdown(context.Background()) // a no-op after run's
	}
	if s.hist != nil {
		s.hist.close()
	}
	if s.notify != nil {
		s.notify.close()
	}
	if s.m != nil {
		_ = s.m.Close() // always nil
	}
	if s.jwt != nil {
		s.jwt.Close()
	}
	var err error
	if s.store != nil {
		err = s.store.Close()
	}
	if s.traces != nil {
		stopTracing(s.traces, s.log) // last: the spans of everything above ended
	}
	return err
}

// URL is the server's base URL.
func (s *server) URL() string {
	if s.certs != nil {
		return "https://" + s.Addr()
	}
	return "http://" + s.Addr()
}

func (s *server) banner() {
	url := s.URL()
	where := "in memory (nothing survives a restart)"
	if s.cfg.Store == "embedded" {
		where = "embedded, in " + filepath.Join(s.cfg.DataDir, "store")
	}
	s.log.Info("sessiond listening", "url", url, "store", s.cfg.Store, "version", serverVersion(),
		"api_key", s.keySource, "api_key_file", s.cfg.apiKeyFile())
	if s.certs == nil && !isLoopback(s.cfg.Addr) {
		s.log.Warn("plain HTTP on a non-loopback address (insecure_http): a TLS-terminating proxy must sit in front", "addr", s.cfg.Addr)
	}
	if !s.textLogs {
		return // the line above says it all for log collectors
	}
	fmt.Fprintf(s.stderr, "\nsessiond %s listening on %s\n  store: %s\n", serverVersion(), url, where)
	key := "$(cat " + s.cfg.apiKeyFile() + ")"
	switch s.keySource {
	case "generated":
		fmt.Fprintf(s.stderr, "  admin API key: generated and saved in %s\n", s.cfg.apiKeyFile())
	case "saved":
		fmt.Fprintf(s.stderr, "  admin API key: in %s\n", s.cfg.apiKeyFile())
	default:
		fmt.Fprintf(s.stderr, "  admin API key: the configured one (--api-key, SESSIOND_API_KEY or api_key in the config file)\n")
		key = "$SESSIOND_API_KEY"
	}
	if s.cfg.Console {
		fmt.Fprintf(s.stderr, "  console: %s/console (sign in with the admin API key)\n", url)
	}
	fmt.Fprintf(s.stderr, "  try: curl -H \"Authorization: Bearer %s\" %s/v1/stats\n\n", key, url)
}

func newLogger(cfg Config, w io.Writer) (_ *slog.Logger, text bool) {
	level, _ := parseLevel(cfg.LogLevel)
	opts := &slog.HandlerOptions{Level: slog.Level(level)}
	format := cfg.LogFormat
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), true
	}
	return slog.New(slog.NewJSONHandler(w, opts)), false
}

// slogWriter sends net/http's own error log lines to slog.
type slogWriter struct{ l *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	w.l.Warn(strings.TrimSpace(string(p)), "component", "http")
	return len(p), nil
}
