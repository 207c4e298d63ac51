#!/usr/bin/env bash
# compare-redis.sh: POST /v1/sessions/validate on a node backed by Redis
# against the same node on the memory store, side by side in one run: two
# servers built from this tree (--store memory and --store $REDIS_URL), the
# same load (wrk, one thread, validate.lua over 1,000 sessions' tokens), at
# 16 and 64 connections, alternating for ROUNDS rounds of DURATION each, and
# the ratio of their throughputs and p99 latencies, round by round (each
# Redis round against the memory round just before it: the machine's speed
# drifts) and the median.
#
#   bench/restload/compare-redis.sh
#   ROUNDS=5 DURATION=10s bench/restload/compare-redis.sh
#   REDIS_URL=redis://127.0.0.1:6379/13 bench/restload/compare-redis.sh
#   REDIS_CONFIG=cache.yaml bench/restload/compare-redis.sh  # a config file for the Redis node only
#
# The Redis database (default redis://127.0.0.1:6379/14) must be empty: the
# script refuses one with keys in it and empties it when done (it needs
# redis-cli for both). Both servers run as configured by default but for
# their store and the access log, which is off (ACCESS_LOG=true turns it
# on): the comparison is about the store.
#
# Needs wrk (apt-get install wrk) and redis-cli. With two CPUs or more both
# servers run on the first and wrk on the second (taskset), as in
# compare.sh; Redis runs wherever the system puts it, so on a two-core
# machine it takes its time from the server's core and wrk's. PIN=0 turns
# the pinning off. Each Redis round also prints the CPU Redis used, in
# percent of one core.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
ACCESS_LOG=${ACCESS_LOG:-false}
PIN=${PIN:-1}
SERVER_CPU=() LOAD_CPU=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	SERVER_CPU=(taskset -c 0) LOAD_CPU=(taskset -c 1)
fi

. bench/restload/redisdb.sh # rcli, redis_cpu; refuses a database with keys
. bench/restload/wrk.sh     # wrk_stats, wrk_ratios
. bench/restload/servers.sh # start_server

B=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rcli FLUSHDB >/dev/null || true
	rm -rf "$B"
}
trap cleanup EXIT

go build -o "$B/sessiond" ./cmd/sessiond
go build -o "$B/restload" ./bench/restload

start_server memory 7692 --store memory
start_server redis 7693 --store "$REDIS_URL" ${REDIS_CONFIG:+--config "$REDIS_CONFIG"}


# run NAME PORT CONNS: prints "NAME CONNS req/s p99(ms) [redis cpu %]".
run() {
	local name=$1 port=$2 conns=$3 out stats rps p99 c0 c1 t0 t1 extra=""
	c0=$(redis_cpu) t0=$(date +%s.%N)
	out=$(SESSIOND_API_KEY=$(cat "$B/$name/api_key") SESSIOND_TOKENS=$B/$name.tokens \
		"${LOAD_CPU[@]}" wrk -t1 -c"$conns" -d"$DURATION" --latency -s bench/restload/validate.lua "http://127.0.0.1:$port")
	c1=$(redis_cpu) t1=$(date +%s.%N)
	stats=$(wrk_stats "$name" "$out") || exit 1
	read -r rps p99 <<<"$stats"
	if [ "$name" = redis ]; then
		extra=$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" 'BEGIN {printf "%5.0f", 100 * (b - a) / (e - s)}')
	fi
	printf '%-7s %3d %10.0f %8.2f %s\n' "$name" "$conns" "$rps" "$p99" "$extra" | tee -a "$B/results.txt"
}

echo "redis $REDIS_URL against memory, access log $ACCESS_LOG, $ROUNDS rounds of $DURATION, $(nproc) CPUs, pinned: ${SERVER_CPU[*]:-no}"
printf '%-7s %3s %10s %8s %s\n' store conns req/s p99ms redis-cpu%
for conns in 16 64; do
	for _ in $(seq "$ROUNDS"); do
		run memory 7692 "$conns"
		run redis 7693 "$conns"
	done
done

echo
echo "redis / memory, each round against the memory run just before it, then the"
echo "median over the rounds:"
wrk_ratios "$B/results.txt" memory redis 16 64
