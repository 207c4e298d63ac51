package jwt

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// maxJWKSRedirects is the most redirects followed when fetching a JWK Set.
const maxJWKSRedirects = 5

// checkJWKSURL accepts an https URL, or an http URL whose host is loopback
// (see isLoopback): the keys that decide who may connect must not travel
// where a network attacker could replace them.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return errors.New("must be an https URL, e.g. https://idp.example.com/.well-known/jwks.json")
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("must be https: http is allowed only on loopback (localhost, 127.0.0.0/8, ::1), and %q is not", u.Hostname())
	}
	return nil
}

// isLoopback reports whether host (without port or brackets) is
// "localhost" or a loopback IP address (127.0.0.0/8, ::1, also written as an
// IPv4-mapped IPv6 address or with a zone). Other names are not resolved:
// what a name resolves to can change.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// checkJWKSRedirect returns the redirect policy of the JWKS client: a
// redirect must stay on the host of the original URL (any port) and must
// not go from https to http; at most maxJWKSRedirects are followed. Then
// next, the client's own policy if it had one, has its say.
func checkJWKSRedirect(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) > maxJWKSRedirects {
			return fmt.Errorf("stopped after %d redirects", maxJWKSRedirects)
		}
		from := via[0].URL
		if !strings.EqualFold(req.URL.Hostname(), from.Hostname()) {
			return fmt.Errorf("redirect from %s to another host (%s) refused", from.Hostname(), req.URL.Hostname())
		}
		if req.URL.Scheme != "https" && slices.ContainsFunc(via, func(r *http.Request) bool { return r.URL.Scheme == "https" }) {
			return fmt.Errorf("redirect from https to %s refused", req.URL.Scheme)
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
}
