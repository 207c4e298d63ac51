package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"
)

// certCheckInterval is how often, at most, a handshake looks at the
// certificate files for a change.
const certCheckInterval = 5 * time.Second

// loadKeyPair reads and checks a certificate and its key: both readable,
// PEM, and the key matching the certificate.
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &c, nil
}

// certReloader serves the certificate from its files. A handshake checks
// the files' identity, size and modification time at most once per
// certCheckInterval and reloads them if they changed; reload (on SIGHUP)
// reloads them at once. A reload that fails keeps the certificate in use
// and logs why.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu         sync.Mutex
	now        func() time.Time // under mu, so that a test may swap it
	cert       *tls.Certificate
	stamps     [2]os.FileInfo // of certFile and keyFile when last loaded or tried
	lastLooked time.Time
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log, now: time.Now}
	r.stamps = r.stat()
	cert, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	r.cert = cert
	r.lastLooked = r.now()
	return r, nil
}

// tlsConfig is the server's TLS configuration: TLS 1.2 at least, the
// certificate from r.
func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
}

// GetCertificate implements tls.Config.GetCertificate.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.lastLooked) >= certCheckInterval || now.Before(r.lastLooked) {
		r.lastLooked = now
		if stamps := r.stat(); !sameStamps(stamps, r.stamps) {
			r.stamps = stamps
			_ = r.load("the files changed")
		}
	}
	return r.cert, nil
}

// reload loads the files now, whether or not they look changed.
func (r *certReloader) reload(why string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stamps = r.stat()
	return r.load(why)
}

// load replaces the certificate if the files hold a good one. r.mu is held.
func (r *certReloader) load(why string) error {
	cert, err := loadKeyPair(r.certFile, r.keyFile)
	if err != nil {
		r.log.Error("TLS certificate reload failed; keeping the certificate in use", "why", why, "err", err)
		return err
	}
	r.cert = cert
	attrs := []any{"why", why, "cert", r.certFile}
	if cert.Leaf != nil {
		attrs = append(attrs, "subject", cert.Leaf.Subject.String(), "not_after", cert.Leaf.NotAfter.UTC())
	}
	r.log.Info("TLS certificate loaded", attrs...)
	return nil
}

func (r *certReloader) stat() [2]os.FileInfo {
	var out [2]os.FileInfo
	for i, path := range []string{r.certFile, r.keyFile} {
		out[i], _ = os.Stat(path) // a missing file is a change, and fails the load
	}
	return out
}

func sameStamps(a, b [2]os.FileInfo) bool {
	for i := range a {
		switch {
		case a[i] == nil || b[i] == nil:
			if a[i] != b[i] {
				return false
			}
		case !os.SameFile(a[i], b[i]) || !a[i].ModTime().Equal(b[i].ModTime()) || a[i].Size() != b[i].Size():
			return false
		}
	}
	return true
}

// clientTLS is how the admin commands reach a server configured with
// TLS: the system's roots, and the configured certificate trusted too, so
// that a self-signed one works from the server's host.
func (cfg *Config) clientTLS() (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(cfg.TLS.Cert) //nolint:gosec // G304: the operator names the certificate
	if err != nil {
		return nil, fmt.Errorf("tls.cert: reading it to trust the server: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls.cert: %s holds no PEM certificate", cfg.TLS.Cert)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}, nil
}
