package ws_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sessiond/sessiond/wire"
)

// Handshakes still under way when Shutdown begins: Shutdown returns once
// every socket is closed, and every socket that was upgraded closes with
// 1001, also one upgraded after Shutdown collected the sockets to close.
// Raced many rounds (under -race, an upgrade counted after Shutdown began
// waiting was a data race).
func TestShutdownRacingHandshakes(t *testing.T) {
	for round := range 20 {
		e := newEnv(t, unlimited)
		tokens := make([]string, 8)
		for i := range tokens {
			tokens[i] = e.token(fmt.Sprint("racer-", i), time.Hour)
		}
		var wg sync.WaitGroup
		codes := make(chan websocket.StatusCode, len(tokens))
		for i, tok := range tokens {
			wg.Go(func() {
				c, _, err := e.dial(tok, fmt.Sprintf("device_id=d%d", i), nil)
				if err != nil {
					return // refused: the edge was closing
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				for {
					if _, _, err := c.c.Read(ctx); err != nil {
						codes <- websocket.CloseStatus(err)
						return
					}
				}
			})
		}
		for range round % 5 * 200 { // vary how many handshakes get through first
			runtime.Gosched()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := e.edge.Shutdown(ctx)
		cancel()
		wg.Wait()
		close(codes)
		if err != nil {
			t.Fatalf("round %d: Shutdown: %v", round, err)
		}
		for code := range codes {
			if code != websocket.StatusCode(wire.CloseGoingAway) {
				t.Fatalf("round %d: a socket ended with %d; want %d (going away)", round, code, wire.CloseGoingAway)
			}
		}
	}
}
