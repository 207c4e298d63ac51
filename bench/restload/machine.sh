# machine.sh, sourced by the scripts that measure on a shared machine.
#
# await_quiet MAXSECONDS waits until the machine was at least 90% idle
# over 3 s (from /proc/stat), for at most MAXSECONDS, and prints how idle
# it found it and the load average. It fails when it gave up.
await_quiet() {
	local end=$((SECONDS + $1)) idle=0 a b c d e f g h t0 i0 t1 i1
	while :; do
		read -r _ a b c d e f g h _ </proc/stat
		t0=$((a + b + c + d + e + f + g + h)) i0=$((d + e))
		sleep 3
		read -r _ a b c d e f g h _ </proc/stat
		t1=$((a + b + c + d + e + f + g + h)) i1=$((d + e))
		idle=$((100 * (i1 - i0) / (t1 - t0)))
		if [ "$idle" -ge 90 ]; then
			echo "# quiet: ${idle}% idle over 3s, load $(cut -d' ' -f1-3 /proc/loadavg)"
			return 0
		fi
		if [ "$SECONDS" -ge "$end" ]; then
			echo "# not quiet after $1s: ${idle}% idle over the last 3s, load $(cut -d' ' -f1-3 /proc/loadavg)"
			return 1
		fi
	done
}

# cpu_ticks PID... prints the user+system CPU time the processes have used
# so far, in clock ticks (USER_HZ: 100 a second), from /proc/PID/stat;
# processes gone count nothing.
cpu_ticks() {
	local p n=0 f
	for p in "$@"; do
		f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		f=${f##*) } # the fields after the command name, from field 3
		read -r -a f <<<"$f"
		n=$((n + f[11] + f[12]))
	done
	echo "$n"
}
