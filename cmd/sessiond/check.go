package main

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"

	"github.com/sessiond/sessiond/postgres"
)

// minAPIKeyLen is the least length of a configured API key: 256 bits if
// random.
const minAPIKeyLen = 32

// check makes the checks serve makes before it opens anything, so that
// `sessiond config` fails as serve would: plain HTTP only on loopback unless
// insecure_http, the API key's length, the JWT material, the TLS files,
// the history's URL. (load has checked the rest: validate.)
func (cfg *Config) check() error {
	if !cfg.TLS.on() && !cfg.InsecureHTTP && !isLoopback(cfg.Addr) {
		return fmt.Errorf("addr: refusing plain HTTP on %s, which is not a loopback address: "+
			"configure TLS (--tls-cert and --tls-key), or, if a TLS-terminating proxy sits in front, "+
			"say so with --insecure-http (SESSIOND_INSECURE_HTTP=true, insecure_http: true)", cfg.Addr)
	}
	if cfg.DebugAddr != "" && !isLoopback(cfg.DebugAddr) {
		return fmt.Errorf("debug_addr: the profiler is served on loopback only (got %s)", cfg.DebugAddr)
	}
	if n := len(cfg.APIKey); n > 0 && n < minAPIKeyLen {
		return fmt.Errorf("api_key: is %d bytes; at least %d are needed (e.g. openssl rand -base64 32)", n, minAPIKeyLen)
	}
	if err := checkJWT(cfg.JWT); err != nil {
		return err
	}
	if budget := socketBudget(); cfg.WebSocket.MaxSockets > budget {
		return fmt.Errorf("websocket.max_sockets: %d leaves too few file descriptors for REST, health checks and the store (open files limit %d): at most %d, or raise the limit (ulimit -n, LimitNOFILE=)",
			cfg.WebSocket.MaxSockets, openFilesLimit(), budget)
	}
	if cfg.TLS.on() {
		if _, err := loadKeyPair(cfg.TLS.Cert, cfg.TLS.Key); err != nil {
			return err
		}
	}
	if cfg.History != "" {
		// Parsed, not connected to: the server starts without PostgreSQL,
		// but a URL that cannot parse would never connect.
		if err := postgres.CheckDSN(cfg.History); err != nil {
			return fmt.Errorf("history: %w", err)
		}
	}
	return nil
}

// isLoopback reports whether a listen address is on loopback only:
// 127.0.0.0/8, ::1 or localhost. An empty host means every interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// openFilesLimit is the process's limit on open files (Go raises the soft
// limit to the hard one at start).
func openFilesLimit() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return 1 << 20
	}
	return int(lim.Cur)
}

// socketBudget is how many sockets the WebSocket edge may hold: the
// default of websocket.max_sockets, and its most.
func socketBudget() int { return socketsWithin(openFilesLimit()) }

// socketsWithin is the sockets an open files limit of n leaves the
// WebSocket edge: n less the larger of 256 and a tenth of n, kept for REST,
// health checks, the store's files and the log; at least 1.
func socketsWithin(n int) int { return max(1, n-max(256, n/10)) }
