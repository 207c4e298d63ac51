package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func numCPU() int { return runtime.NumCPU() }

// procCPU returns the user+system CPU time a process has used so far, from
// /proc/PID/stat (Linux). ok is false if pid is 0 or the file is unreadable.
func procCPU(pid int) (_ time.Duration, ok bool) {
	if pid <= 0 {
		return 0, false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name (field 2) may hold spaces; fields after its closing
	// parenthesis are space separated: state is field 3, utime 14, stime 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	const hz = 100 // USER_HZ: 100 on every Linux platform Go supports
	return time.Duration(ut+st) * time.Second / hz, true
}

// processCPU returns the CPU time this process has used so far.
func processCPU() time.Duration {
	d, _ := procCPU(os.Getpid())
	return d
}
