# wrk.sh, sourced by the scripts that drive wrk.
#
# wrk_stats NAME OUTPUT prints "req/s p99-in-ms" from wrk's --latency
# output; it prints the output and fails when any request failed.
wrk_stats() {
	if grep -q "Non-2xx" <<<"$2"; then
		echo "$1: failed requests" >&2
		echo "$2" >&2
		return 1
	fi
	awk '/^Requests\/sec/ {rps = $2}
		$1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us$/, "", v); v = v / 1000} else if (v ~ /ms$/) {sub(/ms$/, "", v)} else if (v ~ /s$/) {sub(/s$/, "", v); v = v * 1000}; p99 = v}
		END {print rps, p99}' <<<"$2"
}

# wrk_ratios FILE BASE OTHER CONNS... prints, for each CONNS, OTHER against
# BASE from FILE's lines "NAME CONNS req/s p99-in-ms ...": the ratio of
# their throughputs and of their p99s, each OTHER round against the BASE
# round just before it (the machine's speed drifts between rounds), the
# median over the rounds and then every round.
wrk_ratios() {
	local file=$1 base=$2 other=$3 conns
	shift 3
	for conns in "$@"; do
		awk -v c="$conns" -v b="$base" -v o="$other" '$2 == c && $1 == b {br = $3; bp = $4}
			$2 == c && $1 == o {n++; r[n] = $3 / br; p[n] = $4 / bp}
			function med(a, n,   i, s) { for (i = 1; i <= n; i++) s[i] = a[i]; asort(s); return s[int((n + 1) / 2)] }
			END { printf "  %d connections: throughput %.2f (rounds:", c, med(r, n); for (i = 1; i <= n; i++) printf " %.2f", r[i]
				printf "); p99 %.2fx (rounds:", med(p, n); for (i = 1; i <= n; i++) printf " %.2f", p[i]; print ")" }' "$file"
	done
}
