package pebble

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/sessiond/sessiond"
)

// DefaultMinFreeBytes is the free space the store keeps on its filesystem
// when Options leave MinFreeBytes zero: 256 MiB, room for a few flushes of
// the 32 MiB memtable and the compactions that reclaim space.
const DefaultMinFreeBytes = 256 << 20

const (
	// spaceRefresh is how long a reading of the free space is trusted while
	// there is at least twice the threshold free; below that, every group
	// commit reads it again.
	spaceRefresh = 250 * time.Millisecond
	// bgLogEvery is how often Pebble's background errors are logged at most
	// while they repeat: its flushes are retried in a tight loop.
	bgLogEvery = 10 * time.Second
	// resumeFree is the free space at which writes are tried again after
	// Pebble met ENOSPC in the background, when no successful flush or
	// compaction has said so first and the threshold is lower (or off).
	resumeFree = 64 << 20
	// closeWait bounds Close: past it, writes stuck in Pebble (a full disk
	// stalls them) are left to the process's exit.
	closeWait = 10 * time.Second
)

var discard = slog.New(slog.DiscardHandler)

// errSpaceUnknown: this system gives no way to read the free space.
var errSpaceUnknown = errors.New("reading the free space is not supported on this system")

// health is what the store knows about its disk: the free space, whether
// Pebble met ENOSPC in the background, and whether Pebble failed for good.
// It exists before the Pebble database does, so that Pebble's logger and
// event listener can report to it while the database opens.
type health struct {
	dir       string
	min       uint64 // 0: no threshold
	log       *slog.Logger
	freeBytes func(dir string) (uint64, error) // the package's freeBytes; tests replace it

	mu      sync.Mutex
	free    uint64 // last reading
	freeErr error  // of the last reading
	at      time.Time
	low     bool // the last check refused writes for the threshold

	bgFull   atomic.Bool   // Pebble met ENOSPC in the background since its last success
	bgFails  atomic.Uint64 // ENOSPC reported in the background, ever
	watching atomic.Bool   // awaitSpace runs (one at most)

	bgMu      sync.Mutex
	bgLogged  time.Time
	bgSkipped int

	refusedLow    atomic.Uint64 // writes refused below the threshold
	refusedFull   atomic.Uint64 // ... after Pebble met ENOSPC in the background
	refusedFailed atomic.Uint64 // ... after Pebble failed for good

	failOnce sync.Once
	failed   chan struct{} // closed when Pebble calls Fatalf
	failure  error         // set before failed is closed

	// nudge asks Pebble to flush again (set once the database is open):
	// after a flush failed for a full disk, Pebble may wait for a write
	// to try again, and the write it holds waits for the flush.
	nudge     atomic.Pointer[func()]
	closing   chan struct{} // closed when the store closes
	closeOnce sync.Once
}

func newHealth(dir string, min int64, log *slog.Logger) *health {
	h := &health{dir: dir, log: log, freeBytes: freeBytes, failed: make(chan struct{}), closing: make(chan struct{})}
	switch {
	case min == 0:
		h.min = DefaultMinFreeBytes
	case min > 0:
		h.min = uint64(min)
	}
	return h
}

// space returns the free space, read again if the last reading is older
// than spaceRefresh or if fresh is set.
func (h *health) space(fresh bool) (uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if fresh || h.at.IsZero() || now.Sub(h.at) >= spaceRefresh {
		h.free, h.freeErr = h.freeBytes(h.dir)
		h.at = now
	}
	return h.free, h.freeErr
}

// SpaceError is a store opened with less free space than it must keep.
// It matches sessiond.ErrStoreFull under errors.Is.
type SpaceError struct {
	Dir  string
	Free uint64 // bytes free on Dir's filesystem
	Need uint64 // Options.MinFreeBytes
}

func (e *SpaceError) Error() string {
	return fmt.Sprintf("pebble: %s free on %s, need %s (Options.MinFreeBytes): free space or lower the threshold",
		FormatBytes(e.Free), e.Dir, FormatBytes(e.Need))
}

// Is makes a SpaceError match sessiond.ErrStoreFull.
func (e *SpaceError) Is(target error) bool { return target == sessiond.ErrStoreFull }

// checkOpen fails with a *SpaceError if there is less free space than the
// threshold: opening replays Pebble's log and flushes it, which a full disk
// would have retried forever.
func (h *health) checkOpen() error {
	if h.min == 0 {
		return nil
	}
	free, err := h.space(true)
	if errors.Is(err, errSpaceUnknown) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pebble: reading the free space of %s: %w", h.dir, err)
	}
	if free < h.min {
		return &SpaceError{Dir: h.dir, Free: free, Need: h.min}
	}
	return nil
}

// admit says whether a group of n writes may be committed now; if not, it
// returns the error every one of them gets. It reads the free space again
// on every call once it is below twice the threshold.
func (h *health) admit(n int) error {
	select {
	case <-h.failed:
		h.refusedFailed.Add(uint64(n))
		return h.failure
	default:
	}
	if h.min == 0 && !h.bgFull.Load() {
		return nil
	}
	h.mu.Lock()
	fresh := h.low || h.free < 2*h.min
	h.mu.Unlock()
	free, err := h.space(fresh || h.bgFull.Load())
	if err != nil {
		// Not knowing is no reason to refuse: Pebble reports a real ENOSPC.
		return nil
	}
	if h.bgFull.Load() {
		if free < max(h.min, resumeFree) {
			h.refusedFull.Add(uint64(n))
			return &sessiond.Error{Code: sessiond.CodeStoreFull,
				Message: fmt.Sprintf("the store's disk is full (%s free): writes are refused, reads work", FormatBytes(free))}
		}
		// A flush or compaction that succeeded meanwhile has cleared it
		// and said so already.
		if h.bgFull.CompareAndSwap(true, false) {
			h.log.Info("pebble: free space is back after the disk filled up; writes accepted",
				"component", "pebble", "dir", h.dir, "free_bytes", free)
		}
	}
	if h.min == 0 {
		return nil
	}
	low := free < h.min
	h.mu.Lock()
	changed := low != h.low
	h.low = low
	h.mu.Unlock()
	if changed && low {
		h.log.Warn("pebble: free space below the threshold; writes are refused until space is freed",
			"component", "pebble", "dir", h.dir, "free_bytes", free, "min_free_bytes", h.min)
	} else if changed {
		h.log.Info("pebble: free space back above the threshold; writes accepted",
			"component", "pebble", "dir", h.dir, "free_bytes", free, "min_free_bytes", h.min)
	}
	if low {
		h.refusedLow.Add(uint64(n))
		return &sessiond.Error{Code: sessiond.CodeStoreFull,
			Message: fmt.Sprintf("the store's disk is nearly full (%s free, %s kept free): writes are refused, reads work",
				FormatBytes(free), FormatBytes(h.min))}
	}
	return nil
}

// fail records that Pebble failed for good (it called Fatalf). Writes are
// refused from then on; an ENOSPC is reported as store_full.
func (h *health) fail(msg string) {
	h.failOnce.Do(func() {
		if strings.Contains(msg, syscall.ENOSPC.Error()) {
			h.failure = &sessiond.Error{Code: sessiond.CodeStoreFull,
				Message: "the store's disk filled up: writes are refused until sessiond restarts with free space; reads work",
				Err:     errors.New(msg)}
		} else {
			h.failure = &sessiond.Error{Code: sessiond.CodeUnavailable,
				Message: "the store failed: writes are refused until sessiond restarts; reads work",
				Err:     errors.New(msg)}
		}
		close(h.failed)
	})
}

// commit commits b durably. Pebble reports a failed log write by calling
// its logger's Fatalf, which must not return; ours ends the goroutine it
// runs on (see logger.Fatalf), so the commit runs on a goroutine of its
// own and a failure is seen here.
func (h *health) commit(b *cpebble.Batch) error {
	done := make(chan error, 1)
	go func() { done <- b.Commit(cpebble.Sync) }()
	select {
	case err := <-done:
		return err
	case <-h.failed:
		return h.failure
	}
}

// backgroundError is Pebble's EventListener.BackgroundError: failed flushes
// and compactions, which Pebble retries (flushes in a tight loop). An ENOSPC
// refuses writes until a flush or compaction succeeds or space is back, so
// that they fail at once rather than stall in Pebble, and starts the space
// watcher (awaitSpace) unless it runs. Repeats are logged at most every
// bgLogEvery.
func (h *health) backgroundError(err error) {
	if errors.Is(err, syscall.ENOSPC) {
		h.bgFails.Add(1)
		if !h.bgFull.Swap(true) {
			h.log.Error("pebble: the disk is full: writes are refused until space is freed",
				"component", "pebble", "dir", h.dir, "err", err)
		}
		if h.watching.CompareAndSwap(false, true) {
			go h.awaitSpace()
		}
	}
	h.bgMu.Lock()
	defer h.bgMu.Unlock()
	if now := time.Now(); now.Sub(h.bgLogged) >= bgLogEvery {
		h.log.Error("pebble: background error", "component", "pebble", "err", err, "repeated", h.bgSkipped)
		h.bgLogged, h.bgSkipped = now, 0
		return
	}
	h.bgSkipped++
}

// awaitSpace is the one space watcher (h.watching says it runs). While
// Pebble's background work has met a full disk (h.bgFull, cleared by a
// flush or compaction that succeeds, or by admit once space is back), it
// reads the free space every spaceRefresh, and once there is room asks
// Pebble to flush: after a failed flush Pebble may wait for a write to try
// again, and the writes stalled in Pebble wait for that flush. It asks
// again after every new ENOSPC (the flush it asked for may fail too, if
// the space went again), at most once a tick. It ends when the flag is
// cleared, the store closes or Pebble fails for good.
func (h *health) awaitSpace() {
	t := time.NewTicker(spaceRefresh)
	defer t.Stop()
	var nudged uint64 // h.bgFails when Pebble was last asked to flush
	for {
		if !h.bgFull.Load() {
			h.watching.Store(false)
			// An ENOSPC reported since the load above, while watching was
			// still set, started no watcher: this one goes on for it,
			// unless another has started meanwhile.
			if !h.bgFull.Load() || !h.watching.CompareAndSwap(false, true) {
				return
			}
		}
		select {
		case <-h.closing:
			h.watching.Store(false)
			return
		case <-h.failed:
			h.watching.Store(false)
			return
		case <-t.C:
		}
		fails := h.bgFails.Load()
		if fails == nudged || !h.bgFull.Load() {
			continue
		}
		if free, err := h.space(true); err == nil && free >= max(h.min, resumeFree) {
			if f := h.nudge.Load(); f != nil {
				(*f)()
			}
			nudged = fails
		}
	}
}

func (h *health) listener() *cpebble.EventListener {
	return &cpebble.EventListener{
		BackgroundError: h.backgroundError,
		FlushEnd: func(info cpebble.FlushInfo) {
			if info.Err == nil && h.bgFull.Swap(false) {
				h.log.Info("pebble: a flush succeeded after the disk filled up; writes accepted", "component", "pebble", "dir", h.dir)
			}
		},
		CompactionEnd: func(info cpebble.CompactionInfo) {
			if info.Err == nil && h.bgFull.Swap(false) {
				h.log.Info("pebble: a compaction succeeded after the disk filled up; writes accepted", "component", "pebble", "dir", h.dir)
			}
		},
		// Pebble's default would call Fatalf; the read that found the
		// corruption fails with an error anyway.
		DataCorruption: func(info cpebble.DataCorruptionInfo) {
			h.log.Error("pebble: data corruption", "component", "pebble", "info", info.String())
		},
	}
}

// DiskStats is what a Store reports about its disk.
type DiskStats struct {
	// FreeBytes is the free space on the store's filesystem for
	// unprivileged users, as last read (at most spaceRefresh ago).
	FreeBytes uint64
	// MinFreeBytes is the threshold below which writes are refused; 0 if off.
	MinFreeBytes uint64
	// WritesRefused counts writes refused since Open, by reason: "low_space"
	// (below MinFreeBytes), "disk_full" (Pebble met ENOSPC in the background)
	// and "failed" (Pebble failed for good; a restart is needed).
	WritesRefused map[string]uint64
	// Failed is set once Pebble failed for good: writes are refused until
	// the process restarts.
	Failed bool
	// Quarantined is how many records are set aside because they did not
	// decode (Open moves them; Check lists them).
	Quarantined int
}

// logger routes Pebble's messages to slog.
type logger struct {
	l      *slog.Logger
	health *health
}

func (l logger) Infof(format string, args ...any) {
	l.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l logger) Errorf(format string, args ...any) {
	l.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf is called by Pebble on errors it cannot recover from, above all a
// failed write of its log or manifest (ENOSPC, EIO), and must not return:
// Pebble would go on as if the write had succeeded. It records the failure,
// so that writes are refused from then on and reads go on, and ends the
// calling goroutine: a commit's (run apart by health.commit) or one of
// Pebble's own background goroutines, whose deferred unlocks run.
func (l logger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.l.Error("pebble: fatal: "+msg+"; writes are refused until restart", "component", "pebble")
	l.health.fail(msg)
	runtime.Goexit()
}

// FormatBytes writes a byte count the way people read it: "3.1 MiB".
func FormatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// close stops awaitSpace.
func (h *health) close() { h.closeOnce.Do(func() { close(h.closing) }) }
