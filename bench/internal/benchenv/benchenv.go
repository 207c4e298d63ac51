// Package benchenv describes the machine a benchmark runs on, for the
// header of its output, so that recorded results carry their machine.
package benchenv

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// CPUModel returns the CPU model name from /proc/cpuinfo, or "unknown".
func CPUModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// MemTotal returns the MemTotal line of /proc/meminfo, or "".
func MemTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// LoadAvg returns /proc/loadavg's first three fields, or "".
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// Header writes a few "# key: value" lines naming the program, the time,
// the machine and the Go toolchain.
func Header(w io.Writer, program string) {
	fmt.Fprintf(w, "# %s  %s\n", program, time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "# machine: %s/%s, NumCPU=%d, GOMAXPROCS=%d, cpu=%q",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), CPUModel())
	if m := MemTotal(); m != "" {
		fmt.Fprintf(w, ", mem=%s", m)
	}
	if l := LoadAvg(); l != "" {
		fmt.Fprintf(w, ", loadavg=%s", l)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "# go: %s", runtime.Version())
	if gogc := os.Getenv("GOGC"); gogc != "" {
		fmt.Fprintf(w, ", GOGC=%s", gogc)
	}
	if lim := os.Getenv("GOMEMLIMIT"); lim != "" {
		fmt.Fprintf(w, ", GOMEMLIMIT=%s", lim)
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
				fmt.Fprintf(w, ", %s=%s", s.Key, s.Value)
			}
		}
	}
	fmt.Fprintln(w)
}
