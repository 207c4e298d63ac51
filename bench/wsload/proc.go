package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procCPU returns the user+system CPU time a process has used so far, from
// /proc/PID/stat (Linux). ok is false if pid is 0 or the file is unreadable.
func procCPU(pid int) (_ time.Duration, ok bool) {
	user, sys, ok := procTimes(pid)
	return user + sys, ok
}

// procTimes returns the user and the system CPU time of a process.
func procTimes(pid int) (user, sys time.Duration, ok bool) {
	if pid <= 0 {
		return 0, 0, false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name (field 2) may hold spaces; fields after its closing
	// parenthesis are space separated: state is field 3, utime 14, stime 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	const hz = 100 // USER_HZ: 100 on every Linux platform Go supports
	return time.Duration(ut) * time.Second / hz, time.Duration(st) * time.Second / hz, true
}

// processCPU returns the CPU time this process has used so far.
func processCPU() time.Duration {
	d, _ := procCPU(os.Getpid())
	return d
}

// procStatus returns a "Vm..." line of /proc/PID/status in bytes (VmRSS,
// VmHWM).
func procStatus(pid int, key string) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		v, ok := strings.CutPrefix(line, key+":")
		if !ok {
			continue
		}
		f := strings.Fields(v) // "12345 kB"
		if len(f) != 2 || f[1] != "kB" {
			break
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			break
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s line", pid, key)
}

// openFileLimit returns this process's soft RLIMIT_NOFILE (Go raised it to
// the hard limit at start-up).
func openFileLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	return r.Cur
}

// openFiles counts a process's open descriptors.
func openFiles(pid int) int {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
