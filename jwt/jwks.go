package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// maxJWKSSize bounds the JWKS document read from the network.
const maxJWKSSize = 1 << 20

// jwk is the subset of RFC 7517/7518/8037 fields this package reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS parses a JWK Set. Keys that cannot verify signatures here
// (encryption keys, other key types or curves, an "alg" other than the one
// their type maps to, bad key material) are skipped and reported in skipped,
// so that one odd key does not hide the others. Only a document that is not a
// JWK Set at all is an error.
func parseJWKS(data []byte) (keys []key, skipped []error, err error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	if doc.Keys == nil {
		return nil, nil, errors.New(`not a JWK Set: no "keys" member`)
	}
	for i, raw := range doc.Keys {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			skipped = append(skipped, fmt.Errorf("key %d: %w", i, err))
			continue
		}
		k, err := j.key()
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d (kid %q): %w", i, j.Kid, err))
			continue
		}
		keys = append(keys, k)
	}
	return keys, skipped, nil
}

// key converts a JWK to a verification key.
func (j jwk) key() (key, error) {
	if j.Use != "" && j.Use != "sig" {
		return key{}, fmt.Errorf("use is %q, not sig", j.Use)
	}
	var pub any
	switch {
	case j.Kty == "RSA":
		n, err := b64(j.N)
		if err != nil || len(n) == 0 {
			return key{}, errors.New("bad RSA modulus n")
		}
		e, err := b64(j.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return key{}, errors.New("bad RSA exponent e")
		}
		ev := new(big.Int).SetBytes(e).Int64()
		if ev < 3 || ev%2 == 0 {
			return key{}, errors.New("bad RSA exponent e")
		}
		pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ev)}
	case j.Kty == "EC" && j.Crv == "P-256":
		x, errX := b64(j.X)
		y, errY := b64(j.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return key{}, errors.New("bad P-256 coordinates")
		}
		pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return key{}, err
		}
		pub = pk
	case j.Kty == "OKP" && j.Crv == "Ed25519":
		x, err := b64(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return key{}, errors.New("bad Ed25519 key x")
		}
		pub = ed25519.PublicKey(x)
	case j.Kty == "EC" || j.Kty == "OKP":
		return key{}, fmt.Errorf("unsupported curve %q", j.Crv)
	default:
		return key{}, fmt.Errorf("unsupported key type %q", j.Kty)
	}
	k, pk, err := publicKey(pub)
	if err != nil {
		return key{}, err
	}
	if j.Alg != "" && j.Alg != k.alg() {
		return key{}, fmt.Errorf("alg %q is not supported for this key type (want %s)", j.Alg, k.alg())
	}
	return key{kind: k, kid: j.Kid, key: pk}, nil
}

func b64(s string) ([]byte, error) { return base64.RawURLEncoding.Strict().DecodeString(s) }

// jwks holds the keys of one JWKS URL and refreshes them: periodically, and
// on demand when a token names an unknown kid (at most once per minInterval).
// One goroutine, run, does every fetch after the first; Close stops it and
// waits for it.
type jwks struct {
	url         string
	client      *http.Client
	ownClient   bool // client was made by New: close its idle connections on close
	log         *slog.Logger
	now         func() time.Time
	every       time.Duration // periodic refresh
	minInterval time.Duration // between unknown-kid refreshes

	keys atomic.Pointer[[]key]

	ctx    context.Context // cancelled by close; bounds every fetch
	cancel context.CancelFunc
	wake   chan struct{} // buffered(1): an unknown-kid refresh is requested
	wg     sync.WaitGroup

	mu          sync.Mutex
	closed      bool
	lastTrigger time.Time     // when an unknown kid last caused a fetch
	pending     chan struct{} // closed when the requested fetch is done; nil if none is requested
}

// get returns the current keys. The slice is never modified after it is
// published.
func (s *jwks) get() []key {
	if p := s.keys.Load(); p != nil {
		return *p
	}
	return nil
}

// fetch downloads, parses and publishes the key set. On any error the keys
// in use are kept.
func (s *jwks) fetch(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("GET %s: status %s", s.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return fmt.Errorf("GET %s: reading body: %w", s.url, err)
	}
	if len(body) > maxJWKSSize {
		return fmt.Errorf("GET %s: JWK Set is larger than %d bytes", s.url, maxJWKSSize)
	}
	keys, skipped, err := parseJWKS(body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", s.url, err)
	}
	for _, e := range skipped {
		s.log.Debug("jwt: JWKS key skipped", "url", s.url, "reason", e.Error())
	}
	if len(keys) == 0 {
		s.log.Warn("jwt: JWKS has no usable signing key", "url", s.url, "skipped", len(skipped))
	}
	s.keys.Store(&keys)
	return nil
}

// start launches the refresher goroutine.
func (s *jwks) start() {
	s.wg.Go(s.run)
}

func (s *jwks) run() {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if err := s.fetch(s.ctx); err != nil && s.ctx.Err() == nil {
				s.log.Warn("jwt: JWKS refresh failed; keeping the keys in use", "url", s.url, "err", err)
			}
		case <-s.wake:
			if err := s.fetch(s.ctx); err != nil && s.ctx.Err() == nil {
				s.log.Warn("jwt: JWKS refresh for an unknown kid failed; keeping the keys in use", "url", s.url, "err", err)
			}
			s.mu.Lock()
			done := s.pending
			s.pending = nil
			s.mu.Unlock()
			if done != nil {
				close(done)
			}
		}
	}
}

// refreshUnknown asks for a fetch because a token named a kid not in the
// set, and waits until that fetch is done or ctx ends. Callers that arrive
// while a requested fetch is pending wait for the same fetch. A new fetch is
// requested at most once per minInterval (by the injected clock); within the
// window refreshUnknown returns at once and the caller uses the keys it has.
func (s *jwks) refreshUnknown(ctx context.Context) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.pending == nil {
		now := s.now()
		if !s.lastTrigger.IsZero() && now.Sub(s.lastTrigger) < s.minInterval {
			s.mu.Unlock()
			return
		}
		s.lastTrigger = now
		s.pending = make(chan struct{})
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	done := s.pending
	s.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
	case <-s.ctx.Done():
	}
}

// close stops the refresher and waits for it. It is idempotent.
func (s *jwks) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	if s.ownClient {
		s.client.CloseIdleConnections()
	}
}
