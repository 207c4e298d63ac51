// Package realip tells the address of the client behind a request: the
// peer's address, or, when the peer is a trusted proxy, the right-most
// address in X-Forwarded-For that is not a trusted proxy itself.
//
// Reading X-Forwarded-For from the right is what makes it safe: every
// trusted proxy appends the address it received the request from, so the
// entries to the right of the first untrusted one were written by proxies
// we trust, and everything to its left may have been made up by the client.
package realip

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver finds client addresses. The zero value trusts no proxy: it
// answers the peer's address and ignores X-Forwarded-For.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver that trusts X-Forwarded-For from peers in trusted.
func New(trusted []netip.Prefix) *Resolver {
	return &Resolver{trusted: trusted}
}

// ParsePrefixes parses CIDRs such as "10.0.0.0/8" or "fd00::/8"; a bare
// address ("192.0.2.7") is a prefix of that one address.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR like 10.0.0.0/8 or an IP address", s)
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR like 10.0.0.0/8 or an IP address", s)
		}
		if p.Addr().Is4In6() {
			// ::ffff:10.0.0.0/104 means 10.0.0.0/8: peers are compared unmapped.
			if p.Bits() < 96 {
				return nil, fmt.Errorf("%q mixes IPv4-mapped and IPv6 addresses; write the IPv4 CIDR", s)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// ClientIP returns the address of the client that sent r, as text; "" if
// r.RemoteAddr is not an address (as with some in-memory transports).
func (rs *Resolver) ClientIP(r *http.Request) string {
	peer, ok := parseHost(r.RemoteAddr)
	if !ok {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return ""
		}
		return host
	}
	if rs == nil || !rs.isTrusted(peer) {
		return peer.String()
	}
	// The peer is a proxy we trust: walk X-Forwarded-For from the right
	// (several header lines are one list, in order).
	hops := r.Header.Values("X-Forwarded-For")
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		entries := strings.Split(hops[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			a, ok := parseHop(entries[j])
			if !ok {
				// A trusted proxy wrote something that is not an
				// address: the last address we can vouch for is the
				// one that handed it to us.
				return client.String()
			}
			client = a
			if !rs.isTrusted(a) {
				return a.String()
			}
		}
	}
	// Every hop is a trusted proxy: the farthest one is the client.
	return client.String()
}

func (rs *Resolver) isTrusted(a netip.Addr) bool {
	for _, p := range rs.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHost parses the address of a "host:port" RemoteAddr.
func parseHost(hostport string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// parseHop parses one X-Forwarded-For entry: an address, possibly with a
// port ("192.0.2.1:443", "[2001:db8::1]:443"), as some proxies write them.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// LimitKey is the key under which a per-address limit counts the client
// at ip (ClientIP's result): the address itself for IPv4 (and IPv4 mapped
// into IPv6), the /64 network for IPv6, since one subscriber is handed a
// whole /64 and can use any address in it; "" for what is not an address,
// which no per-address limit should count (all such clients would share
// one key and refuse each other).
func LimitKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}
