package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/internal/tmpfstest"
	"github.com/sessiond/sessiond/pebble"
	"github.com/sessiond/sessiond/sessiondtest"
)

// The disk test: the real binary on a data directory on a small tmpfs
// that the test mounts (as root; under CI=true it fails rather than skip).
// Creates with 1 KiB of metadata until the server answers 503 store_full;
// then reads must work, freeing space must let writes resume without a
// restart, and after a restart every acknowledged create must be there.
//
//	go test -run TestDiskFull -v ./cmd/sessiond/
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	mnt := tmpfstest.Mount(t, 512<<20)
	filler := filepath.Join(mnt, "filler")
	tmpfstest.Fill(t, filler, 320<<20)
	const minFree = 128 << 20

	h := newHarness(t)
	h.dataDir = filepath.Join(mnt, "data")
	p := h.start("--min-free-space", "128MiB")
	freeAtStart := tmpfstest.Free(t, mnt)

	start := time.Now()
	acked, refused := createUntilRefused(p, "disk-writer")
	elapsed := time.Since(start)
	freeAtRefusal := tmpfstest.Free(t, mnt)
	for _, err := range refused {
		var se *sessiond.Error
		if !errors.As(err, &se) || se.Code != sessiond.CodeStoreFull {
			t.Fatalf("a create failed with %v, want the code store_full", err)
		}
	}
	if len(acked) == 0 {
		t.Fatal("no create acknowledged before the threshold")
	}
	if freeAtRefusal == 0 || freeAtRefusal >= minFree {
		t.Errorf("creates refused with %d bytes free, want between 0 and %d", freeAtRefusal, minFree)
	}
	m := scrape(t, p.addr)
	free := metricValue(t, m, "sessiond_store_free_bytes")
	refusedLow := metricValue(t, m, `sessiond_store_writes_refused_total{reason="low_space"}`)
	if free >= minFree || refusedLow < 16 || metricValue(t, m, "sessiond_store_min_free_bytes") != minFree {
		t.Errorf("/metrics: free %v, refused for low space %v, want free below %d and 16 or more refused:\n%s",
			free, refusedLow, minFree, grepLines(m, "sessiond_store_"))
	}

	// Reads go on: every acknowledged session reads and validates, and the
	// server stays ready.
	h.checkAll(p, acked)
	if err := p.c.Ready(context.Background()); err != nil {
		t.Errorf("readiness while writes are refused: %v", err)
	}
	size, alloc := du(t, filepath.Join(h.dataDir, "store"))
	t.Logf("%d creates (1 KiB of metadata each, %.1f MiB of metadata) acknowledged in %v, from %s free at start; "+
		"then refused with 503 store_full at %s free (threshold %s; sessiond_store_free_bytes %s, %v writes refused): %v; "+
		"the store's files hold %s and take %s of the disk (Pebble preallocates its logs)",
		len(acked), float64(len(acked)*len(padMeta))/(1<<20), elapsed.Round(time.Millisecond), pebble.FormatBytes(freeAtStart),
		pebble.FormatBytes(freeAtRefusal), pebble.FormatBytes(minFree), pebble.FormatBytes(uint64(free)), refusedLow, refused[0],
		pebble.FormatBytes(size), pebble.FormatBytes(alloc))

	// Space back: writes resume without a restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	r, err := p.c.Create(context.Background(), client.CreateRequest{Subject: "after", Metadata: padMeta})
	if err != nil {
		t.Fatalf("create after freeing space: %v", err)
	}
	acked = append(acked, ack{id: r.ID, token: r.Token, subject: "after"})

	// A graceful stop and a start: everything acknowledged is there.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	if p.err != nil {
		t.Fatalf("graceful stop: %v", p.err)
	}
	p = h.start("--min-free-space", "128MiB")
	h.checkAll(p, acked)
	t.Logf("after freeing space: creates accepted again; after a restart all %d acknowledged sessions found and valid", len(acked))
}

// du returns the bytes of the files under dir and the disk they take.
func du(t *testing.T, dir string) (size, alloc uint64) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		size += uint64(info.Size()) //nolint:gosec // G115: not negative
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			alloc += uint64(st.Blocks) * 512 //nolint:gosec,unconvert // G115: not negative
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return size, alloc
}

// metricValue reads one sample from Prometheus text.
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no %s in /metrics:\n%s", series, grepLines(text, "sessiond_store_"))
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitLog waits until p's log holds every one of wants, failing the test
// if p exits first.
func waitLog(t *testing.T, p *proc, wants ...string) {
	t.Helper()
	sessiondtest.Eventually(t, fmt.Sprintf("sessiond to log %q", wants), func() bool {
		logs := p.log()
		if !slices.ContainsFunc(wants, func(w string) bool { return !strings.Contains(logs, w) }) {
			return true
		}
		select {
		case <-p.exited:
			t.Fatalf("sessiond exited (%v) before logging %q:\n%s", p.err, wants, logs)
		default:
		}
		return false
	})
}

// A restart on a full disk: with the threshold on, the server exits at
// once saying how much is free and what it needs; with it off, Pebble
// retries its flush on the full disk forever, and SIGTERM or SIGINT stop
// that start promptly. With space back, everything written before is there.
func TestStartupOnFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	mnt := tmpfstest.Mount(t, 128<<20)
	dataDir := filepath.Join(mnt, "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "api_key"), []byte("sdk_full_disk_test_key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Sessions in the store, part of them only in Pebble's log: a start
	// replays and flushes it, which needs space.
	st, err := pebble.Open(pebble.Options{Dir: filepath.Join(dataDir, "store"), MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	var acked []ack
	for i := range 3000 {
		s, tok := sessiondtest.NewSession(fmt.Sprint("full-", i%50), time.Now())
		s.Metadata = []byte(`{"pad":"` + strings.Repeat("y", 500) + `"}`)
		if _, err := st.Create(context.Background(), sessiond.Change{Session: s}, sessiond.Limit{}); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, ack{id: s.ID, token: tok, subject: s.Subject})
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(mnt, "filler")
	tmpfstest.Fill(t, filler, 0)
	t.Logf("the tmpfs is full: %d bytes free", tmpfstest.Free(t, mnt))

	h := newHarness(t)
	h.dataDir = dataDir
	serveArgs := func(extra ...string) []string {
		return append([]string{"serve", "--addr", freeAddr(t), "--data-dir", dataDir, "--log-format", "json"}, extra...)
	}

	// Threshold on (the default, 256 MiB): out at once, with the reason.
	start := time.Now()
	p := startRaw(t, h.bin, h.logPath, serveArgs()...)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("on a full disk, sessiond did not exit within 10s")
	}
	took := time.Since(start)
	logs, _ := os.ReadFile(h.logPath)
	want := regexp.MustCompile(`sessiond: store: [0-9.]+ (B|KiB) free on ` + regexp.QuoteMeta(filepath.Join(dataDir, "store")) +
		`, need 256\.0 MiB \(min_free_space\): free space or lower the threshold`)
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) || ee.ExitCode() != 1 || !want.Match(logs) {
		t.Errorf("on a full disk: exit %v, want 1 and a line matching %s:\n%s", p.err, want, logs)
	}
	t.Logf("threshold on: exited 1 in %v: %s", took.Round(time.Millisecond), want.Find(logs))

	// Threshold off: the start hangs in Pebble; a signal stops it.
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		addr := freeAddr(t)
		p := startRaw(t, h.bin, h.logPath, "serve", "--addr", addr, "--data-dir", dataDir, "--log-format", "json", "--min-free-space", "0")
		waitLog(t, p, `"msg":"opening the store"`, "no space left on device")
		if rc := readyStatus(addr); rc == 200 {
			t.Fatalf("sessiond is ready on a full disk with the threshold off: this test needs a start that blocks")
		}
		start := time.Now()
		if err := p.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Fatalf("%v during a start blocked on the full disk: still running after 10s", sig)
		}
		took := time.Since(start)
		if after := p.log(); p.err != nil || !strings.Contains(after, `"msg":"startup interrupted; stopped before serving","stage":"opening the store"`) {
			t.Errorf("%v during the start: exit %v, want 0 and a line saying where it stopped:\n%s", sig, p.err, after)
		}
		if took > 3*time.Second {
			t.Errorf("%v during the start: exited after %v, want promptly", sig, took)
		}
		t.Logf("threshold off: the start blocked on the full disk; %v made it exit 0 in %v", sig, took.Round(time.Millisecond))
	}

	// Space back: it starts and everything written is there.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	p = h.start("--min-free-space", "16MiB")
	h.checkAll(p, acked)
	t.Logf("with space back: started, all %d sessions written before found and valid", len(acked))
}

// readyStatus is GET /readyz's status, or 0 if nothing answers.
func readyStatus(addr string) int {
	resp, err := (&http.Client{Timeout: time.Second}).Get("http://" + addr + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// With the threshold off, the disk fills under Pebble itself: the server
// must not crash. Creates fail with 503 store_full, reads go on, SIGTERM
// stops it; with room again, every acknowledged create is there.
func TestENOSPCKeepsServing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	mnt := tmpfstest.Mount(t, 48<<20)
	h := newHarness(t)
	h.dataDir = filepath.Join(mnt, "data")
	p := h.start("--min-free-space", "0")
	acked, refused := createUntilRefused(p, "enospc-writer")
	for _, err := range refused {
		var se *sessiond.Error
		if !errors.As(err, &se) || se.Code != sessiond.CodeStoreFull {
			t.Fatalf("a create failed with %v, want the code store_full", err)
		}
	}
	select {
	case <-p.exited:
		t.Fatalf("sessiond died when the disk filled: %v", p.err)
	default:
	}
	h.checkAll(p, acked)
	m := scrape(t, p.addr)
	if metricValue(t, m, "sessiond_store_failed") != 1 && metricValue(t, m, `sessiond_store_writes_refused_total{reason="disk_full"}`) == 0 {
		t.Errorf("/metrics shows no failure:\n%s", grepLines(m, "sessiond_store_"))
	}
	t.Logf("threshold off: %d creates acknowledged, then 503 store_full (%v) with %d bytes free; the server kept serving reads",
		len(acked), refused[0], tmpfstest.Free(t, mnt))

	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(40 * time.Second):
		t.Fatal("SIGTERM on a full disk: still running after 40s")
	}
	t.Logf("SIGTERM: exited in %v (%v)", time.Since(start).Round(time.Millisecond), p.err)

	tmpfstest.Resize(t, mnt, 512<<20)
	p = h.start("--min-free-space", "16MiB")
	h.checkAll(p, acked)
	t.Logf("with room again: all %d acknowledged creates found and valid", len(acked))
}

// padMeta is 1 KiB of metadata: the sessions that fill the disk.
var padMeta = json.RawMessage(`{"pad":"` + strings.Repeat("x", 1000) + `"}`)

// createUntilRefused creates sessions with 1 KiB of metadata each from 16
// writers, each writer until its first error, and returns what was
// acknowledged and the errors that stopped the writers. Each session has a
// subject of its own (prefix, writer, count), so the per-subject cap is
// never what refuses.
func createUntilRefused(p *proc, prefix string) (acked []ack, refused []error) {
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for w := range 16 {
		wg.Go(func() {
			for n := 0; ; n++ {
				subject := fmt.Sprintf("%s%02d-%d", prefix, w, n)
				r, err := p.c.Create(context.Background(), client.CreateRequest{Subject: subject, Metadata: padMeta})
				mu.Lock()
				if err != nil {
					refused = append(refused, err)
					mu.Unlock()
					return
				}
				acked = append(acked, ack{id: r.ID, token: r.Token, subject: subject})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return acked, refused
}
