//go:build unix

package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessiond/sessiond/sessiondtest"
)

// TestSIGHUPReloadsTheCertificate sends SIGHUP to the test process. That is
// safe: the running server has asked for SIGHUP (signal.Notify) before it
// answers /readyz, so the signal is delivered to it instead of ending the
// process.
func TestSIGHUPReloadsTheCertificate(t *testing.T) {
	cert := newTestCert(t)
	ts := startServer(t, tlsConfig(t, cert))
	// A clock that never moves: only the signal can cause a reload.
	frozen := &fakeNow{t: time.Now()}
	setReloaderClock(ts.s, frozen.now)

	next := writeTestCert(t, cert.certFile, cert.keyFile)
	if got := servedSerial(t, ts.addr); got.Cmp(cert.serial) != 0 {
		t.Fatalf("served serial %v before the signal, want the first %v", got, cert.serial)
	}
	hup(t)
	sessiondtest.Eventually(t, "the new certificate after SIGHUP", func() bool { return servedSerial(t, ts.addr).Cmp(next.serial) == 0 })
	if !strings.Contains(ts.logs.String(), `"why":"SIGHUP"`) {
		t.Errorf("no log line for the reload on SIGHUP:\n%s", ts.logs)
	}

	// A SIGHUP with broken files logs and keeps the certificate.
	replaceFile(t, cert.certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n"))
	hup(t)
	sessiondtest.Eventually(t, "the failed reload's log line", func() bool {
		return strings.Contains(ts.logs.String(), "TLS certificate reload failed; keeping the certificate in use")
	})
	if got := servedSerial(t, ts.addr); got.Cmp(next.serial) != 0 {
		t.Fatalf("served serial %v after a failed reload, want %v", got, next.serial)
	}
}

func hup(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}
