# redisdb.sh, sourced by the benchmark scripts that run servers on Redis:
# from REDIS_URL (redis://host[:port][/db], no TLS, no password: a local
# benchmark server) it defines rcli (redis-cli on that database) and
# redis_cpu (the CPU seconds Redis has used), and refuses a database that
# holds keys: the scripts empty it when done (rcli FLUSHDB).
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/14}
hostport=${REDIS_URL#redis://}
hostport=${hostport%%\?*}
RDB=0
case $hostport in */*) RDB=${hostport#*/} hostport=${hostport%%/*} ;; esac
case $hostport in *:*) RPORT=${hostport##*:} RHOST=${hostport%:*} ;; *) RHOST=$hostport RPORT=6379 ;; esac
rcli() { redis-cli -h "$RHOST" -p "$RPORT" -n "$RDB" "$@"; }
redis_cpu() { rcli INFO cpu | tr -d '\r' | awk -F: '/^used_cpu_(sys|user):/ {s += $2} END {printf "%.3f", s}'; }
if [ "$(rcli DBSIZE)" != 0 ]; then
	echo "$REDIS_URL holds keys: give the benchmark an empty database (it empties it when done)" >&2
	exit 1
fi
