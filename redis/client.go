package redis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// sentinelRefresh is how often a sentinel client asks the sentinels which
// server is the master, besides following their +switch-master messages:
// a missed message would otherwise leave it on a demoted master for good.
const sentinelRefresh = 5 * time.Second

// Client is a connection to one Redis deployment (a server, a master
// behind sentinels, or a cluster), shared by any number of goroutines:
// calls from many goroutines are pipelined over a few connections. A
// connection that breaks is opened again by the next call that needs it.
type Client struct {
	rc   rueidis.Client
	opts Options // as given, for String

	closeOnce sync.Once
}

// Open connects to the deployment that rawURL names (see the package
// documentation for the forms): ParseURL, then Dial.
func Open(rawURL string) (*Client, error) {
	o, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	return Dial(o)
}

// Dial connects with o. It returns once the client has connected (for a
// cluster: learnt its slots; for sentinels: found the master and
// connected to it), or with an error after at most about DialTimeout for
// each address it tries.
func Dial(o Options) (*Client, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	ro, err := o.withDefaults().clientOption()
	if err != nil {
		return nil, err
	}
	rc, err := rueidis.NewClient(ro)
	if err != nil {
		return nil, fmt.Errorf("redis: connecting to %s: %w", o, err)
	}
	if o.Topology == Cluster && rc.Mode() != rueidis.ClientModeCluster {
		rc.Close()
		return nil, fmt.Errorf("redis: %s: the server is not a Redis Cluster node (cluster_enabled is off); for one server use redis://", o)
	}
	return &Client{rc: rc, opts: o}, nil
}

// clientOption translates o, its defaults applied, into rueidis's options.
func (o Options) clientOption() (rueidis.ClientOption, error) {
	ro := rueidis.ClientOption{
		InitAddress:      o.Addrs,
		Username:         o.Username,
		Password:         o.Password,
		SelectDB:         o.DB,
		ClientName:       o.ClientName,
		Dialer:           net.Dialer{Timeout: o.DialTimeout, KeepAlive: rueidis.DefaultTCPKeepAlive},
		ConnWriteTimeout: o.IOTimeout,
		// The store does not use client-side caching: its reads must see
		// the latest compare-and-set, and tracking costs memory per
		// connection on both sides.
		DisableCache: true,
	}
	if o.TLS {
		tc, err := o.tlsConfig()
		if err != nil {
			return ro, err
		}
		ro.TLSConfig = tc
	}
	switch o.Topology {
	case Standalone:
		ro.ForceSingleClient = true
	case Sentinel:
		ro.Sentinel = rueidis.SentinelOption{
			MasterSet:               o.MasterName,
			Username:                o.SentinelUsername,
			Password:                o.SentinelPassword,
			Dialer:                  ro.Dialer,
			TLSConfig:               ro.TLSConfig,
			ClientName:              o.ClientName,
			TopologyRefreshInterval: sentinelRefresh,
		}
	case Cluster:
		// rueidis finds the cluster from the addresses by itself.
	}
	return ro, nil
}

// tlsConfig builds the TLS configuration from o's files.
func (o Options) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         o.TLSServerName,
		InsecureSkipVerify: o.TLSInsecureSkipVerify, //nolint:gosec // G402: asked for by name (tls_insecure_skip_verify), documented as for tests only
	}
	if o.TLSCAFile != "" {
		pem, err := os.ReadFile(o.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("redis: reading the CA file (tls_ca): %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis: the CA file %s (tls_ca) holds no PEM certificate", o.TLSCAFile)
		}
	}
	if o.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCertFile, o.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("redis: loading the client certificate (tls_cert, tls_key): %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// String returns the client's options as a URL without passwords.
func (c *Client) String() string { return c.opts.String() }

// Topology returns the shape of the deployment the client is connected to.
func (c *Client) Topology() Topology { return c.opts.Topology }

// Ping tells whether the deployment answers, for a readiness check: nil
// if it does, within ctx's deadline. For a standalone server or a master
// behind sentinels, it sends PING to that server. For a cluster, it sends
// PING to every node the client knows, and asks one node whether the
// cluster serves all its slots (CLUSTER INFO says cluster_state:ok): a
// cluster that answers but has slots no master serves is not ready.
func (c *Client) Ping(ctx context.Context) error {
	if c.opts.Topology != Cluster {
		if err := c.rc.Do(ctx, c.rc.B().Ping().Build()).Error(); err != nil {
			return fmt.Errorf("redis: PING: %w", err)
		}
		return nil
	}
	nodes := c.rc.Nodes()
	if len(nodes) == 0 {
		return errors.New("redis: the cluster client knows no node")
	}
	errs := make(chan error, len(nodes))
	for addr, n := range nodes {
		go func() {
			if err := n.Do(ctx, n.B().Ping().Build()).Error(); err != nil {
				errs <- fmt.Errorf("redis: PING %s: %w", addr, err)
				return
			}
			errs <- nil
		}()
	}
	var all []error
	for range nodes {
		all = append(all, <-errs)
	}
	if err := errors.Join(all...); err != nil {
		return err
	}
	info, err := c.rc.Do(ctx, c.rc.B().ClusterInfo().Build()).ToString()
	if err != nil {
		return fmt.Errorf("redis: CLUSTER INFO: %w", err)
	}
	if state := infoField(info, "cluster_state"); state != "ok" {
		return fmt.Errorf("redis: the cluster is not serving all its slots (cluster_state:%s)", state)
	}
	return nil
}

// infoField returns the value of the field name in the text of an INFO or
// CLUSTER INFO reply (lines of name:value). Over RESP3 the reply is a
// verbatim string, which rueidis gives with its format prefix (txt:).
func infoField(info, name string) string {
	info = strings.TrimPrefix(info, "txt:")
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Close closes the client's connections. Calls in flight fail; calls after
// Close fail. Closing twice does nothing.
func (c *Client) Close() error {
	c.closeOnce.Do(c.rc.Close)
	return nil
}
