package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/exechook"
	"github.com/sessiond/sessiond/internal/realip"
	"github.com/sessiond/sessiond/jwt"
	"github.com/sessiond/sessiond/pebble"
	"github.com/sessiond/sessiond/redis"
	"github.com/sessiond/sessiond/webhook"
	wsedge "github.com/sessiond/sessiond/ws"
)

// Config is the server's effective configuration. Each field is set, in
// order of precedence, by its flag, its SESSIOND_* environment variable, the
// config file, or the default noted beside it.
type Config struct {
	Addr      string `yaml:"addr"`       // 127.0.0.1:7600
	DataDir   string `yaml:"data_dir"`   // sessiond-data
	APIKey    string `yaml:"api_key"`    // generated and saved in the data directory; at least 32 bytes
	Store     string `yaml:"store"`      // embedded | memory | a Redis URL (cluster mode; docs/redis.md)
	LogFormat string `yaml:"log_format"` // auto (text on a terminal, else JSON) | text | json
	LogLevel  string `yaml:"log_level"`  // info

	// APIKeyFile names a file holding the API key (its trailing newline
	// trimmed), so that the key is not on the command line; api_key and
	// api_key_file exclude each other.
	APIKeyFile string `yaml:"api_key_file"`
	// TLS serves HTTPS, REST and WebSocket alike; without it the server
	// speaks plain HTTP, which only a loopback addr or InsecureHTTP allows.
	TLS TLSConfig `yaml:"tls"`
	// InsecureHTTP allows plain HTTP on an address that is not loopback,
	// for a server behind a TLS-terminating proxy: false.
	InsecureHTTP bool `yaml:"insecure_http"`
	// TrustedProxies are the CIDRs (or addresses) of proxies whose
	// X-Forwarded-For is believed: none. The client address is then the
	// right-most address in X-Forwarded-For that is not a trusted proxy.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// AccessLog logs one line per request at info level: true.
	AccessLog bool `yaml:"access_log"`
	// Console serves the web console at /console (docs/console.md): true.
	// The page is public; the API calls it makes need the API key.
	Console bool `yaml:"console"`
	// DebugAddr, if set, serves Go's profiler (net/http/pprof) on this
	// loopback address, apart from the API: none.
	DebugAddr string `yaml:"debug_addr"`

	// Retention is how long ended sessions stay readable: 24h.
	Retention Duration `yaml:"retention"`
	// EventRetention is how many recent events stay in the log for
	// resuming streams: 100000.
	EventRetention int `yaml:"event_retention"`
	// MaxMetadataBytes caps a session's metadata: 8192.
	MaxMetadataBytes int `yaml:"max_metadata_bytes"`
	// MaxSubscribers caps the event subscriptions open at once: the event
	// streams of GET /v1/events, and the one the WebSocket edge holds when
	// it is on. Beyond, a stream is answered 503 unavailable: 1024.
	MaxSubscribers int `yaml:"max_subscribers"`
	// ShutdownTimeout bounds a graceful stop: 15s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// MinFreeSpace is the free space the embedded store keeps on its
	// filesystem: below it, writes are refused with store_full (reads go
	// on, writes resume when space is back) and the server refuses to
	// start. 256MiB; 0 turns the check off.
	MinFreeSpace ByteSize `yaml:"min_free_space"`

	// DefaultPolicy names the policy of creates that name none; with one
	// policy it may be left out.
	DefaultPolicy string `yaml:"default_policy"`
	// ConnectPolicy names the policy of sessions a WebSocket connection
	// creates for a device: "device" if there is one, else the default.
	ConnectPolicy string `yaml:"connect_policy"`
	// Policies by name. None configured means two built-in ones: "default"
	// (ttl 24h, idle_timeout 30m, touch_interval 1m, rotation_grace 30s)
	// and "device" (ttl 24h, idle_timeout 1h, disconnect_grace 30s, one
	// connection that a newer one replaces).
	Policies map[string]PolicyConfig `yaml:"policies"`

	// Node names this server among those sharing a store; it must not
	// change across restarts: the host name.
	Node string `yaml:"node"`
	// LeaseTTL is how long this node's lease in the store lasts unless
	// renewed (every third of it): 15s. Once it lapses, another node treats
	// the WebSockets this node held as lost. Shorter finds a dead node
	// sooner, for a write every third of it; at least 1s.
	LeaseTTL Duration `yaml:"lease_ttl"`
	// JWT configures the credentials of WebSocket connections; without a
	// key, GET /v1/connect is off.
	JWT JWTConfig `yaml:"jwt"`
	// WebSocket tunes the WebSocket edge.
	WebSocket WebSocketConfig `yaml:"websocket"`
	// EndingHookURL, if set, is POSTed every session that ends, as
	// {"type":"session.ending","timestamp":...,"event":"ending","session":{...}},
	// before the session is recorded as ended, with the Standard Webhooks
	// headers (webhook-id "<session id>.ending"). A 2xx answer is success;
	// failures are retried with backoff within dispose_timeout, then logged
	// and counted.
	EndingHookURL string `yaml:"ending_hook_url"`
	// EndingHookSecret, "whsec_<base64>" as Standard Webhooks libraries
	// take it, signs the ending hook's deliveries (webhook-signature).
	EndingHookSecret string `yaml:"ending_hook_secret"`
	// Hooks are the calls the server makes to the application.
	Hooks HooksConfig `yaml:"hooks"`
	// DisposeTimeout bounds each resource disposal and the ending hook: 5s.
	DisposeTimeout Duration `yaml:"dispose_timeout"`
	// History, a PostgreSQL URL (postgres://...), keeps every lifecycle
	// event there (docs/history.md): off by default.
	History string `yaml:"history"`
	// Webhooks are notification endpoints, each POSTed the events of the
	// types it lists (docs/webhooks.md): none; at most 16.
	Webhooks []WebhookConfig `yaml:"webhooks"`
	// ValidationCache, if set, keeps the sessions validations read for up
	// to this long, so that a validation needs no store read: off (0) by
	// default. A revoke through this node is seen at once; one through
	// another node once its event arrives, or after this at most.
	ValidationCache Duration `yaml:"validation_cache"`
	// ValidationCacheSize caps the sessions the cache holds: 100000.
	ValidationCacheSize int `yaml:"validation_cache_size"`

	file string // the config file read, if any
	// storeOpTimeout, for tests, is a Redis store's StoreOptions.OpTimeout:
	// 0 is its default (redis.DefaultOpTimeout).
	storeOpTimeout time.Duration
	// historySchema, for tests, is the history's postgres.Options.Schema.
	historySchema string
}

// TLSConfig names the certificate and key files (PEM). The certificate
// file may hold the chain after the leaf. Both are reloaded when they
// change and on SIGHUP.
type TLSConfig struct {
	Cert string `yaml:"cert"` // --tls-cert
	Key  string `yaml:"key"`  // --tls-key
}

// on reports whether TLS is configured.
func (t TLSConfig) on() bool { return t.Cert != "" || t.Key != "" }

// JWTConfig is how WebSocket credentials are verified. The algorithm is
// pinned to the key: HS256 for the secret, RS256, ES256 or EdDSA for public
// keys by their type; "none" and confusions between them are refused.
type JWTConfig struct {
	Secret      string   `yaml:"secret"`       // HS256 secret, at least 32 bytes (--jwt-secret)
	SecretFile  string   `yaml:"secret_file"`  // or a file holding it, trailing newline trimmed (--jwt-secret-file)
	PublicKeys  []string `yaml:"public_keys"`  // PEM files (--jwt-public-key, comma-separated)
	JWKSURL     string   `yaml:"jwks_url"`     // refreshed in the background; kid selects the key
	JWKSRefresh Duration `yaml:"jwks_refresh"` // 5m
	Issuer      string   `yaml:"issuer"`       // iss must equal it, if set
	Audience    string   `yaml:"audience"`     // aud must contain it; required with public keys or a JWKS URL
	// AllowAnyAudience waives the audience required with public keys or a
	// JWKS URL (an identity provider's keys sign tokens for other services
	// too): false.
	AllowAnyAudience bool     `yaml:"allow_any_audience"`
	Leeway           Duration `yaml:"leeway"`          // clock skew allowed on exp, nbf, iat: 30s; not negative
	MaxLifetime      Duration `yaml:"max_lifetime"`    // longest credential accepted, exp - iat: 24h; negative: no limit
	SubjectClaim     string   `yaml:"subject_claim"`   // the claim naming the subject: sub
	AllowNoExpiry    bool     `yaml:"allow_no_expiry"` // accept tokens without exp: false
}

// WebSocketConfig tunes the WebSocket edge; docs/protocol.md has the
// defaults' meaning.
type WebSocketConfig struct {
	MaxMessageSize int      `yaml:"max_message_size"` // 4096
	MessageRate    float64  `yaml:"message_rate"`     // 20 per second
	MessageBurst   int      `yaml:"message_burst"`    // 40
	RefreshBefore  Duration `yaml:"refresh_before"`   // 1m
	// AllowedOrigins, if set, are the only browser origins that may
	// connect ("https://app.example.com"); handshakes without an Origin
	// header (clients that are not browsers) are not affected.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// MaxSockets caps the sockets this node holds, below the process's
	// open files limit so that REST, health checks and the store keep
	// descriptors: by default, and at most, the limit less the larger of
	// 256 and a tenth of it (at least 1).
	MaxSockets int `yaml:"max_sockets"`
	// ConnectsPerSubject and ConnectsPerAddress limit handshakes per second
	// of one subject and of one client address: 10 and 200; negative: no
	// limit.
	ConnectsPerSubject int `yaml:"connects_per_subject"`
	ConnectsPerAddress int `yaml:"connects_per_address"`
}

// HooksConfig are the calls the server makes to the application.
type HooksConfig struct {
	// Runtime carries out hibernating, waking and disposing of the sessions
	// of policies with hibernate_after (docs/hibernation.md): a signed
	// webhook (url) or a command, not both. Without one, sessions still
	// hibernate and wake, with nothing called.
	Runtime RuntimeHookConfig `yaml:"runtime"`
}

// RuntimeHookConfig is the session runtime: a webhook or a command.
type RuntimeHookConfig struct {
	// URL is POSTed each call as {"type":"session.hibernate",
	// "timestamp":...,"data":{"action","key","session"}} with the Standard
	// Webhooks headers, webhook-id the call's key (--runtime-hook-url).
	// Any 2xx completes the transition; failures are retried with
	// backoff within the policy's wake_timeout.
	URL string `yaml:"url"`
	// Secret, "whsec_<base64>", signs the webhook (--runtime-hook-secret).
	Secret string `yaml:"secret"`
	// Attempts is how many times a call is posted in all, within the
	// wake_timeout: 5.
	Attempts int `yaml:"attempts"`
	// Command is a program and its arguments, run once per call with the
	// session in its environment (SESSIOND_ACTION, SESSIOND_SESSION_ID,
	// ...) and the webhook's body on its standard input; exit status 0
	// completes the transition, and one still running at the wake_timeout
	// is killed with its children.
	Command []string `yaml:"command"`
	// Env adds to the command's environment ("NAME=value", or "NAME" to
	// pass the server's own); it gets only PATH, HOME, LANG and TZ besides.
	Env []string `yaml:"env"`
}

// on reports whether a runtime is configured.
func (r RuntimeHookConfig) on() bool { return r.URL != "" || len(r.Command) > 0 }

// PolicyConfig is a policy as written in the config file.
type PolicyConfig struct {
	TTL               Duration `yaml:"ttl"`
	IdleTimeout       Duration `yaml:"idle_timeout"`
	TouchInterval     Duration `yaml:"touch_interval"`
	RotateAfter       Duration `yaml:"rotate_after"`
	RotationGrace     Duration `yaml:"rotation_grace"`
	MaxPerSubject     int      `yaml:"max_per_subject"`
	OnLimit           string   `yaml:"on_limit"`
	BindDevice        bool     `yaml:"bind_device"`
	DisconnectGrace   Duration `yaml:"disconnect_grace"`
	HeartbeatInterval Duration `yaml:"heartbeat_interval"`
	HeartbeatTimeout  Duration `yaml:"heartbeat_timeout"`
	MaxConnections    int      `yaml:"max_connections"`
	OnConnect         string   `yaml:"on_connect"`
	HibernateAfter    Duration `yaml:"hibernate_after"`
	WakeTimeout       Duration `yaml:"wake_timeout"`
}

func (pc PolicyConfig) policy(name string) sessiond.Policy {
	return sessiond.Policy{
		Name: name, TTL: time.Duration(pc.TTL), IdleTimeout: time.Duration(pc.IdleTimeout),
		TouchInterval: time.Duration(pc.TouchInterval), RotateAfter: time.Duration(pc.RotateAfter),
		RotationGrace: time.Duration(pc.RotationGrace), MaxPerSubject: pc.MaxPerSubject,
		OnLimit: sessiond.LimitAction(pc.OnLimit), BindDevice: pc.BindDevice,
		DisconnectGrace: time.Duration(pc.DisconnectGrace), HeartbeatInterval: time.Duration(pc.HeartbeatInterval),
		HeartbeatTimeout: time.Duration(pc.HeartbeatTimeout), MaxConnections: pc.MaxConnections,
		OnConnect:      sessiond.ConnectAction(pc.OnConnect),
		HibernateAfter: time.Duration(pc.HibernateAfter), WakeTimeout: time.Duration(pc.WakeTimeout),
	}
}

func policyConfig(p sessiond.Policy) PolicyConfig {
	return PolicyConfig{
		TTL: Duration(p.TTL), IdleTimeout: Duration(p.IdleTimeout), TouchInterval: Duration(p.TouchInterval),
		RotateAfter: Duration(p.RotateAfter), RotationGrace: Duration(p.RotationGrace),
		MaxPerSubject: p.MaxPerSubject, OnLimit: string(p.OnLimit), BindDevice: p.BindDevice,
		DisconnectGrace: Duration(p.DisconnectGrace), HeartbeatInterval: Duration(p.HeartbeatInterval),
		HeartbeatTimeout: Duration(p.HeartbeatTimeout), MaxConnections: p.MaxConnections, OnConnect: string(p.OnConnect),
		HibernateAfter: Duration(p.HibernateAfter), WakeTimeout: Duration(p.WakeTimeout),
	}
}

// Duration is a time.Duration written as "90s", "1h30m" in YAML.
type Duration time.Duration

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

const durationWant = `a duration like "90s" or "1h30m"`

// parseDuration reads a duration as the config file and the flags give it.
func parseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not %s", s, durationWant)
	}
	return Duration(v), nil
}

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return &durationError{line: n.Line, value: n.Value, want: durationWant}
	}
	*d = v
	return nil
}

// durationError is a bad duration or size; readFile names its key.
type durationError struct {
	line  int
	value string
	key   string
	want  string // what it is not
}

func (e *durationError) Error() string {
	return fmt.Sprintf("line %d: %s: %q is not %s", e.line, e.key, e.value, e.want)
}

// ByteSize is a number of bytes written as "512MiB", "1GiB" or "1073741824".
type ByteSize int64

const sizeWant = `a size like "512MiB", "1GiB" or "0"`

var sizeUnits = []struct {
	suffix string
	n      float64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}, {"b", 1},
}

// ParseByteSize reads a size: a number with an optional unit, binary
// (KiB, MiB, GiB, TiB; K, M, G, T), decimal (kB, MB, GB, TB) or B.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 1.0
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.n
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || v*mult > 1<<62 || t == "" {
		return 0, fmt.Errorf("%q is not %s", s, sizeWant)
	}
	return ByteSize(v * mult), nil
}

// String writes the size with the largest binary unit that divides it.
func (b ByteSize) String() string {
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.n == 0 {
			return strconv.FormatInt(int64(b)/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// MarshalYAML writes the size as a string.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// UnmarshalYAML reads a size.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return &durationError{line: n.Line, value: n.Value, want: sizeWant}
	}
	*b = v
	return nil
}

func defaultConfig() Config {
	return Config{
		Addr: "127.0.0.1:7600", DataDir: "sessiond-data", Store: "embedded", LogFormat: "auto", LogLevel: "info",
		Retention: Duration(sessiond.DefaultRetention), EventRetention: 100_000,
		MaxMetadataBytes: sessiond.DefaultMaxMetadata, ShutdownTimeout: Duration(15 * time.Second),
		DisposeTimeout: Duration(sessiond.DefaultDisposeTimeout), Node: hostname(), AccessLog: true, Console: true,
		Hooks:    HooksConfig{Runtime: RuntimeHookConfig{Attempts: webhook.DefaultAttempts}},
		LeaseTTL: Duration(sessiond.DefaultLeaseTTL), ValidationCacheSize: sessiond.DefaultValidationCacheSize, MinFreeSpace: ByteSize(pebble.DefaultMinFreeBytes),
	}
}

// fillDefaults puts the values the server uses where the configuration
// leaves them zero, so that `sessiond config` prints what serve does. It is
// the one place these defaults are filled; it is idempotent.
func (cfg *Config) fillDefaults() {
	if cfg.MaxSubscribers == 0 {
		cfg.MaxSubscribers = sessiond.DefaultMaxSubscribers
	}
	if cfg.JWT.SubjectClaim == "" {
		cfg.JWT.SubjectClaim = jwt.DefaultSubjectClaim
	}
	if cfg.JWT.JWKSRefresh == 0 {
		cfg.JWT.JWKSRefresh = Duration(jwt.DefaultJWKSRefresh)
	}
	if cfg.JWT.Leeway == 0 {
		cfg.JWT.Leeway = Duration(jwt.DefaultLeeway)
	}
	if cfg.JWT.MaxLifetime == 0 {
		cfg.JWT.MaxLifetime = Duration(jwt.DefaultMaxLifetime)
	}
	ws := &cfg.WebSocket
	if ws.MaxMessageSize == 0 {
		ws.MaxMessageSize = wsedge.DefaultMaxMessageSize
	}
	if ws.MessageRate == 0 {
		ws.MessageRate = wsedge.DefaultMessageRate
	}
	if ws.MessageBurst == 0 {
		ws.MessageBurst = wsedge.DefaultMessageBurst
	}
	if ws.RefreshBefore == 0 {
		ws.RefreshBefore = Duration(wsedge.DefaultRefreshBefore)
	}
	if ws.MaxSockets == 0 {
		ws.MaxSockets = socketBudget()
	}
	if ws.ConnectsPerSubject == 0 {
		ws.ConnectsPerSubject = wsedge.DefaultConnectsPerSubject
	}
	if ws.ConnectsPerAddress == 0 {
		ws.ConnectsPerAddress = wsedge.DefaultConnectsPerAddress
	}
	cfg.fillWebhookDefaults()
	if cfg.ConnectPolicy == "" {
		// As the engine chooses: "device" if there is one, else the default.
		if policies, def, err := cfg.policies(); err == nil {
			cfg.ConnectPolicy = def
			if slices.ContainsFunc(policies, func(p sessiond.Policy) bool { return p.Name == "device" }) {
				cfg.ConnectPolicy = "device"
			}
		}
	}
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "sessiond"
	}
	return h
}

// configFlags are the flags every command that needs the configuration takes.
type configFlags struct {
	fs  *flag.FlagSet
	set map[string]*string // flag name -> value, if given
}

var flagEnv = []struct{ flag, env, help string }{
	{"config", "SESSIOND_CONFIG", "config file (YAML); policies live there"},
	{"addr", "SESSIOND_ADDR", "listen address (serve) or server address (admin commands)"},
	{"data-dir", "SESSIOND_DATA_DIR", "data directory of the embedded store and the generated API key"},
	{"api-key", "SESSIOND_API_KEY", "admin API key; none: the one generated into the data directory"},
	{"store", "SESSIOND_STORE", "embedded, memory, or a Redis URL (redis://, rediss://, redis+sentinel://, redis+cluster://) for a cluster of nodes"},
	{"log-format", "SESSIOND_LOG_FORMAT", "auto, text or json"},
	{"log-level", "SESSIOND_LOG_LEVEL", "debug, info, warn or error"},
	{"node", "SESSIOND_NODE", "this server's name among those sharing a store; keep it across restarts"},
	{"jwt-secret", "SESSIOND_JWT_SECRET", "HS256 secret for WebSocket credentials (at least 32 bytes)"},
	{"jwt-public-key", "SESSIOND_JWT_PUBLIC_KEYS", "PEM public key files for WebSocket credentials, comma-separated (RS256, ES256, EdDSA)"},
	{"jwt-jwks-url", "SESSIOND_JWT_JWKS_URL", "JWKS URL for WebSocket credentials"},
	{"jwt-issuer", "SESSIOND_JWT_ISSUER", "required iss of credentials"},
	{"jwt-audience", "SESSIOND_JWT_AUDIENCE", "required aud of credentials"},
	{"jwt-subject-claim", "SESSIOND_JWT_SUBJECT_CLAIM", "claim naming the subject, e.g. email"},
	{"jwt-leeway", "SESSIOND_JWT_LEEWAY", "clock skew allowed on credentials' times; negative is refused"},
	{"jwt-max-lifetime", "SESSIOND_JWT_MAX_LIFETIME", "longest credential accepted, exp - iat; negative: no limit"},
	{"jwt-allow-any-audience", "SESSIOND_JWT_ALLOW_ANY_AUDIENCE", "accept credentials from public keys or JWKS without --jwt-audience"},
	// Transport and credentials.
	{"api-key-file", "SESSIOND_API_KEY_FILE", "file holding the admin API key (at least 32 bytes), kept out of ps"},
	{"jwt-secret-file", "SESSIOND_JWT_SECRET_FILE", "file holding the HS256 secret, kept out of ps"},
	{"tls-cert", "SESSIOND_TLS_CERT", "TLS certificate file (PEM, chain after the leaf): serve HTTPS"},
	{"tls-key", "SESSIOND_TLS_KEY", "TLS private key file (PEM)"},
	{"insecure-http", "SESSIOND_INSECURE_HTTP", "allow plain HTTP on a non-loopback address, behind a TLS-terminating proxy"},
	{"trusted-proxies", "SESSIOND_TRUSTED_PROXIES", "CIDRs of proxies whose X-Forwarded-For is believed, comma-separated"},
	{"access-log", "SESSIOND_ACCESS_LOG", "log one line per request"},
	{"console", "SESSIOND_CONSOLE", "serve the web console at /console (it asks for the API key)"},
	{"debug-addr", "SESSIOND_DEBUG_ADDR", "serve Go's profiler (/debug/pprof/) on this loopback address, e.g. 127.0.0.1:6060"},
	{"ws-allowed-origins", "SESSIOND_WS_ALLOWED_ORIGINS", "browser origins that may open WebSockets, comma-separated; none: any"},
	{"ws-max-sockets", "SESSIOND_WS_MAX_SOCKETS", "most WebSockets this node holds; by default, and at most, the open files limit less the larger of 256 and a tenth of it, at least 1"},
	{"ws-connects-per-subject", "SESSIOND_WS_CONNECTS_PER_SUBJECT", "WebSocket handshakes per second of one subject; negative: no limit"},
	{"ws-connects-per-address", "SESSIOND_WS_CONNECTS_PER_ADDRESS", "WebSocket handshakes per second of one client address; negative: no limit"},
	{"ending-hook-url", "SESSIOND_ENDING_HOOK_URL", "URL POSTed every ending session"},
	{"ending-hook-secret", "SESSIOND_ENDING_HOOK_SECRET", "whsec_<base64> secret signing the ending hook's deliveries (Standard Webhooks)"},
	{"runtime-hook-url", "SESSIOND_RUNTIME_HOOK_URL", "URL POSTed to hibernate, wake and dispose of sessions (docs/hibernation.md)"},
	{"runtime-hook-secret", "SESSIOND_RUNTIME_HOOK_SECRET", "whsec_<base64> secret signing the runtime hook's deliveries (Standard Webhooks)"},
	{"history", "SESSIOND_HISTORY", "PostgreSQL URL (postgres://...) to keep every lifecycle event in"},
	{"min-free-space", "SESSIOND_MIN_FREE_SPACE", "free space the embedded store keeps; below it writes are refused; 0: off"},
	{"max-subscribers", "SESSIOND_MAX_SUBSCRIBERS", "event streams (GET /v1/events) open at once, the WebSocket edge's own included"},
}

// durationFlags and countFlags are the flags that hold a duration or a
// whole number, each with the field it sets.
var (
	durationFlags = map[string]func(*Config) *Duration{
		"jwt-leeway":       func(c *Config) *Duration { return &c.JWT.Leeway },
		"jwt-max-lifetime": func(c *Config) *Duration { return &c.JWT.MaxLifetime },
	}
	countFlags = map[string]func(*Config) *int{
		"ws-max-sockets":          func(c *Config) *int { return &c.WebSocket.MaxSockets },
		"ws-connects-per-subject": func(c *Config) *int { return &c.WebSocket.ConnectsPerSubject },
		"ws-connects-per-address": func(c *Config) *int { return &c.WebSocket.ConnectsPerAddress },
		"max-subscribers":         func(c *Config) *int { return &c.MaxSubscribers },
	}
)

// switchFlags are the flags that are switches: --insecure-http alone
// means true; --access-log=false turns the access log off.
var switchFlags = map[string]bool{"insecure-http": true, "access-log": true, "console": true, "jwt-allow-any-audience": true}

// configFlagNames are the names of every configuration flag, as serve
// and config take them.
func configFlagNames() []string {
	names := make([]string, len(flagEnv))
	for i, f := range flagEnv {
		names[i] = f.flag
	}
	return names
}

// newConfigFlags registers the configuration flags named (a command's own
// set: see commandTable) on fs. load reads the environment variables of
// all of them whatever a command registers, so a SESSIOND_* variable
// works with every command, as the config file does.
func newConfigFlags(fs *flag.FlagSet, names []string) *configFlags {
	c := &configFlags{fs: fs, set: map[string]*string{}}
	for _, name := range names {
		if !slices.Contains(configFlagNames(), name) {
			panic("sessiond: no configuration flag " + name) // a mistake in commandTable
		}
	}
	for _, f := range flagEnv {
		if !slices.Contains(names, f.flag) {
			continue
		}
		v := new(string)
		c.set[f.flag] = v
		usage := fmt.Sprintf("%s (env %s)", f.help, f.env)
		if switchFlags[f.flag] {
			fs.Var(switchValue{v}, f.flag, usage)
		} else {
			fs.StringVar(v, f.flag, "", usage)
		}
	}
	return c
}

// switchValue is a boolean flag kept as the text given, so that load reads
// it like the environment: --insecure-http, --access-log=false.
type switchValue struct{ v *string }

func (s switchValue) String() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}
func (s switchValue) Set(v string) error { *s.v = v; return nil }
func (s switchValue) IsBoolFlag() bool   { return true }

// secretPairs are the secrets that may be given as a value or as a file.
var secretPairs = []struct{ value, file string }{
	{"api-key", "api-key-file"},
	{"jwt-secret", "jwt-secret-file"},
}

// load builds the effective configuration: defaults, then the file, then
// environment, then flags.
func (c *configFlags) load(getenv func(string) string) (Config, error) {
	cfg := defaultConfig()
	given := map[string]string{}
	level := map[string]int{} // 1: environment, 2: flag
	envOf := map[string]string{}
	for _, f := range flagEnv {
		envOf[f.flag] = f.env
		if v := getenv(f.env); v != "" {
			given[f.flag], level[f.flag] = v, 1
		}
	}
	c.fs.Visit(func(f *flag.Flag) {
		if _, ok := c.set[f.Name]; ok {
			given[f.Name], level[f.Name] = f.Value.String(), 2
		}
	})
	// A secret given both as a value and as a file at the same level is a
	// mistake; across levels, the higher one's choice wins.
	for _, p := range secretPairs {
		lv, hasValue := level[p.value]
		lf, hasFile := level[p.file]
		switch {
		case !hasValue || !hasFile:
		case lv == lf && lv == 2:
			return cfg, fmt.Errorf("--%s and --%s: give the secret or the file holding it, not both", p.value, p.file)
		case lv == lf:
			return cfg, fmt.Errorf("%s and %s: give the secret or the file holding it, not both", envOf[p.value], envOf[p.file])
		case lv < lf:
			delete(given, p.value)
		default:
			delete(given, p.file)
		}
	}
	if path := given["config"]; path != "" {
		if err := cfg.readFile(path); err != nil {
			return cfg, err
		}
	}
	for name, v := range given {
		if field, ok := durationFlags[name]; ok {
			d, err := parseDuration(v)
			if err != nil {
				return cfg, fmt.Errorf("%s: %w", name, err)
			}
			*field(&cfg) = d
			continue
		}
		if field, ok := countFlags[name]; ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				return cfg, fmt.Errorf("%s: %q is not a whole number", name, v)
			}
			*field(&cfg) = n
			continue
		}
		switch name {
		case "addr":
			cfg.Addr = v
		case "data-dir":
			cfg.DataDir = v
		case "api-key":
			cfg.APIKey, cfg.APIKeyFile = v, ""
		case "api-key-file":
			cfg.APIKeyFile, cfg.APIKey = v, ""
		case "tls-cert":
			cfg.TLS.Cert = v
		case "tls-key":
			cfg.TLS.Key = v
		case "insecure-http", "access-log", "console", "jwt-allow-any-audience":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return cfg, fmt.Errorf("%s: %q is not true or false", name, v)
			}
			switch name {
			case "insecure-http":
				cfg.InsecureHTTP = b
			case "access-log":
				cfg.AccessLog = b
			case "console":
				cfg.Console = b
			default:
				cfg.JWT.AllowAnyAudience = b
			}
		case "debug-addr":
			cfg.DebugAddr = v
		case "trusted-proxies":
			cfg.TrustedProxies = splitList(v)
		case "ws-allowed-origins":
			cfg.WebSocket.AllowedOrigins = splitList(v)
		case "store":
			cfg.Store = v
		case "log-format":
			cfg.LogFormat = v
		case "log-level":
			cfg.LogLevel = v
		case "node":
			cfg.Node = v
		case "jwt-secret":
			cfg.JWT.Secret, cfg.JWT.SecretFile = v, ""
		case "jwt-secret-file":
			cfg.JWT.SecretFile, cfg.JWT.Secret = v, ""
		case "jwt-public-key":
			cfg.JWT.PublicKeys = strings.Split(v, ",")
		case "jwt-jwks-url":
			cfg.JWT.JWKSURL = v
		case "jwt-issuer":
			cfg.JWT.Issuer = v
		case "jwt-audience":
			cfg.JWT.Audience = v
		case "jwt-subject-claim":
			cfg.JWT.SubjectClaim = v
		case "ending-hook-url":
			cfg.EndingHookURL = v
		case "ending-hook-secret":
			cfg.EndingHookSecret = v
		case "runtime-hook-url":
			cfg.Hooks.Runtime.URL = v
		case "runtime-hook-secret":
			cfg.Hooks.Runtime.Secret = v
		case "history":
			cfg.History = v
		case "min-free-space":
			b, err := ParseByteSize(v)
			if err != nil {
				return cfg, fmt.Errorf("min-free-space: %w", err)
			}
			cfg.MinFreeSpace = b
		}
	}
	if err := cfg.readSecretFiles(); err != nil {
		return cfg, err
	}
	if err := cfg.validate(); err != nil {
		return cfg, err
	}
	cfg.fillDefaults()
	return cfg, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// readSecretFiles reads api_key_file and jwt.secret_file into the
// secrets they hold.
func (cfg *Config) readSecretFiles() error {
	for _, f := range []struct {
		key, path string
		value     *string
		valueKey  string
	}{
		{"api_key_file", cfg.APIKeyFile, &cfg.APIKey, "api_key"},
		{"jwt.secret_file", cfg.JWT.SecretFile, &cfg.JWT.Secret, "jwt.secret"},
	} {
		if f.path == "" {
			continue
		}
		if *f.value != "" {
			return fmt.Errorf("%s and %s: give the secret or the file holding it, not both", f.valueKey, f.key)
		}
		b, err := os.ReadFile(f.path) //nolint:gosec // G304: the operator names the secret's file
		if err != nil {
			return fmt.Errorf("%s: %w", f.key, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return fmt.Errorf("%s: %s is empty", f.key, f.path)
		}
		*f.value = v
	}
	return nil
}

func (cfg *Config) readFile(path string) error {
	b, err := os.ReadFile(path) //nolint:gosec // G304: the operator names the config file
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		var de *durationError
		if errors.As(err, &de) {
			// The key is what precedes the colon on the value's line.
			if lines := strings.Split(string(b), "\n"); de.line >= 1 && de.line <= len(lines) {
				de.key, _, _ = strings.Cut(strings.TrimSpace(lines[de.line-1]), ":")
			}
			return fmt.Errorf("config %s: %w", path, de)
		}
		return fmt.Errorf("config %s: %w", path, err)
	}
	cfg.file = path
	return nil
}

func (cfg *Config) validate() error {
	if cfg.LeaseTTL != 0 && cfg.LeaseTTL < Duration(time.Second) {
		return fmt.Errorf("lease_ttl: %v is shorter than 1s", time.Duration(cfg.LeaseTTL))
	}
	switch {
	case cfg.Store == "embedded", cfg.Store == "memory":
	case cfg.redisStore():
		if _, err := redis.ParseURL(cfg.Store); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	default:
		return fmt.Errorf("store: must be \"embedded\", \"memory\" or a Redis URL (got %q)", cfg.Store)
	}
	switch cfg.LogFormat {
	case "auto", "text", "json":
	default:
		return fmt.Errorf("log_format: must be auto, text or json (got %q)", cfg.LogFormat)
	}
	if _, err := parseLevel(cfg.LogLevel); err != nil {
		return err
	}
	if cfg.Store == "embedded" && cfg.DataDir == "" {
		return errors.New("data_dir: required by the embedded store")
	}
	if cfg.DataDir == "" && cfg.APIKey == "" {
		return errors.New("data_dir: required to keep the generated API key (or configure api_key)")
	}
	if cfg.EventRetention < 1 {
		return fmt.Errorf("event_retention: must be at least 1 (got %d)", cfg.EventRetention)
	}
	if cfg.MaxMetadataBytes < 1 {
		return fmt.Errorf("max_metadata_bytes: must be at least 1 (got %d)", cfg.MaxMetadataBytes)
	}
	policies, _, err := cfg.policies()
	if err != nil {
		return err
	}
	if cfg.ConnectPolicy != "" && !slices.ContainsFunc(policies, func(p sessiond.Policy) bool { return p.Name == cfg.ConnectPolicy }) {
		return fmt.Errorf("connect_policy: names %q, which is not among the policies", cfg.ConnectPolicy)
	}
	if cfg.EndingHookURL != "" {
		if u, err := url.Parse(cfg.EndingHookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("ending_hook_url: must be an http or https URL (got %q)", cfg.EndingHookURL)
		}
	}
	if cfg.History != "" {
		if u, err := url.Parse(cfg.History); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return errors.New("history: must be a PostgreSQL URL (postgres://user@host:5432/db)")
		}
	}
	if cfg.EndingHookSecret != "" {
		if cfg.EndingHookURL == "" {
			return errors.New("ending_hook_secret: set, but ending_hook_url is not")
		}
		if _, err := webhook.ParseSecret(cfg.EndingHookSecret); err != nil {
			return fmt.Errorf("ending_hook_secret: %w", err)
		}
	}
	if err := cfg.Hooks.Runtime.check(); err != nil {
		return err
	}
	if err := cfg.checkWebhooks(); err != nil {
		return err
	}
	if (cfg.TLS.Cert == "") != (cfg.TLS.Key == "") {
		return errors.New("tls: the certificate and its key go together: set both tls.cert and tls.key (--tls-cert, --tls-key)")
	}
	if _, err := realip.ParsePrefixes(cfg.TrustedProxies); err != nil {
		return fmt.Errorf("trusted_proxies: %w", err)
	}
	for _, o := range cfg.WebSocket.AllowedOrigins {
		if _, err := wsedge.ParseOrigin(o); err != nil {
			return fmt.Errorf("websocket.allowed_origins: %w", err)
		}
	}
	return cfg.checkNotNegative()
}

// checkNotNegative refuses a negative value where it means nothing: these
// settings take zero for their default, and have no "off". (Those that
// do, jwt.max_lifetime and websocket.connects_per_*, are in offWhenNegative.)
func (cfg *Config) checkNotNegative() error {
	ws, j := cfg.WebSocket, cfg.JWT
	for _, s := range []struct {
		key, flag string // flag: "" if none
		negative  bool
		got       any
	}{
		{"min_free_space", "min-free-space", cfg.MinFreeSpace < 0, int64(cfg.MinFreeSpace)},
		{"max_subscribers", "max-subscribers", cfg.MaxSubscribers < 0, cfg.MaxSubscribers},
		{"jwt.leeway", "jwt-leeway", j.Leeway < 0, time.Duration(j.Leeway)},
		{"jwt.jwks_refresh", "", j.JWKSRefresh < 0, time.Duration(j.JWKSRefresh)},
		{"websocket.max_message_size", "", ws.MaxMessageSize < 0, ws.MaxMessageSize},
		{"websocket.message_rate", "", ws.MessageRate < 0, ws.MessageRate},
		{"websocket.message_burst", "", ws.MessageBurst < 0, ws.MessageBurst},
		{"websocket.refresh_before", "", ws.RefreshBefore < 0, time.Duration(ws.RefreshBefore)},
		{"websocket.max_sockets", "ws-max-sockets", ws.MaxSockets < 0, ws.MaxSockets},
	} {
		if !s.negative {
			continue
		}
		key := s.key
		if s.flag != "" {
			key += " (--" + s.flag + ")"
		}
		return fmt.Errorf("%s: must not be negative (got %v); 0 means the default", key, s.got)
	}
	return nil
}

// offWhenNegative are the limits that a negative value turns off, with
// what `sessiond config` says beside such a value.
var offWhenNegative = []struct {
	path    []string // the YAML keys leading to it
	off     func(*Config) bool
	comment string
}{
	{[]string{"jwt", "max_lifetime"}, func(c *Config) bool { return c.JWT.MaxLifetime < 0 },
		"negative: off, credentials of any lifetime are accepted"},
	{[]string{"websocket", "connects_per_subject"}, func(c *Config) bool { return c.WebSocket.ConnectsPerSubject < 0 },
		"negative: off, no limit on a subject's handshakes"},
	{[]string{"websocket", "connects_per_address"}, func(c *Config) bool { return c.WebSocket.ConnectsPerAddress < 0 },
		"negative: off, no limit on an address's handshakes"},
}

// policies returns the configured policies, checked, and the default's name.
func (cfg *Config) policies() ([]sessiond.Policy, string, error) {
	if len(cfg.Policies) == 0 {
		if cfg.DefaultPolicy != "" && cfg.DefaultPolicy != "default" {
			return nil, "", fmt.Errorf("default_policy: names %q, but no policies are configured", cfg.DefaultPolicy)
		}
		builtin := []sessiond.Policy{sessiond.DefaultPolicy().WithDefaults(), sessiond.DevicePolicy().WithDefaults()}
		for i := range builtin {
			if err := builtin[i].Validate(); err != nil {
				return nil, "", err
			}
		}
		return builtin, "default", nil
	}
	names := make([]string, 0, len(cfg.Policies))
	for name := range cfg.Policies {
		names = append(names, name)
	}
	slices.Sort(names)
	var out []sessiond.Policy
	for _, name := range names {
		p := cfg.Policies[name].policy(name).WithDefaults()
		if err := p.Validate(); err != nil {
			return nil, "", err
		}
		out = append(out, p)
	}
	def := cfg.DefaultPolicy
	switch {
	case def == "" && len(out) == 1:
		def = out[0].Name
	case def == "":
		return nil, "", fmt.Errorf("default_policy: required when several policies are configured (%s)", strings.Join(names, ", "))
	case !slices.Contains(names, def):
		return nil, "", fmt.Errorf("default_policy: names %q, which is not among the policies (%s)", def, strings.Join(names, ", "))
	}
	return out, def, nil
}

// redisStore reports whether store names a Redis deployment (a URL) rather
// than "embedded" or "memory"; validate checks the URL.
func (cfg *Config) redisStore() bool { return strings.Contains(cfg.Store, "://") }

// apiKeyFile is where a generated API key is kept.
func (cfg *Config) apiKeyFile() string { return filepath.Join(cfg.DataDir, "api_key") }

// effective returns the configuration as `sessiond config` prints it: the
// API key hidden, policies with their defaults filled in.
func (cfg *Config) effective() ([]byte, error) {
	out := *cfg
	switch {
	case out.APIKey != "":
		out.APIKey = "(set; hidden)"
	default:
		out.APIKey = "(generated on first start; saved in " + cfg.apiKeyFile() + ")"
	}
	policies, def, err := cfg.policies()
	if err != nil {
		return nil, err
	}
	out.DefaultPolicy = def
	out.Policies = map[string]PolicyConfig{}
	for _, p := range policies {
		out.Policies[p.Name] = policyConfig(p)
	}
	if out.JWT.Secret != "" {
		out.JWT.Secret = "(set; hidden)"
	}
	if out.EndingHookSecret != "" {
		out.EndingHookSecret = "(set; hidden)"
	}
	if out.Hooks.Runtime.Secret != "" {
		out.Hooks.Runtime.Secret = "(set; hidden)"
	}
	out.History = redactDSN(out.History)
	out.Webhooks = redactedWebhooks(out.Webhooks)
	if cfg.redisStore() {
		if o, err := redis.ParseURL(cfg.Store); err == nil {
			out.Store = o.String() // without its passwords
		}
	}
	var buf bytes.Buffer
	if cfg.file != "" {
		fmt.Fprintf(&buf, "# read from %s, the environment and flags\n", cfg.file)
	}
	var doc yaml.Node
	if err := doc.Encode(out); err != nil { //nolint:gosec // G117: the key was replaced by a note above
		return nil, err
	}
	for _, o := range offWhenNegative {
		if o.off(cfg) {
			if n := valueAt(&doc, o.path...); n != nil {
				n.LineComment = o.comment
			}
		}
	}
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// valueAt is the value node under the keys path in the mapping n, or nil.
func valueAt(n *yaml.Node, path ...string) *yaml.Node {
	for _, key := range path {
		var next *yaml.Node
		for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

func parseLevel(s string) (level int, err error) {
	switch strings.ToLower(s) {
	case "debug":
		return -4, nil
	case "info", "":
		return 0, nil
	case "warn":
		return 4, nil
	case "error":
		return 8, nil
	}
	return 0, fmt.Errorf("log_level: must be debug, info, warn or error (got %q)", s)
}

// check reports what is wrong with the runtime hook.
func (r RuntimeHookConfig) check() error {
	switch {
	case r.URL != "" && len(r.Command) > 0:
		return errors.New("hooks.runtime: a url or a command, not both")
	case r.URL != "":
		if u, err := url.Parse(r.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("hooks.runtime.url: must be an http or https URL (got %q)", r.URL)
		}
	case len(r.Command) > 0:
		if err := (exechook.Command{Argv: r.Command, Env: r.Env}).Check(); err != nil {
			return fmt.Errorf("hooks.runtime.command: %w", err)
		}
	}
	if r.Secret != "" {
		if r.URL == "" {
			return errors.New("hooks.runtime.secret: set, but hooks.runtime.url is not")
		}
		if _, err := webhook.ParseSecret(r.Secret); err != nil {
			return fmt.Errorf("hooks.runtime.secret: %w", err)
		}
	}
	if r.Attempts < 0 {
		return errors.New("hooks.runtime.attempts: must not be negative")
	}
	if len(r.Env) > 0 && len(r.Command) == 0 {
		return errors.New("hooks.runtime.env: set, but hooks.runtime.command is not")
	}
	return nil
}

// runtime is the configured session runtime: nil if none.
func (r RuntimeHookConfig) runtime() sessiond.Runtime {
	switch {
	case r.URL != "":
		secret, _ := webhook.ParseSecret(r.Secret) // checked by validate; nil when unset
		return webhook.Runtime(&webhook.Sender{URL: r.URL, Secret: secret, Attempts: r.Attempts,
			AttemptTimeout: 10 * time.Second, BaseDelay: 200 * time.Millisecond, MaxDelay: 5 * time.Second})
	case len(r.Command) > 0:
		return exechook.Runtime(exechook.Command{Argv: r.Command, Env: r.Env})
	}
	return nil
}
