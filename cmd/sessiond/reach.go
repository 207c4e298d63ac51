package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
)

// unreachableError is a server the admin commands cannot talk to, said in
// words: none listens, or it speaks HTTPS to a client of plain HTTP or
// the other way round.
type unreachableError struct {
	msg   string
	cause error // what the transport said, when it says more
}

func (e *unreachableError) Error() string {
	if e.cause != nil {
		return e.msg + " (" + e.cause.Error() + ")"
	}
	return e.msg
}

func (e *unreachableError) Unwrap() error { return e.cause }

// reason is the unreachableError within err, if any, else err: what a
// person wants to read of a failed request.
func reason(err error) error {
	var u *unreachableError
	if errors.As(err, &u) {
		return u
	}
	return err
}

// reachTransport turns the failures to reach a sessiond server into
// unreachableErrors.
type reachTransport struct {
	next http.RoundTripper
	base string // the server's URL as configured: http://127.0.0.1:7600
}

// httpToHTTPS is what a Go HTTPS server answers a request in plain HTTP.
const httpToHTTPS = "Client sent an HTTP request to an HTTPS server."

func (t reachTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, t.explain(err)
	}
	if resp.StatusCode == http.StatusBadRequest && req.URL.Scheme == "http" {
		// Read enough of the body to tell, and put it back.
		head := make([]byte, len(httpToHTTPS))
		n, _ := io.ReadFull(resp.Body, head)
		if bytes.Equal(head[:n], []byte(httpToHTTPS)) {
			_ = resp.Body.Close()
			return nil, &unreachableError{msg: fmt.Sprintf("the server at %s speaks HTTPS, not plain HTTP: "+
				"give the admin commands its certificate (--tls-cert and --tls-key, SESSIOND_TLS_CERT and SESSIOND_TLS_KEY) "+
				"or an https:// address (--addr, SESSIOND_ADDR)", t.host())}
		}
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(head[:n]), resp.Body), resp.Body}
	}
	return resp, nil
}

// explain says why a request did not reach the server, where it can.
func (t reachTransport) explain(err error) error {
	var op *net.OpError
	var rec tls.RecordHeaderError
	switch {
	case errors.As(err, &op) && op.Op == "dial":
		u := &unreachableError{msg: fmt.Sprintf("no sessiond server answers at %s: is it running? (--addr, SESSIOND_ADDR)", t.base)}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			u.cause = err // no such host, a timeout: worth knowing
		}
		return u
	case errors.As(err, &rec):
		return &unreachableError{msg: fmt.Sprintf("the server at %s speaks plain HTTP, not HTTPS: "+
			"it is not configured with TLS, so leave --tls-cert and --tls-key (SESSIOND_TLS_CERT, SESSIOND_TLS_KEY) out, "+
			"or give an http:// address (--addr, SESSIOND_ADDR)", t.host())}
	}
	return err
}

// host is the server's address without the scheme the client chose.
func (t reachTransport) host() string {
	if _, h, ok := strings.Cut(t.base, "://"); ok {
		return h
	}
	return t.base
}

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}
