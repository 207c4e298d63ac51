#!/usr/bin/env bash
# create-cluster.sh: POST /v1/sessions through three nodes sharing one
# Redis, at once: three servers built from this tree (--store $REDIS_URL,
# nodes bench-1..3) and one restload -op create against each, with C
# connections for DURATION; it prints each node's creates per second and
# their sum, and Redis's CPU over the run.
#
#   bench/restload/create-cluster.sh
#   C=32 DURATION=10s REDIS_URL=redis://127.0.0.1:6379/13 bench/restload/create-cluster.sh
#
# The Redis database (default redis://127.0.0.1:6379/14) must be empty: the
# script refuses one with keys and empties it when done (redis-cli). The
# servers run with the access log off. Every process shares the machine:
# on a small one the load programs take CPU from the servers and Redis.
set -euo pipefail
cd "$(dirname "$0")/../.."
C=${C:-32}
DURATION=${DURATION:-10s}
KEY=sdk_create_cluster_bench_key_0123456789

. bench/restload/redisdb.sh # rcli, redis_cpu; refuses a database with keys

B=$(mktemp -d)
PIDS=()
cleanup() {
	kill "${PIDS[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
	rcli FLUSHDB >/dev/null || true
	rm -rf "$B"
}
trap cleanup EXIT

go build -o "$B/sessiond" ./cmd/sessiond
go build -o "$B/restload" ./bench/restload

for n in 1 2 3; do
	"$B/sessiond" serve --store "$REDIS_URL" --addr "127.0.0.1:770$n" --data-dir "$B/node-$n" \
		--node "bench-$n" --api-key "$KEY" --access-log=false --log-format json 2>"$B/node-$n.log" &
	PIDS+=($!)
done
for n in 1 2 3; do
	for _ in $(seq 100); do curl -sf "http://127.0.0.1:770$n/readyz" >/dev/null && break; sleep 0.1; done
	curl -sf "http://127.0.0.1:770$n/readyz" >/dev/null || { echo "node $n did not start:" >&2; cat "$B/node-$n.log" >&2; exit 1; }
done

cpu0=$(redis_cpu)
for n in 1 2 3; do
	SESSIOND_API_KEY=$KEY "$B/restload" -addr "127.0.0.1:770$n" -op create -c "$C" -d "$DURATION" >"$B/load-$n.txt" &
done
wait -n && wait -n && wait -n || true
cpu1=$(redis_cpu)

total=0
for n in 1 2 3; do
	rate=$(awk '$1 == "create" {print $4}' "$B/load-$n.txt")
	errors=$(awk '$1 == "create" {print $3}' "$B/load-$n.txt")
	echo "node $n: ${rate:-?} creates/s, ${errors:-?} errors"
	total=$((total + ${rate:-0}))
done
secs=${DURATION%s}
echo "three nodes: $total creates/s; Redis CPU $(awk -v a="$cpu0" -v b="$cpu1" -v d="$secs" 'BEGIN {printf "%.0f", (b - a) / d * 100}')% of a core"
