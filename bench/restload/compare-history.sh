#!/usr/bin/env bash
# compare-history.sh: POST /v1/sessions/validate with the PostgreSQL
# history on against the same server without it, side by side in one run:
# two servers built from this tree on the embedded store, one with
# --history (docs/history.md), one without; the same load (wrk, one
# thread, validate.lua over 1,000 sessions' tokens) at 16 and 64
# connections, alternating for ROUNDS rounds of DURATION each; and the
# ratio of their throughputs and p99 latencies, round by round (each
# history round against the round without it just before) and the median.
#
#   bench/restload/compare-history.sh
#   ROUNDS=5 DURATION=10s CHURN=100 bench/restload/compare-history.sh
#   PG_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable bench/restload/compare-history.sh
#
# A validation writes no event, so that the history sink has something to
# copy while validations are measured, each round runs a background load
# on the server under test: restload -op churn creates and revokes CHURN
# sessions a second (default 100; three events each: created, ending,
# ended), from half a second before wrk starts to half a second after it
# ends. Both servers get the same churn in their rounds; each round prints
# the churn's achieved rate.
#
# The history goes to a database of its own on PG_URL's server
# (sessiond_bench_history, created here; the script refuses to run if it
# exists), dropped when done; needs psql. At the end the script prints how
# many events the sink wrote there against how many the history server's
# log had, and how many transactions PostgreSQL committed there.
#
# Needs wrk (apt-get install wrk). With two CPUs or more both servers run
# on the first and wrk and the churn on the second (taskset), as in
# compare.sh; PostgreSQL runs wherever the system puts it. PIN=0 turns the
# pinning off. The access log is off (ACCESS_LOG=true turns it on): the
# comparison is about the history. On a machine shared with other work,
# QUIET=SECONDS waits before each pair of rounds for a 3 s window at least
# 90% idle (at most SECONDS; the pair runs anyway after that, and the
# output says so). Each round prints the load average when it ended, the
# server's CPU and PostgreSQL's (all its processes) over the round, in
# percent of one core, and the server's CPU per validation in
# microseconds (the churn's share included, the same on both servers).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CHURN=${CHURN:-100}
QUIET=${QUIET:-0}
ACCESS_LOG=${ACCESS_LOG:-false}
PIN=${PIN:-1}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
HIST_DB=sessiond_bench_history
case $DURATION in *[0-9]s) ;; *) echo "DURATION must be in seconds, like 10s" >&2; exit 1 ;; esac
SERVER_CPU=() LOAD_CPU=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	SERVER_CPU=(taskset -c 0) LOAD_CPU=(taskset -c 1)
fi

. bench/restload/wrk.sh     # wrk_stats, wrk_ratios
. bench/restload/servers.sh # start_server
. bench/restload/machine.sh # await_quiet, cpu_ticks

# The history's database: PG_URL with its database name replaced.
pg_base=${PG_URL%%\?*}
pg_query=${PG_URL#"$pg_base"}
HIST_URL=${pg_base%/*}/$HIST_DB$pg_query
if [ "$(psql "$PG_URL" -Atc "SELECT count(*) FROM pg_database WHERE datname = '$HIST_DB'")" != 0 ]; then
	echo "database $HIST_DB exists already: drop it, or wait for the run that uses it" >&2
	exit 1
fi

B=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $HIST_DB WITH (FORCE)" || true
	rm -rf "$B"
}
trap cleanup EXIT
psql "$PG_URL" -qc "CREATE DATABASE $HIST_DB"

go build -o "$B/sessiond" ./cmd/sessiond
go build -o "$B/restload" ./bench/restload
start_server off 7694
start_server history 7695 --history "$HIST_URL"
OFF_PID=${PIDS[0]} HISTORY_PID=${PIDS[1]}

# run NAME PORT PID CONNS: prints "NAME CONNS req/s p99(ms) churn/s load
# server-cpu% pg-cpu% server-µs/req".
run() {
	local name=$1 port=$2 pid=$3 conns=$4 out stats rps p99 churn rate load s0 s1 p0 p1 t0 t1
	SESSIOND_API_KEY=$(cat "$B/$name/api_key") "${LOAD_CPU[@]}" "$B/restload" -addr "127.0.0.1:$port" \
		-op churn -rate "$CHURN" -c 4 -d "$((${DURATION%s} + 1))s" >"$B/churn.out" &
	churn=$!
	sleep 0.5
	t0=$(date +%s.%N) s0=$(cpu_ticks "$pid") p0=$(cpu_ticks $(pgrep -x postgres))
	out=$(SESSIOND_API_KEY=$(cat "$B/$name/api_key") SESSIOND_TOKENS=$B/$name.tokens \
		"${LOAD_CPU[@]}" wrk -t1 -c"$conns" -d"$DURATION" --latency -s bench/restload/validate.lua "http://127.0.0.1:$port")
	t1=$(date +%s.%N) s1=$(cpu_ticks "$pid") p1=$(cpu_ticks $(pgrep -x postgres))
	wait "$churn" || { cat "$B/churn.out" >&2; exit 1; }
	cat "$B/churn.out" >>"$B/$name.churn"
	rate=$(sed -n 's/.*(\([0-9]*\)\/s;.*/\1/p' "$B/churn.out")
	load=$(cut -d' ' -f1 /proc/loadavg)
	stats=$(wrk_stats "$name" "$out") || exit 1
	read -r rps p99 <<<"$stats"
	awk -v n="$name" -v c="$conns" -v r="$rps" -v p="$p99" -v ch="$rate" -v l="$load" \
		-v s="$((s1 - s0))" -v pg="$((p1 - p0))" -v w="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" \
		'BEGIN {printf "%-7s %3d %10.0f %8.2f %7s %5s %6.0f %6.0f %7.1f\n", n, c, r, p, ch, l, s / w, pg / w, s * 1e4 / (r * w)}' |
		tee -a "$B/results.txt"
}

echo "history ($HIST_URL) against none, embedded store, churn $CHURN sessions/s, access log $ACCESS_LOG,"
echo "$ROUNDS rounds of $DURATION, $(nproc) CPUs, pinned: ${SERVER_CPU[*]:-no}"
printf '%-7s %3s %10s %8s %7s %5s %6s %6s %7s\n' server conns req/s p99ms churn/s load cpu% pg% µs/req
for conns in 16 64; do
	for _ in $(seq "$ROUNDS"); do
		if [ "$QUIET" -gt 0 ]; then await_quiet "$QUIET" || true; fi
		run off 7694 "$OFF_PID" "$conns"
		run history 7695 "$HISTORY_PID" "$conns"
	done
done

echo
echo "history / off, each round against the round without history just before it,"
echo "then the median over the rounds:"
wrk_ratios "$B/results.txt" off history 16 64
echo "the server's CPU per validation (the churn's included) and PostgreSQL's CPU,"
echo "medians over the rounds:"
for conns in 16 64; do
	awk -v c="$conns" '$2 == c {n[$1]++; u[$1, n[$1]] = $9; g[$1, n[$1]] = $8}
		function med(a, k, n,   i, s) { for (i = 1; i <= n; i++) s[i] = a[k, i]; asort(s); return s[int((n + 1) / 2)] }
		END { o = med(u, "off", n["off"]); h = med(u, "history", n["history"])
			printf "  %d connections: %.1f µs without history, %.1f with (%.2fx); PostgreSQL %.0f%% of a core with history, %.0f%% without\n",
				c, o, h, h / o, med(g, "history", n["history"]), med(g, "off", n["off"]) }' "$B/results.txt"
done

# What the sink copied: the churn's sessions on the history server (three
# events each) and the 1,000 sessions created for the tokens.
sleep 2
made=$(awk '{n += $2 + 2 * $5} END {print n + 1000}' "$B/history.churn")
rows=$(psql "$HIST_URL" -Atc "SELECT count(*) FROM sessiond_events")
xacts=$(psql "$HIST_URL" -Atc "SELECT xact_commit FROM pg_stat_database WHERE datname = '$HIST_DB'")
echo
echo "events in PostgreSQL: $rows; the history server's log had $made (3 per churned session, 1,000 created for the tokens)"
echo "transactions committed in $HIST_DB: $xacts (the sink writes what the log holds in one, each time the store's commits wake it)"
