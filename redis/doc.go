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
//
// # Store
//
// Store is a sessiond.Store on Redis: OpenStore opens one from a URL (and
// owns its connection), NewStore puts one over a Client (several stores,
// with their own key prefixes, may share it). It passes the conformance
// suites (sessiondtest.TestStore against a standalone server, a
// three-master Redis Cluster and a master behind a sentinel;
// sessiondtest.TestEngine against each of the three).
//
// Every write is one Lua script, loaded once and called by SHA, that
// checks the session's version and changes the session, its connections,
// its subject's indexes, the counters and the event log together: a
// compare-and-set that another writer sees whole or not at all. A script
// touches the keys of one partition only, and every key of a partition
// carries its hash tag ({p}), so each runs in one Redis Cluster slot. A
// subject's sessions and everything a write of one of them changes live
// in the subject's partition (SubjectShard(subject) mod the partitions);
// the id of a session carries that shard (NewID), so Get finds its
// partition from the id. keys.go lays the keys out.
//
// There are 16 partitions (keys.go), so a Redis Cluster spreads them over
// its masters. Each keeps the event log of its sessions (a stream, and its
// counter) in its slot: an event's position is its partition and its Seq
// there, and a sessiond.Cursor holds one Seq per partition. Ids outside
// their home partition are claimed there (Create).
//
// What the operations cost, in round trips: Get one (one GET of the
// session's record key: the record, then its number of connections); Update one (the script);
// Create one, or three if it evicts (the script answers with the
// oldest sessions' ids, which are read, then sent again with their
// ending versions; two more each time they changed in between), plus two (claim, and a release if
// refused) for a caller-chosen id outside its home partition (ids the
// engine makes never are); Delete two (the subject, for the keys, then the script); Live
// and FindDevice two (the index, then the sessions, pipelined); List two
// per partition at most (the index, then the sessions); Stats, ConnNodes,
// Leases, Conns, Conn, Events, Head and ClaimDue one (pipelined over the
// partitions where they span them).
//
// A limit that evicts is enforced in the script, but the evicted sessions
// are moved to ending by sessiond.Ending, in Go: the script refuses with
// the ids of the subject's oldest live sessions, and the create is sent
// again with their ending versions, each applied only if its session is
// still the oldest and at the version read. Scripts touch only the keys
// they are given (KEYS), as Redis Cluster asks. Events are appended to a stream trimmed to about
// StoreOptions.EventRetention entries shared among the partitions (MAXLEN ~),
// entry id <seq>-0, their Seq from a counter in the same slot. The store never uses KEYS, SCAN or
// keyspace notifications, nor Redis's expiry: leases are compare-and-sets
// on a version, and the engine's clock decides what has expired.
package redis
