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
