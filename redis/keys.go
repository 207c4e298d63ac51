package redis

import (
	"fmt"
	"strconv"
	"time"

	"github.com/sessiond/sessiond"
)

// partitions is how many partitions the store spreads sessions over: one
// Redis Cluster hash slot each, so that a cluster spreads them over its
// masters. A subject's sessions, its indexes, its limit, and the deadlines
// and event log of its sessions live in one partition
// (SubjectShard(subject) % partitions), so every write is a script over
// the keys of one slot. Every read that spans sessions (Events, Head,
// ClaimDue, List, Stats, NodeConns, ConnNodes) visits each partition,
// pipelined: 16 keeps that one round trip of small commands.
const partitions = 16

// minPartitionRetention is the fewest events a partition's stream keeps:
// StoreOptions.EventRetention is shared among the partitions.
const minPartitionRetention = 1000

// keys names a store's keys. Every key of partition p carries the hash tag
// {p}, so the keys of one partition share a slot:
//
//	<prefix>{p}:s:<id>         hash: what the scripts read of the session: v
//	                           version, st state, sub subject, dev device id,
//	                           lk live-index member, n its number of
//	                           connections (absent for none)
//	<prefix>{p}:r:<id>         string: the session's record (internal/codec),
//	                           then n in decimal, then a byte: n's length
//	                           (what a read needs, in one GET)
//	<prefix>{p}:c:<id>         hash: the session's connections, id -> record
//	<prefix>{p}:live:<subject> zset (lex): the subject's live sessions, members
//	                           liveMember (created-at, then id)
//	<prefix>{p}:dev:<subject>  zset (lex): the subject's live sessions with a
//	                           device id, members devMember (device, then liveMember)
//	<prefix>{p}:subj:<subject> zset (lex): the subject's session ids, any state
//	<prefix>{p}:ids            zset (lex): every session id, for List
//	<prefix>{p}:bystate        zset (lex): "<state>:<id>" of every session
//	<prefix>{p}:nodeconns      zset (lex): nodeMember (node, then connection id)
//	<prefix>{p}:nodes          hash: node -> how many connections it holds
//	<prefix>{p}:stats          hash: n<state> sessions by state, subj subjects
//	                           with live sessions, k:<kind> connections by kind,
//	                           seq the last event's Seq
//	<prefix>{p}:due            zset: the deadline index, members session and
//	                           connection ids, scores their deadlines in
//	                           microseconds (rounded up)
//	<prefix>{p}:events         stream: the event log's tail, entry id <seq>-0,
//	                           field e the event's record
//	<prefix>{p}:claim:<id>     string "<q>:<token>": a session with this id is
//	                           stored in partition q (see Store.Create)
//	<prefix>leases             hash: node -> "<version>|<lease record>"
//	<prefix>consumer:{<name>}  hash: a consumer of the event log
//	                           (sessiond.Consumers): owner, until (the
//	                           claim's end, Unix microseconds), cursor (its
//	                           text form); one key, its own hash tag
type keys struct {
	prefix string
	n      int      // partitions: the const, but for tests of partitioning
	tags   []string // tag(p), made once: a read names keys on the hot path
}

func newKeys(prefix string, n int) keys {
	k := keys{prefix: prefix, n: n}
	for p := range n {
		k.tags = append(k.tags, k.tag(p))
	}
	return k
}

func (k keys) tag(p int) string {
	if p < len(k.tags) {
		return k.tags[p]
	}
	return k.prefix + "{" + strconv.Itoa(p) + "}:"
}

func (k keys) session(p int, id string) string     { return k.tag(p) + "s:" + id }
func (k keys) conns(p int, id string) string       { return k.tag(p) + "c:" + id }
func (k keys) record(p int, id string) string      { return k.tag(p) + "r:" + id }
func (k keys) live(p int, subject string) string   { return k.tag(p) + "live:" + subject }
func (k keys) device(p int, subject string) string { return k.tag(p) + "dev:" + subject }
func (k keys) subject(p int, subject string) string {
	return k.tag(p) + "subj:" + subject
}
func (k keys) ids(p int) string              { return k.tag(p) + "ids" }
func (k keys) byState(p int) string          { return k.tag(p) + "bystate" }
func (k keys) nodeConns(p int) string        { return k.tag(p) + "nodeconns" }
func (k keys) nodes(p int) string            { return k.tag(p) + "nodes" }
func (k keys) stats(p int) string            { return k.tag(p) + "stats" }
func (k keys) events(p int) string           { return k.tag(p) + "events" }
func (k keys) due(p int) string              { return k.tag(p) + "due" }
func (k keys) claim(p int, id string) string { return k.tag(p) + "claim:" + id }
func (k keys) leases() string                { return k.prefix + "leases" }
func (k keys) consumer(name string) string   { return k.prefix + "consumer:{" + name + "}" }

// sessionKeys are the keys a session's write touches, in the order the
// scripts take them (KEYS[1] to KEYS[13]).
func (k keys) sessionKeys(p int, id, subject string) []string {
	return []string{
		k.session(p, id), k.conns(p, id), k.live(p, subject), k.device(p, subject),
		k.subject(p, subject), k.ids(p), k.byState(p), k.nodeConns(p), k.nodes(p),
		k.stats(p), k.events(p), k.due(p), k.record(p, id),
	}
}

// subjectPartition is the partition of the subject's sessions.
func (k keys) subjectPartition(subject string) int {
	return int(sessiond.SubjectShard(subject)) % k.n
}

// homePartition is where an id is looked up first: for an id of NewID's
// form, the partition of the shard it carries (the partition of its
// subject, for ids the engine made); for any other id, the partition its
// own hash names. A session stored elsewhere (a caller-chosen id) leaves
// a claim in its id's home partition, so that creates of one id meet in
// one slot whatever partition their subjects are in.
func (k keys) homePartition(id string) int {
	if shard, ok := sessiond.IDShard(id); ok {
		return int(shard) % k.n
	}
	return int(sessiond.SubjectShard(id)) % k.n
}

// liveMember is a session's member in its subject's live index: ordered
// by creation time (nanoseconds, biased so that times before 1970 sort
// first, in 16 hex digits), then by id.
func liveMember(created time.Time, id string) string {
	return fmt.Sprintf("%016x:%s", uint64(created.UnixNano())^(1<<63), id)
}

const liveMemberIDAt = 17 // len("%016x:")

// devicePrefix starts the device index members of a device id: its length
// in 8 hex digits, then it, so that one device's members are a lex range.
func devicePrefix(deviceID string) string { return fmt.Sprintf("%08x%s", len(deviceID), deviceID) }

// nodePrefix starts the node index members of a node, likewise.
func nodePrefix(node string) string { return fmt.Sprintf("%08x%s", len(node), node) }
