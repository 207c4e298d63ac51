package main

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// minAPIKeyLen is the least length of a configured API key: 256 bits if
// random.
const minAPIKeyLen = 32

// check makes the checks serve makes before it opens anything, so that
// `sessiond config` fails as serve would: plain HTTP only on loopback unless
// insecure_http, the API key's length, the JWT material, the TLS files.
func (cfg *Config) check() error {
	if !cfg.TLS.on() && !cfg.InsecureHTTP && !isLoopback(cfg.Addr) {
		return fmt.Errorf("addr: refusing plain HTTP on %s, which is not a loopback address: "+
			"configure TLS (--tls-cert and --tls-key), or, if a TLS-terminating proxy sits in front, "+
			"say so with --insecure-http (SESSIOND_INSECURE_HTTP=true, insecure_http: true)", cfg.Addr)
	}
	if n := len(cfg.APIKey); n > 0 && n < minAPIKeyLen {
		return fmt.Errorf("api_key: is %d bytes; at least %d are needed (e.g. openssl rand -base64 32)", n, minAPIKeyLen)
	}
	if err := checkJWT(cfg.JWT); err != nil {
		return err
	}
	if cfg.TLS.on() {
		if _, err := loadKeyPair(cfg.TLS.Cert, cfg.TLS.Key); err != nil {
			return err
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
