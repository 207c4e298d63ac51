package client_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/jwt"
	"github.com/sessiond/sessiond/ws"
)

func ExampleDialWS() {
	ctx := context.Background()
	secret := []byte("an example secret of at least 32 bytes")

	// An in-process server: the engine on the memory store, and the
	// WebSocket edge checking HS256 credentials.
	m, _ := sessiond.New(sessiond.Config{Store: inmem.New(inmem.Options{}), Policies: []sessiond.Policy{sessiond.DevicePolicy()}})
	_ = m.Start(ctx)
	defer m.Close()
	v, _ := jwt.New(ctx, jwt.Config{Secret: secret})
	defer v.Close()
	edge, _ := ws.New(ws.Config{Manager: m, Verify: func(ctx context.Context, tok string) (string, time.Time, error) {
		c, err := v.Verify(ctx, tok)
		if err != nil {
			return "", time.Time{}, err
		}
		return c.Subject, c.ExpiresAt, nil
	}})
	srv := httptest.NewServer(edge)
	defer srv.Close()
	defer edge.Shutdown(ctx)

	c, err := client.DialWS(ctx, client.WSConfig{
		URL: srv.URL, // ws://host:port; /v1/connect is added
		Token: func(context.Context) (string, error) {
			return jwt.Sign(secret, "alice", time.Hour, time.Now()) // your identity provider's JWT
		},
		DeviceID:   "glasses-7",
		DeviceType: "glasses",
		OnState: func(ev client.WSEvent) {
			switch ev.State {
			case client.WSConnected:
				fmt.Printf("%v resumed=%v\n", ev.State, ev.Resumed)
			case client.WSDisconnected:
				fmt.Printf("%v code=%d\n", ev.State, ev.Code)
			default:
				fmt.Println(ev.State)
			}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("session token issued:", c.Ack().SessionToken != "")
	if err := c.Ping(ctx); err != nil {
		fmt.Println(err)
	}
	_ = c.Close(ctx)
	fmt.Println(c.Err())
	// Output:
	// connecting
	// connected resumed=false
	// session token issued: true
	// disconnected code=1000
	// stopped
	// client: websocket closed
}
