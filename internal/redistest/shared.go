package redistest

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"
)

// EnvURL names the environment variable of a shared standalone server's
// URL, for Standalone.
const EnvURL = "SESSIOND_TEST_REDIS_URL"

// A test holds a database of the shared server by a lease key in it.
const (
	leaseKey = "sessiond:redistest:lease"
	leaseTTL = 10 * time.Minute // the longest a test holds a database; a crashed test's lease ends then
)

// claimScript takes the database the script runs in if no one holds it:
// it sets the lease, empties the database and sets the lease again, in
// one step. It returns 1 if it took it.
const claimScript = `
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
redis.call('FLUSHDB')
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`

// releaseScript empties the database, which frees it, if the caller still
// holds it. It returns 1 if it did.
const releaseScript = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('FLUSHDB')
return 1`

// shared claims a database of the server at rawURL for the test and
// returns the URL with that database.
func shared(t testing.TB, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "redis" || u.Host == "" || u.Opaque != "" {
		t.Fatalf("redistest: %s must be a redis://[user:password@]host[:port] URL of a standalone server (for TLS, sentinels or a cluster, let the helpers start their own)", EnvURL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "6379")
	}
	user, password := u.User.Username(), ""
	if u.User != nil {
		password, _ = u.User.Password()
	}
	c, err := dialRESP(addr, nil, user, password)
	if err != nil {
		t.Fatalf("redistest: the server of %s: %v", EnvURL, err)
	}
	defer c.close()

	databases := 16
	if reply, err := c.do("CONFIG", "GET", "databases"); err == nil {
		if kv, _ := reply.([]any); len(kv) == 2 {
			if n, err := strconv.Atoi(replyString(kv[1])); err == nil {
				databases = n
			}
		}
	}
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	token := hex.EncodeToString(tok[:])
	ttl := strconv.FormatInt(leaseTTL.Milliseconds(), 10)
	db := 0
	for d := 1; d < databases && db == 0; d++ {
		if _, err := c.do("SELECT", strconv.Itoa(d)); err != nil {
			t.Fatalf("redistest: SELECT %d on the server of %s: %v", d, EnvURL, err)
		}
		reply, err := c.do("EVAL", claimScript, "1", leaseKey, token, ttl)
		if err != nil {
			t.Fatalf("redistest: claiming database %d of the server of %s: %v", d, EnvURL, err)
		}
		if reply == int64(1) {
			db = d
		}
	}
	if db == 0 {
		t.Fatalf("redistest: databases 1 to %d of the server of %s are all held by other tests", databases-1, EnvURL)
	}
	t.Cleanup(func() {
		c, err := dialRESP(addr, nil, user, password)
		if err != nil {
			t.Errorf("redistest: emptying database %d of the server of %s: %v", db, EnvURL, err)
			return
		}
		defer c.close()
		if _, err := c.do("SELECT", strconv.Itoa(db)); err != nil {
			t.Errorf("redistest: emptying database %d of the server of %s: %v", db, EnvURL, err)
			return
		}
		reply, err := c.do("EVAL", releaseScript, "1", leaseKey, token)
		switch {
		case err != nil:
			t.Errorf("redistest: emptying database %d of the server of %s: %v", db, EnvURL, err)
		case reply != int64(1):
			t.Errorf("redistest: the test's lease of database %d was gone at its end (it ran longer than %v, or flushed the database): another test may have shared it", db, leaseTTL)
		}
	})
	v := *u
	v.Path, v.RawPath = "/"+strconv.Itoa(db), ""
	return v.String()
}
