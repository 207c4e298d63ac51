#!/usr/bin/env bash
# compare.sh: POST /v1/sessions/validate against GET /healthz, side by side
# in one run: one server, the same load client (wrk, one thread), each at 16
# and 64 connections, alternating for ROUNDS rounds of DURATION each, and
# the ratio of their throughputs and p99 latencies. Validation is the
# server's hot path; /healthz is the least a request can cost on the same
# server (routing, the access log, the JSON answer), so the ratio says what
# a validation adds.
#
#   bench/restload/compare.sh                  # the embedded store
#   STORE=memory bench/restload/compare.sh
#   ROUNDS=5 DURATION=10s bench/restload/compare.sh
#   ACCESS_LOG=false bench/restload/compare.sh   # without the access log
#
# The server runs as configured by default but for its store: the access
# log is on (one JSON line per request, to a file here), which both
# endpoints pay for.
#
# Needs wrk (apt-get install wrk). Prints one line per measurement and a
# summary with the medians and their ratios. With two CPUs or more the
# server runs on the first and wrk on the second (taskset), so that the two
# do not take turns on the same core; PIN=0 turns that off.
set -euo pipefail
cd "$(dirname "$0")/../.."
STORE=${STORE:-embedded}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
ADDR=${ADDR:-127.0.0.1:7691}
ACCESS_LOG=${ACCESS_LOG:-true}
PIN=${PIN:-1}
SERVER_CPU=() LOAD_CPU=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	SERVER_CPU=(taskset -c 0) LOAD_CPU=(taskset -c 1)
fi
B=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$B"' EXIT

go build -o "$B/sessiond" ./cmd/sessiond
go build -o "$B/restload" ./bench/restload
"${SERVER_CPU[@]}" "$B/sessiond" serve --store "$STORE" --addr "$ADDR" --data-dir "$B/data" \
	--access-log="$ACCESS_LOG" --log-format json 2>"$B/server.log" &
SERVER=$!
for _ in $(seq 100); do curl -sf "http://$ADDR/readyz" >/dev/null && break; sleep 0.1; done
export SESSIOND_API_KEY=$(cat "$B/data/api_key")
"$B/restload" -addr "$ADDR" -data-dir "$B/data" -op tokens -sessions 1000 >"$B/tokens.txt"
export SESSIOND_TOKENS=$B/tokens.txt

. bench/restload/wrk.sh # wrk_stats, wrk_ratios

# run NAME CONNS [wrk args...]: prints "NAME CONNS req/s p99(ms)".
run() {
	local name=$1 conns=$2
	shift 2
	local out stats rps p99
	out=$("${LOAD_CPU[@]}" wrk -t1 -c"$conns" -d"$DURATION" --latency "$@")
	stats=$(wrk_stats "$name" "$out") || exit 1
	read -r rps p99 <<<"$stats"
	printf '%-9s %3d %10.0f %8.2f\n' "$name" "$conns" "$rps" "$p99" | tee -a "$B/results.txt"
}

echo "store $STORE, access log $ACCESS_LOG, $ROUNDS rounds of $DURATION, $(nproc) CPUs, pinned: ${SERVER_CPU[*]:-no}"
printf '%-9s %3s %10s %8s\n' what conns req/s p99ms
for conns in 16 64; do
	for _ in $(seq "$ROUNDS"); do
		run healthz "$conns" "http://$ADDR/healthz"
		run validate "$conns" -s bench/restload/validate.lua "http://$ADDR"
	done
done

echo
echo "validate / healthz, each round against the healthz run just before it (the"
echo "machine's speed drifts between rounds), then the median over the rounds:"
wrk_ratios "$B/results.txt" healthz validate 16 64
