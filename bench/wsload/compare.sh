#!/usr/bin/env bash
# compare.sh: WebSocket connect + ack on the embedded store against the
# memory store, side by side in one run: two servers built from this tree,
# the same load client (wsload -mode connect, 64 dialers), alternating for
# ROUNDS rounds of N connects each, and the ratio of their rates, round by
# round (each embedded round against the memory round just before it: the
# machine's speed drifts) and the median.
#
#   bench/wsload/compare.sh
#   ROUNDS=5 N=8000 bench/wsload/compare.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-5}
N=${N:-8000}
C=${C:-64}
S=wsload-secret-0123456789abcdef0123456789
B=$(mktemp -d)
trap 'pkill -f "$B/sessiond" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$B"' EXIT

go build -o "$B/sessiond" ./cmd/sessiond
go build -o "$B/wsload" ./bench/wsload
start() { # start STORE PORT
	"$B/sessiond" serve --store "$1" --addr "127.0.0.1:$2" --data-dir "$B/$1" --jwt-secret "$S" \
		--ws-connects-per-address 100000000 --access-log=false --log-format json 2>"$B/$1.log" &
	for _ in $(seq 100); do curl -sf "http://127.0.0.1:$2/readyz" >/dev/null && return; sleep 0.1; done
}
start memory 7701
start embedded 7702
echo "$ROUNDS rounds of $N connects from $C dialers, $(nproc) CPUs shared by the servers and the client"
printf '%-9s %8s %8s\n' store rate/s p99
for _ in $(seq "$ROUNDS"); do
	for pair in memory:7701 embedded:7702; do
		store=${pair%:*} port=${pair#*:}
		line=$("$B/wsload" -addr "127.0.0.1:$port" -jwt-secret "$S" -mode connect -n "$N" -c "$C" | awk '$1 == "connect" {print $4, $7}')
		printf '%-9s %8s %8s\n' "$store" $line | tee -a "$B/results.txt"
	done
done
echo
awk '$1 == "memory" {m = $2} $1 == "embedded" {n++; r[n] = $2 / m}
	END { for (i = 1; i <= n; i++) s[i] = r[i]; asort(s)
		printf "embedded / memory: median %.2f (rounds:", s[int((n + 1) / 2)]
		for (i = 1; i <= n; i++) printf " %.2f", r[i]; print ")" }' "$B/results.txt"
