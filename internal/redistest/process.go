package redistest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one running redis-server (or redis-cli), in a process group
// of its own, its output appended to a log file.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
	err  error         // Wait's result, set before done is closed
}

// spawner starts every child process from one goroutine locked to its OS
// thread for the life of the test binary. Children are started with
// Pdeathsig (SIGKILL when the thread that started them ends); since that
// thread never ends before the process, a test binary that dies without
// running its cleanups (a -timeout panic, os.Exit, a signal) takes its
// Redis servers with it instead of leaving them running.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

// start starts cmd in a new process group through the spawner.
func start(cmd *exec.Cmd) error {
	cmd.SysProcAttr = procAttr()
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for r := range spawner.reqs {
				r.errc <- r.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	spawner.reqs <- spawnReq{cmd, errc}
	return <-errc
}

// startProcess starts bin with args, appending its output to logPath.
func startProcess(bin string, args []string, logPath string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600) //nolint:gosec // G304: a path under the test's temp dir
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy of the descriptor
	//nolint:gosec // G204: the test's own redis-server or redis-cli
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := start(cmd); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited tells whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill kills the process's whole group with SIGKILL and waits until the
// process has been reaped, for at most killTimeout.
func (p *process) kill() error {
	if p.exited() {
		return nil
	}
	pid := p.cmd.Process.Pid
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing process group %d: %w", pid, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(killTimeout):
		return fmt.Errorf("process %d still not reaped %v after SIGKILL", pid, killTimeout)
	}
}

// killTimeout bounds the wait for a killed process to be reaped.
const killTimeout = 10 * time.Second

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may take it before the server binds it; the server then
// fails with "Address already in use" and the caller tries other ports.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// logTail returns the last lines of the file at path (at most about 4 KiB),
// for error messages.
func logTail(path string) string {
	f, err := os.Open(path) //nolint:gosec // G304: a path under the test's temp dir
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	const max = 4 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		_, _ = f.Seek(-max, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	if i := bytes.IndexByte(b, '\n'); len(b) >= max && i >= 0 {
		b = b[i+1:] // a partial first line
	}
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return "(the log is empty)"
	}
	return s
}
