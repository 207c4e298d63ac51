package redistest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// respConn is a minimal RESP2 client, enough for the helpers' own checks
// (PING, AUTH, CLUSTER INFO, SENTINEL, a few scripts): the helpers do not
// depend on the driver the code under test uses, and a test of that code
// cannot pass because the helpers made the same mistake.
type respConn struct {
	c net.Conn
	r *bufio.Reader
}

// respError is an error reply (-ERR ..., -NOAUTH ...).
type respError string

func (e respError) Error() string { return string(e) }

// cmdTimeout bounds one command of the helpers, dial included.
const cmdTimeout = 3 * time.Second

// dialRESP connects to addr (over TLS if tc is not nil) and authenticates
// as user with password if password is not empty.
func dialRESP(addr string, tc *tls.Config, user, password string) (*respConn, error) {
	d := &net.Dialer{Timeout: cmdTimeout}
	var c net.Conn
	var err error
	if tc != nil {
		c, err = (&tls.Dialer{NetDialer: d, Config: tc}).Dial("tcp", addr)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	rc := &respConn{c: c, r: bufio.NewReader(c)}
	if password != "" {
		auth := []string{"AUTH", password}
		if user != "" {
			auth = []string{"AUTH", user, password}
		}
		if _, err := rc.do(auth...); err != nil {
			rc.close()
			return nil, fmt.Errorf("AUTH: %w", err)
		}
	}
	return rc, nil
}

// command runs one command on a new connection to addr.
func command(addr string, tc *tls.Config, password string, args ...string) (any, error) {
	c, err := dialRESP(addr, tc, "", password)
	if err != nil {
		return nil, err
	}
	defer c.close()
	return c.do(args...)
}

func (c *respConn) close() { _ = c.c.Close() }

// do sends one command and reads its reply: a string (simple or bulk), an
// int64, nil, a []any, or a respError as the error.
func (c *respConn) do(args ...string) (any, error) {
	if err := c.c.SetDeadline(time.Now().Add(cmdTimeout)); err != nil {
		return nil, err
	}
	buf := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		buf = append(buf, '$')
		buf = strconv.AppendInt(buf, int64(len(a)), 10)
		buf = append(buf, "\r\n"...)
		buf = append(buf, a...)
		buf = append(buf, "\r\n"...)
	}
	if _, err := c.c.Write(buf); err != nil {
		return nil, err
	}
	return c.read()
}

func (c *respConn) read() (any, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("malformed reply line %q", line)
	}
	kind, body := line[0], line[1:len(line)-2]
	switch kind {
	case '+':
		return body, nil
	case '-':
		return nil, respError(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return nil, fmt.Errorf("malformed bulk length %q", body)
		}
		if n == -1 {
			return nil, nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, b); err != nil {
			return nil, err
		}
		return string(b[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return nil, fmt.Errorf("malformed array length %q", body)
		}
		if n == -1 {
			return nil, nil
		}
		elems := make([]any, n)
		for i := range elems {
			elems[i], err = c.read()
			if err != nil {
				var re respError
				if !errors.As(err, &re) {
					return nil, err
				}
				elems[i] = re // an error inside an array is a value of it
			}
		}
		return elems, nil
	}
	return nil, fmt.Errorf("unknown reply type %q", kind)
}

// replyString returns v as a string, or "" if it is not one.
func replyString(v any) string {
	s, _ := v.(string)
	return s
}

// replyMap turns a flat array reply of names and values (SENTINEL MASTER)
// into a map.
func replyMap(v any) map[string]string {
	elems, _ := v.([]any)
	m := make(map[string]string, len(elems)/2)
	for i := 0; i+1 < len(elems); i += 2 {
		m[replyString(elems[i])] = replyString(elems[i+1])
	}
	return m
}
