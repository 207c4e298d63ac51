// Package redis is sessiond's adapter to Redis: a standalone server, a
// master behind Redis Sentinel, or a Redis Cluster, named by one URL. The
// driver (rueidis) is an implementation detail: none of its types cross
// out of this package.
//
// # URLs
//
// One URL names the deployment, its credentials and the client's settings
// (docs/redis.md has examples):
//
//	redis://[[user][:password]@]host[:port][/db][?param=value&...]
//	rediss://...                                   the same over TLS
//	redis+sentinel://[[user][:password]@]host[:port][,host[:port]...][/db]?master=NAME[&...]
//	rediss+sentinel://...                          the same over TLS (sentinels and master)
//	redis+cluster://[[user][:password]@]host[:port][,host[:port]...][?...]
//	rediss+cluster://...                           the same over TLS
//
// The port defaults to 6379, or 26379 for sentinels; the database (db, the
// path) to 0. A cluster has only database 0: any other is an error. For
// sentinels, the hosts are the sentinels', and user and password are the
// master's: the sentinels' own credentials are the sentinel_username and
// sentinel_password parameters (none by default). In the user information,
// ? # % and a : in the user name are percent-encoded (%3F, %23, %25, %3A);
// / and @ may stand as they are.
//
// Query parameters (any other is an error):
//
//	master                    sentinel: the master set's name (required)
//	sentinel_username         sentinel: user for AUTH to the sentinels
//	sentinel_password         sentinel: password for AUTH to the sentinels
//	dial_timeout              opening one connection, TCP to AUTH (default 5s)
//	io_timeout                a connection waiting this long for a reply is
//	                          closed as dead (default 5s)
//	client_name               CLIENT SETNAME on every connection
//	tls_ca                    rediss: PEM file of the CAs to trust (default: the system's)
//	tls_cert, tls_key         rediss: client certificate and key (PEM)
//	tls_server_name           rediss: name to verify certificates against (default: each host)
//	tls_insecure_skip_verify  rediss: true accepts any certificate (tests only)
//
// Durations are Go durations with their unit (500ms, 5s), more than zero
// and at most an hour. Errors name the part of the URL at fault and never
// quote a password; Options.String gives the URL back without passwords,
// for logs.
//
// # Clients
//
// Open connects with a URL, Dial with Options. A Client is shared by all
// goroutines: their calls are pipelined over a few connections, and a
// connection that breaks (a server restarted) is opened again by the next
// call. Client.Ping is the readiness check.
package redis
