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
	"github.com/sessiond/sessiond/pebble"
)

// Config is the server's effective configuration. Each field is set, in
// order of precedence, by its flag, its SESSIOND_* environment variable, the
// config file, or the default noted beside it.
type Config struct {
	Addr      string `yaml:"addr"`       // 127.0.0.1:7600
	DataDir   string `yaml:"data_dir"`   // sessiond-data
	APIKey    string `yaml:"api_key"`    // generated and saved in the data directory
	Store     string `yaml:"store"`      // embedded | memory
	LogFormat string `yaml:"log_format"` // auto (text on a terminal, else JSON) | text | json
	LogLevel  string `yaml:"log_level"`  // info

	// Retention is how long ended sessions stay readable: 24h.
	Retention Duration `yaml:"retention"`
	// EventRetention is how many recent events stay in the log for
	// resuming streams: 100000.
	EventRetention int `yaml:"event_retention"`
	// MaxMetadataBytes caps a session's metadata: 8192.
	MaxMetadataBytes int `yaml:"max_metadata_bytes"`
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
	// JWT configures the credentials of WebSocket connections; without a
	// key, GET /v1/connect is off.
	JWT JWTConfig `yaml:"jwt"`
	// WebSocket tunes the WebSocket edge.
	WebSocket WebSocketConfig `yaml:"websocket"`
	// EndingHookURL, if set, is POSTed every session that ends, as
	// {"event":"ending","session":{...}}, before the session is recorded as
	// ended. A 2xx answer is success; anything else is logged and counted.
	EndingHookURL string `yaml:"ending_hook_url"`
	// DisposeTimeout bounds each resource disposal and the ending hook: 5s.
	DisposeTimeout Duration `yaml:"dispose_timeout"`

	file string // the config file read, if any
}

// JWTConfig is how WebSocket credentials are verified. The algorithm is
// pinned to the key: HS256 for the secret, RS256, ES256 or EdDSA for public
// keys by their type; "none" and confusions between them are refused.
type JWTConfig struct {
	Secret        string   `yaml:"secret"`          // HS256 secret, at least 32 bytes (--jwt-secret)
	PublicKeys    []string `yaml:"public_keys"`     // PEM files (--jwt-public-key, comma-separated)
	JWKSURL       string   `yaml:"jwks_url"`        // refreshed in the background; kid selects the key
	JWKSRefresh   Duration `yaml:"jwks_refresh"`    // 5m
	Issuer        string   `yaml:"issuer"`          // iss must equal it, if set
	Audience      string   `yaml:"audience"`        // aud must contain it, if set
	Leeway        Duration `yaml:"leeway"`          // clock skew allowed: 0
	SubjectClaim  string   `yaml:"subject_claim"`   // the claim naming the subject: sub
	AllowNoExpiry bool     `yaml:"allow_no_expiry"` // accept tokens without exp: false
}

// WebSocketConfig tunes the WebSocket edge; docs/protocol.md has the
// defaults' meaning.
type WebSocketConfig struct {
	MaxMessageSize int      `yaml:"max_message_size"` // 4096
	MessageRate    float64  `yaml:"message_rate"`     // 20 per second
	MessageBurst   int      `yaml:"message_burst"`    // 40
	RefreshBefore  Duration `yaml:"refresh_before"`   // 1m
}

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
}

func (pc PolicyConfig) policy(name string) sessiond.Policy {
	return sessiond.Policy{
		Name: name, TTL: time.Duration(pc.TTL), IdleTimeout: time.Duration(pc.IdleTimeout),
		TouchInterval: time.Duration(pc.TouchInterval), RotateAfter: time.Duration(pc.RotateAfter),
		RotationGrace: time.Duration(pc.RotationGrace), MaxPerSubject: pc.MaxPerSubject,
		OnLimit: sessiond.LimitAction(pc.OnLimit), BindDevice: pc.BindDevice,
		DisconnectGrace: time.Duration(pc.DisconnectGrace), HeartbeatInterval: time.Duration(pc.HeartbeatInterval),
		HeartbeatTimeout: time.Duration(pc.HeartbeatTimeout), MaxConnections: pc.MaxConnections,
		OnConnect: sessiond.ConnectAction(pc.OnConnect),
	}
}

func policyConfig(p sessiond.Policy) PolicyConfig {
	return PolicyConfig{
		TTL: Duration(p.TTL), IdleTimeout: Duration(p.IdleTimeout), TouchInterval: Duration(p.TouchInterval),
		RotateAfter: Duration(p.RotateAfter), RotationGrace: Duration(p.RotationGrace),
		MaxPerSubject: p.MaxPerSubject, OnLimit: string(p.OnLimit), BindDevice: p.BindDevice,
		DisconnectGrace: Duration(p.DisconnectGrace), HeartbeatInterval: Duration(p.HeartbeatInterval),
		HeartbeatTimeout: Duration(p.HeartbeatTimeout), MaxConnections: p.MaxConnections, OnConnect: string(p.OnConnect),
	}
}

// Duration is a time.Duration written as "90s", "1h30m" in YAML.
type Duration time.Duration

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return &durationError{line: n.Line, value: n.Value}
	}
	*d = Duration(v)
	return nil
}

// durationError is a bad duration or size; readFile names its key.
type durationError struct {
	line  int
	value string
	key   string
	want  string // what it is not: "" for a duration
}

func (e *durationError) Error() string {
	want := e.want
	if want == "" {
		want = `a duration like "90s" or "1h30m"`
	}
	return fmt.Sprintf("line %d: %s: %q is not %s", e.line, e.key, e.value, want)
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
		DisposeTimeout: Duration(sessiond.DefaultDisposeTimeout), Node: hostname(),
		MinFreeSpace: ByteSize(pebble.DefaultMinFreeBytes),
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
	{"api-key", "SESSIOND_API_KEY", "admin API key"},
	{"store", "SESSIOND_STORE", "embedded or memory"},
	{"log-format", "SESSIOND_LOG_FORMAT", "auto, text or json"},
	{"log-level", "SESSIOND_LOG_LEVEL", "debug, info, warn or error"},
	{"node", "SESSIOND_NODE", "this server's name among those sharing a store (default: host name)"},
	{"jwt-secret", "SESSIOND_JWT_SECRET", "HS256 secret for WebSocket credentials (at least 32 bytes)"},
	{"jwt-public-key", "SESSIOND_JWT_PUBLIC_KEYS", "PEM public key files for WebSocket credentials, comma-separated (RS256, ES256, EdDSA)"},
	{"jwt-jwks-url", "SESSIOND_JWT_JWKS_URL", "JWKS URL for WebSocket credentials"},
	{"jwt-issuer", "SESSIOND_JWT_ISSUER", "required iss of credentials"},
	{"jwt-audience", "SESSIOND_JWT_AUDIENCE", "required aud of credentials"},
	{"jwt-subject-claim", "SESSIOND_JWT_SUBJECT_CLAIM", "claim naming the subject (default sub)"},
	{"jwt-leeway", "SESSIOND_JWT_LEEWAY", "clock skew allowed on credentials' times, e.g. 30s"},
	{"ending-hook-url", "SESSIOND_ENDING_HOOK_URL", "URL POSTed every ending session"},
	{"min-free-space", "SESSIOND_MIN_FREE_SPACE", "free space the embedded store keeps; below it writes are refused (default 256MiB; 0: off)"},
}

func newConfigFlags(fs *flag.FlagSet) *configFlags {
	c := &configFlags{fs: fs, set: map[string]*string{}}
	for _, f := range flagEnv {
		v := new(string)
		c.set[f.flag] = v
		fs.StringVar(v, f.flag, "", fmt.Sprintf("%s (env %s)", f.help, f.env))
	}
	return c
}

// load builds the effective configuration: defaults, then the file, then
// environment, then flags.
func (c *configFlags) load(getenv func(string) string) (Config, error) {
	cfg := defaultConfig()
	given := map[string]string{}
	for _, f := range flagEnv {
		if v := getenv(f.env); v != "" {
			given[f.flag] = v
		}
	}
	c.fs.Visit(func(f *flag.Flag) {
		if _, ok := c.set[f.Name]; ok {
			given[f.Name] = f.Value.String()
		}
	})
	if path := given["config"]; path != "" {
		if err := cfg.readFile(path); err != nil {
			return cfg, err
		}
	}
	for name, v := range given {
		switch name {
		case "addr":
			cfg.Addr = v
		case "data-dir":
			cfg.DataDir = v
		case "api-key":
			cfg.APIKey = v
		case "store":
			cfg.Store = v
		case "log-format":
			cfg.LogFormat = v
		case "log-level":
			cfg.LogLevel = v
		case "node":
			cfg.Node = v
		case "jwt-secret":
			cfg.JWT.Secret = v
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
		case "jwt-leeway":
			d, err := time.ParseDuration(v)
			if err != nil {
				return cfg, fmt.Errorf("jwt-leeway: %q is not a duration like \"30s\"", v)
			}
			cfg.JWT.Leeway = Duration(d)
		case "ending-hook-url":
			cfg.EndingHookURL = v
		case "min-free-space":
			b, err := ParseByteSize(v)
			if err != nil {
				return cfg, fmt.Errorf("min-free-space: %w", err)
			}
			cfg.MinFreeSpace = b
		}
	}
	return cfg, cfg.validate()
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
	switch cfg.Store {
	case "embedded", "memory":
	default:
		return fmt.Errorf("store: must be \"embedded\" or \"memory\" (got %q)", cfg.Store)
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
	if cfg.MinFreeSpace < 0 {
		return fmt.Errorf("min_free_space: must not be negative (got %d)", cfg.MinFreeSpace)
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
	return nil
}

// policies returns the configured policies, checked, and the default's name.
func (cfg *Config) policies() ([]sessiond.Policy, string, error) {
	if len(cfg.Policies) == 0 {
		if cfg.DefaultPolicy != "" && cfg.DefaultPolicy != "default" {
			return nil, "", fmt.Errorf("default_policy: names %q, but no policies are configured", cfg.DefaultPolicy)
		}
		builtin := []sessiond.Policy{sessiond.DefaultPolicy(), sessiond.DevicePolicy()}
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
		p := cfg.Policies[name].policy(name)
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
	var buf bytes.Buffer
	if cfg.file != "" {
		fmt.Fprintf(&buf, "# read from %s, the environment and flags\n", cfg.file)
	}
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(out); err != nil { //nolint:gosec // G117: the key was replaced by a note above
		return nil, err
	}
	return buf.Bytes(), nil
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
