package redis

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Topology is the shape of the Redis deployment that Options name.
type Topology uint8

const (
	// Standalone is one Redis server.
	Standalone Topology = iota
	// Sentinel is a master found through Redis Sentinel: the addresses are
	// the sentinels', and the client follows the master they report.
	Sentinel
	// Cluster is a Redis Cluster: the addresses are some of its nodes, from
	// which the client learns the others and the slots each one serves.
	Cluster
)

// String returns the topology's name: standalone, sentinel or cluster.
func (t Topology) String() string {
	switch t {
	case Standalone:
		return "standalone"
	case Sentinel:
		return "sentinel"
	case Cluster:
		return "cluster"
	}
	return "Topology(" + strconv.Itoa(int(t)) + ")"
}

// Defaults that Options' zero values stand for.
const (
	DefaultPort         = 6379
	DefaultSentinelPort = 26379
	DefaultDialTimeout  = 5 * time.Second
	DefaultIOTimeout    = 5 * time.Second

	// MaxTimeout bounds DialTimeout and IOTimeout: a longer one is a
	// mistake (a unit left out), not a wish.
	MaxTimeout = time.Hour
)

// Options say how to reach one Redis deployment. ParseURL makes them from
// a URL (the forms are in the package documentation); Dial connects with
// them. Each field's zero value is documented; Validate checks them.
type Options struct {
	// Topology is the deployment's shape. Zero: Standalone.
	Topology Topology

	// Addrs are host:port addresses: the server's (Standalone, exactly
	// one), the sentinels' (Sentinel) or some of the cluster's nodes
	// (Cluster). At least one is needed.
	Addrs []string

	// Username and Password authenticate to the Redis servers that hold
	// the data (AUTH). A Password without a Username authenticates as the
	// default user. Empty: no AUTH.
	Username string
	Password string

	// DB is the database number (SELECT). Zero: 0. A cluster has only 0.
	DB int

	// MasterName is the name of the master set the sentinels monitor.
	// Required for Sentinel, empty otherwise.
	MasterName string

	// SentinelUsername and SentinelPassword authenticate to the sentinels
	// (Sentinel only). They are separate from Username and Password:
	// empty means the sentinels are reached without AUTH, whatever the
	// master's password.
	SentinelUsername string
	SentinelPassword string

	// TLS turns TLS on for every connection: to the servers and, for
	// Sentinel, to the sentinels. Off: plain TCP.
	TLS bool
	// TLSCAFile is a PEM file of the certificate authorities that the
	// servers' certificates must chain to. Empty: the system's roots.
	TLSCAFile string
	// TLSCertFile and TLSKeyFile are the client's certificate and key (PEM),
	// for servers that require client certificates (Redis's default with
	// tls-auth-clients yes). Both or neither.
	TLSCertFile string
	TLSKeyFile  string
	// TLSServerName is the name the servers' certificates must be valid
	// for. Empty: each address's host.
	TLSServerName string
	// TLSInsecureSkipVerify accepts any server certificate. For tests
	// only: it leaves the connection open to an attacker in the middle.
	TLSInsecureSkipVerify bool

	// DialTimeout bounds the opening of one connection (TCP, TLS, HELLO
	// and AUTH). Zero: DefaultDialTimeout.
	DialTimeout time.Duration
	// IOTimeout is how long a connection may wait for a reply to what it
	// sent (or for a write to go out) before it is closed as dead and its
	// calls fail; an idle connection is checked by a PING at that pace.
	// Per-call deadlines come from the caller's context. Zero:
	// DefaultIOTimeout.
	IOTimeout time.Duration

	// ClientName is set on every connection (CLIENT SETNAME), to tell
	// sessiond's connections apart in CLIENT LIST. Empty: none.
	ClientName string
}

// The URL schemes, one per topology, each with a TLS variant.
const (
	schemeRedis         = "redis"
	schemeRediss        = "rediss"
	schemeSentinel      = "redis+sentinel"
	schemeSentinelTLS   = "rediss+sentinel"
	schemeCluster       = "redis+cluster"
	schemeClusterTLS    = "rediss+cluster"
	schemesForErrorText = "redis, rediss, redis+sentinel, rediss+sentinel, redis+cluster or rediss+cluster"
)

// The query parameters ParseURL knows. Any other is an error, so that a
// misspelt one does not go unnoticed.
const (
	paramMaster           = "master"
	paramSentinelUsername = "sentinel_username"
	paramSentinelPassword = "sentinel_password"
	paramDialTimeout      = "dial_timeout"
	paramIOTimeout        = "io_timeout"
	paramClientName       = "client_name"
	paramTLSCA            = "tls_ca"
	paramTLSCert          = "tls_cert"
	paramTLSKey           = "tls_key"
	paramTLSServerName    = "tls_server_name"
	paramTLSInsecure      = "tls_insecure_skip_verify"
)

// ErrInvalidURL is matched (errors.Is) by every error of ParseURL.
var ErrInvalidURL = errors.New("invalid Redis URL")

// urlError is an error of ParseURL. Its text never includes the URL
// itself, which may hold passwords.
type urlError struct{ msg string }

func (e *urlError) Error() string        { return "redis: invalid URL: " + e.msg }
func (e *urlError) Is(target error) bool { return target == ErrInvalidURL }

func invalid(format string, args ...any) error {
	return &urlError{msg: fmt.Sprintf(format, args...)}
}

// ParseURL turns a URL of one of the forms in the package documentation
// into Options, and checks them (Validate). Its errors match ErrInvalidURL
// and never quote the URL's user information.
func ParseURL(rawURL string) (Options, error) {
	var o Options
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return Options{}, invalid("no scheme: the URL must start with one of %s, then ://", schemesForErrorText)
	}
	switch strings.ToLower(scheme) {
	case schemeRedis:
	case schemeRediss:
		o.TLS = true
	case schemeSentinel:
		o.Topology = Sentinel
	case schemeSentinelTLS:
		o.Topology, o.TLS = Sentinel, true
	case schemeCluster:
		o.Topology = Cluster
	case schemeClusterTLS:
		o.Topology, o.TLS = Cluster, true
	default:
		return Options{}, invalid("unknown scheme %q: use %s", scheme, schemesForErrorText)
	}
	// The user information ends at the last @ before the query, so that a
	// password may hold / and @ as they are; ? and # in it must be
	// percent-encoded (%3F, %23). Errors below quote host names and
	// database numbers, never what could be a password.
	if strings.Contains(rest, "#") {
		return Options{}, invalid("a fragment (#) has no meaning here; a # in a password is written %%23")
	}
	rest, rawQuery, _ := strings.Cut(rest, "?")
	if !strings.Contains(rest, "@") && strings.Contains(rawQuery, "@") {
		return Options{}, invalid("an @ after the ?: a ? in a password is written %%3F, an @ in a query value %%40")
	}
	hostsAndPath := rest
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		var err error
		if o.Username, o.Password, err = parseUserinfo(rest[:i]); err != nil {
			return Options{}, err
		}
		hostsAndPath = rest[i+1:]
	}
	hosts, path := hostsAndPath, ""
	if i := strings.IndexByte(hostsAndPath, '/'); i >= 0 {
		hosts, path = hostsAndPath[:i], hostsAndPath[i:]
	}

	defaultPort := DefaultPort
	if o.Topology == Sentinel {
		defaultPort = DefaultSentinelPort
	}
	if hosts == "" {
		return Options{}, invalid("no host: write host:port after ://")
	}
	for h := range strings.SplitSeq(hosts, ",") {
		addr, err := parseHostPort(h, defaultPort)
		if err != nil {
			return Options{}, err
		}
		o.Addrs = append(o.Addrs, addr)
	}

	switch db, found := strings.CutPrefix(path, "/"); {
	case !found || db == "":
	default:
		n, err := parseDB(db)
		if err != nil {
			return Options{}, err
		}
		o.DB = n
	}

	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return Options{}, invalid("query: %v", err)
	}
	for _, name := range slices.Sorted(maps.Keys(q)) { // the same error for the same URL
		values := q[name]
		if len(values) > 1 {
			return Options{}, invalid("query parameter %s is given %d times", name, len(values))
		}
		if err := o.setParam(name, values[0]); err != nil {
			return Options{}, err
		}
	}
	if err := o.Validate(); err != nil {
		return Options{}, &urlError{msg: strings.TrimPrefix(err.Error(), "redis: ")}
	}
	return o, nil
}

// setParam applies one query parameter.
func (o *Options) setParam(name, value string) error {
	var err error
	switch name {
	case paramMaster:
		o.MasterName = value
	case paramSentinelUsername:
		o.SentinelUsername = value
	case paramSentinelPassword:
		o.SentinelPassword = value
	case paramDialTimeout:
		o.DialTimeout, err = parseTimeout(name, value)
	case paramIOTimeout:
		o.IOTimeout, err = parseTimeout(name, value)
	case paramClientName:
		o.ClientName = value
	case paramTLSCA:
		o.TLSCAFile = value
	case paramTLSCert:
		o.TLSCertFile = value
	case paramTLSKey:
		o.TLSKeyFile = value
	case paramTLSServerName:
		o.TLSServerName = value
	case paramTLSInsecure:
		o.TLSInsecureSkipVerify, err = strconv.ParseBool(value)
		if err != nil {
			err = invalid("%s=%q: want true or false", name, value)
		}
	default:
		return invalid("unknown query parameter %q (known: %s)", name, strings.Join(knownParams, ", "))
	}
	return err
}

var knownParams = []string{
	paramMaster, paramSentinelUsername, paramSentinelPassword,
	paramDialTimeout, paramIOTimeout, paramClientName,
	paramTLSCA, paramTLSCert, paramTLSKey, paramTLSServerName, paramTLSInsecure,
}

// parseUserinfo decodes user[:password], percent-encoded.
func parseUserinfo(s string) (user, password string, err error) {
	rawUser, rawPass, _ := strings.Cut(s, ":")
	if user, err = url.PathUnescape(rawUser); err != nil {
		return "", "", invalid("the user name is not properly percent-encoded")
	}
	if password, err = url.PathUnescape(rawPass); err != nil {
		return "", "", invalid("the password is not properly percent-encoded")
	}
	return user, password, nil
}

// parseHostPort checks one host[:port] (an IPv6 address in brackets) and
// returns it as host:port.
func parseHostPort(s string, defaultPort int) (string, error) {
	if s == "" {
		return "", invalid("an empty host in the list of hosts")
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", invalid("host %q: no ] closes the IPv6 address", s)
		}
		host = s[1:end]
		switch after := s[end+1:]; {
		case after == "":
		case strings.HasPrefix(after, ":"):
			port = after[1:]
			if port == "" {
				return "", invalid("host %q: an empty port after the colon", s)
			}
		default:
			return "", invalid("host %q: unexpected %q after the IPv6 address", s, after)
		}
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
			return "", invalid("host %q: %q is not an IPv6 address", s, host)
		}
	} else {
		if h, p, ok := strings.Cut(s, ":"); ok {
			host, port = h, p
			if port == "" {
				return "", invalid("host %q: an empty port after the colon", s)
			}
		}
		if host == "" {
			return "", invalid("host %q: no host name before the port", s)
		}
		for _, c := range host {
			if !hostChar(c) {
				return "", invalid("host %q: %q is not allowed in a host name (an IPv6 address goes in brackets)", s, c)
			}
		}
	}
	p := defaultPort
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > math.MaxUint16 || port[0] == '+' || port[0] == '-' {
			return "", invalid("host %q: its port is not a number from 1 to 65535", host)
		}
		p = n
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}

// hostChar tells whether c may stand in a host name.
func hostChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
}

func parseDB(s string) (int, error) {
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, invalid("database %q is not a number (the path is /DB, e.g. /0)", s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > math.MaxInt32 {
		return 0, invalid("database %q is out of range", s)
	}
	return n, nil
}

func parseTimeout(name, value string) (time.Duration, error) {
	d, err := time.ParseDuration(value)
	if err != nil {
		return 0, invalid("%s=%q: want a duration with its unit, like 500ms or 5s", name, value)
	}
	if d <= 0 || d > MaxTimeout {
		return 0, invalid("%s=%q: want more than 0 and at most %v", name, value, MaxTimeout)
	}
	return d, nil
}

// Validate checks the options for contradictions: what each topology
// needs, TLS settings without TLS, timeouts out of range. Its errors name
// the field (or the URL part) at fault and never include a password.
func (o Options) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("redis: "+format, args...)
	}
	if len(o.Addrs) == 0 {
		return bad("no address")
	}
	for _, a := range o.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return bad("address %q: want host:port", a)
		}
	}
	if o.DB < 0 || o.DB > math.MaxInt32 {
		return bad("database %d is out of range", o.DB)
	}
	switch o.Topology {
	case Standalone:
		if len(o.Addrs) > 1 {
			return bad("%d hosts for a standalone server: use redis+sentinel:// for sentinels or redis+cluster:// for a cluster", len(o.Addrs))
		}
	case Sentinel:
		if o.MasterName == "" {
			return bad("no master name: sentinel URLs need ?master=NAME, the master set the sentinels monitor")
		}
	case Cluster:
		if o.DB != 0 {
			return bad("database %d on a cluster: Redis Cluster has only database 0", o.DB)
		}
	default:
		return bad("unknown topology %v", o.Topology)
	}
	if o.Topology != Sentinel {
		switch {
		case o.MasterName != "":
			return bad("a master name (master) is for sentinel URLs only")
		case o.SentinelUsername != "" || o.SentinelPassword != "":
			return bad("sentinel credentials (sentinel_username, sentinel_password) are for sentinel URLs only")
		}
	}
	if !o.TLS && (o.TLSCAFile != "" || o.TLSCertFile != "" || o.TLSKeyFile != "" || o.TLSServerName != "" || o.TLSInsecureSkipVerify) {
		return bad("TLS settings (tls_*) without TLS: use a rediss scheme")
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		return bad("a client certificate needs both tls_cert and tls_key")
	}
	for _, c := range o.ClientName {
		if c <= ' ' || c > '~' {
			return bad("client name %q: Redis allows no spaces or special characters in it", o.ClientName)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{paramDialTimeout, o.DialTimeout}, {paramIOTimeout, o.IOTimeout}} {
		if d.v < 0 || d.v > MaxTimeout {
			return bad("%s %v: want more than 0 and at most %v", d.name, d.v, MaxTimeout)
		}
	}
	return nil
}

// String returns the options as a URL that ParseURL reads back to the same
// options, without their passwords (Password and SentinelPassword are left
// out): safe to log.
func (o Options) String() string {
	var b strings.Builder
	scheme := map[Topology]string{Standalone: schemeRedis, Sentinel: schemeSentinel, Cluster: schemeCluster}[o.Topology]
	if scheme == "" {
		scheme = "redis+" + o.Topology.String()
	}
	if o.TLS {
		scheme = strings.Replace(scheme, "redis", "rediss", 1)
	}
	b.WriteString(scheme)
	b.WriteString("://")
	if o.Username != "" {
		b.WriteString(escapeUserinfo(o.Username))
		b.WriteByte('@')
	}
	b.WriteString(strings.Join(o.Addrs, ","))
	if o.DB != 0 {
		b.WriteByte('/')
		b.WriteString(strconv.Itoa(o.DB))
	}
	q := url.Values{}
	set := func(name, value string) {
		if value != "" {
			q.Set(name, value)
		}
	}
	set(paramMaster, o.MasterName)
	set(paramSentinelUsername, o.SentinelUsername)
	if o.DialTimeout != 0 {
		set(paramDialTimeout, o.DialTimeout.String())
	}
	if o.IOTimeout != 0 {
		set(paramIOTimeout, o.IOTimeout.String())
	}
	set(paramClientName, o.ClientName)
	set(paramTLSCA, o.TLSCAFile)
	set(paramTLSCert, o.TLSCertFile)
	set(paramTLSKey, o.TLSKeyFile)
	set(paramTLSServerName, o.TLSServerName)
	if o.TLSInsecureSkipVerify {
		set(paramTLSInsecure, "true")
	}
	if len(q) > 0 {
		b.WriteByte('?')
		b.WriteString(q.Encode()) // sorted by name
	}
	return b.String()
}

// withDefaults returns o with its zero timeouts replaced by the defaults.
func (o Options) withDefaults() Options {
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.IOTimeout == 0 {
		o.IOTimeout = DefaultIOTimeout
	}
	o.Addrs = slices.Clone(o.Addrs)
	return o
}

// escapeUserinfo percent-encodes everything in s but RFC 3986's unreserved
// characters, so that no : or @ in it can end it early.
func escapeUserinfo(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := range len(s) {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
