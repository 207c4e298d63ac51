package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/jwt"
	"github.com/sessiond/sessiond/sessiondtest"
)

// The server keeps file descriptors for REST and health checks when
// WebSockets fill up. Measured before the socket cap: one holder of a valid
// JWT opening sockets with fresh device ids ran the process out of file
// descriptors, and REST, health and validation all stopped answering. Here
// the real binary runs with an open files limit of 512: one subject stops
// at its policy's session cap, a flood of subjects stops at the socket cap
// (the limit less 256 kept), and /healthz and validations answer
// throughout.
func TestFileDescriptorsKeptForREST(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary under a low open files limit; skipped with -short")
	}
	bin := buildSessiond(t)
	dataDir := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "sessiond.log")
	secret := "exhaust-secret-0123456789abcdef0123456789"
	addr := freeAddr(t)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("sessiond stderr:\n%s", b)
		}
	})
	// dash's ulimit sets the soft and hard limits; Go raises the soft one
	// to the hard one at start, so the server sees exactly 512.
	startRaw(t, "/bin/sh", logPath, "-c", `ulimit -n 512 && exec "$0" "$@"`, bin, "serve",
		"--addr", addr, "--data-dir", dataDir, "--log-format", "json", "--access-log=false",
		"--jwt-secret", secret, "--ws-connects-per-address", "1000000", "--ws-connects-per-subject", "1000000")
	hc := &http.Client{Timeout: 5 * time.Second}
	waitReadyAt(t, hc, "http://"+addr)
	c := client.New(addr, readKey(t, dataDir))
	created, err := c.Create(context.Background(), client.CreateRequest{Subject: "bystander"})
	if err != nil {
		t.Fatal(err)
	}
	stillServes := func(when string) {
		t.Helper()
		resp, err := hc.Get("http://" + addr + "/healthz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: /healthz: %v %v", when, err, resp)
		}
		resp.Body.Close()
		if _, err := c.Validate(context.Background(), created.Token, nil); err != nil {
			t.Fatalf("%s: validation: %v", when, err)
		}
	}
	var (
		mu    sync.Mutex
		socks []*websocket.Conn
	)
	t.Cleanup(func() {
		for _, s := range socks {
			_ = s.CloseNow()
		}
	})
	dial := func(subject, device string) (int, error) {
		tok, err := jwt.Sign([]byte(secret), subject, time.Hour, time.Now())
		if err != nil {
			return 0, err
		}
		s, resp, err := wsDial(t, "ws://"+addr+"/v1/connect?device_id="+device, wsOpts{token: tok})
		if err != nil {
			if resp != nil {
				return resp.StatusCode, nil
			}
			return 0, err
		}
		if _, err := readAck(s); err != nil {
			return 0, err
		}
		mu.Lock()
		socks = append(socks, s)
		mu.Unlock()
		return http.StatusSwitchingProtocols, nil
	}

	// One subject, ever new device ids: its policy's cap stops it.
	var status int
	n := 0
	for ; n < 200; n++ {
		if status, err = dial("mallory", fmt.Sprint("device-", n)); err != nil {
			t.Fatal(err)
		}
		if status != http.StatusSwitchingProtocols {
			break
		}
	}
	if n != sessiond.DefaultMaxPerSubject || status != http.StatusConflict {
		t.Fatalf("one subject with fresh device ids: %d sockets, then HTTP %d; want %d, then 409 limit_reached", n, status, sessiond.DefaultMaxPerSubject)
	}
	stillServes("after one subject's flood")

	// Many subjects at once: the socket cap stops them.
	const flood = 400
	statuses := make([]int, flood)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range flood {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			st, err := dial(fmt.Sprint("user-", i), "glasses")
			if err != nil {
				t.Errorf("dial %d: %v", i, err)
			}
			statuses[i] = st
		})
	}
	wg.Wait()
	counts := map[int]int{}
	for _, st := range statuses {
		counts[st]++
	}
	open := len(socks)
	budget := 512 - 256
	if open != budget || counts[http.StatusServiceUnavailable] != flood-(budget-sessiond.DefaultMaxPerSubject) {
		t.Fatalf("flood of %d subjects: statuses %v, %d sockets open in all; want the cap %d (then 503)", flood, counts, open, budget)
	}
	stillServes("with every socket taken")
	st, err := c.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.WebSocket == nil || int(st.WebSocket.RefusedFull) != counts[http.StatusServiceUnavailable] {
		t.Fatalf("refused_full %+v, want %d", st.WebSocket, counts[http.StatusServiceUnavailable])
	}
	t.Logf("open files limit 512: one subject stopped at %d sessions (409); %d subjects: %d sockets, %d refused with 503; /healthz and validation answered throughout",
		n, flood, open, counts[http.StatusServiceUnavailable])

	// Sockets that close make room again.
	for _, s := range socks[:10] {
		_ = s.Close(websocket.StatusNormalClosure, "")
	}
	sessiondtest.Eventually(t, "a place to free up", func() bool {
		st, err := dial("late", "glasses")
		return err == nil && st == http.StatusSwitchingProtocols
	})
}
