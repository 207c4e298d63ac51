# servers.sh, sourced by the scripts that run servers side by side.
#
# start_server NAME PORT [SERVE ARGS...] starts "$B/sessiond serve" on
# 127.0.0.1:PORT with a data directory of its own, $B/NAME (its API key is
# generated there), node name bench-NAME, the access log as $ACCESS_LOG
# says, its log in $B/NAME.log, on the CPUs of the command in SERVER_CPU
# (an array, may be empty); adds its pid to PIDS; waits until it is ready;
# then writes 1,000 sessions' tokens, for wrk, to $B/NAME.tokens
# ($B/restload -op tokens: the default policy, touch_interval 1m).
start_server() {
	local name=$1 port=$2
	shift 2
	"${SERVER_CPU[@]}" "$B/sessiond" serve --addr "127.0.0.1:$port" --data-dir "$B/$name" \
		--node "bench-$name" --access-log="$ACCESS_LOG" --log-format json "$@" 2>"$B/$name.log" &
	PIDS+=($!)
	for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
	curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { echo "$name did not start:" >&2; cat "$B/$name.log" >&2; exit 1; }
	SESSIOND_API_KEY=$(cat "$B/$name/api_key") "$B/restload" -addr "127.0.0.1:$port" -data-dir "$B/$name" \
		-op tokens -sessions 1000 >"$B/$name.tokens"
}
