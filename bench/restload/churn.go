package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// churn is -op churn: a background load of lifecycle events, not a
// measurement. For -d it creates -rate sessions a second at an even pace
// and revokes each as soon as it is created (events created, ending,
// ended: three a session), on up to -c workers. A tick that finds every
// worker busy is skipped and counted, so the rate is a ceiling, never made
// up for later. It prints one line: what it did and at what rate.
func (c *caller) churn(o options) error {
	interval := time.Duration(float64(time.Second) / o.rate)
	ticks := make(chan int)
	var created, revoked, failed atomic.Int64
	var firstErr atomic.Value
	fail := func(err error) {
		failed.Add(1)
		firstErr.CompareAndSwap(nil, err.Error())
	}
	prefix := "restload-churn-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	var wg sync.WaitGroup
	for range o.conns {
		wg.Go(func() {
			for k := range ticks {
				body := []byte(`{"subject":"` + prefix + strconv.Itoa(k) + `"}`)
				status, resp, err := c.post("/v1/sessions", body)
				if err == nil && status != http.StatusCreated {
					err = fmt.Errorf("POST /v1/sessions: %d %s", status, resp)
				}
				var out struct {
					ID string `json:"id"`
				}
				if err == nil {
					err = json.Unmarshal(resp, &out)
				}
				if err != nil {
					fail(err)
					continue
				}
				created.Add(1)
				if err := c.revoke(out.ID); err != nil {
					fail(err)
					continue
				}
				revoked.Add(1)
			}
		})
	}
	start := time.Now()
	skipped := 0
	for k := 0; ; k++ {
		at := start.Add(time.Duration(k) * interval)
		if at.Sub(start) >= o.duration {
			break
		}
		time.Sleep(time.Until(at))
		select {
		case ticks <- k:
		default:
			skipped++
		}
	}
	close(ticks)
	wg.Wait()
	took := time.Since(start)
	fmt.Printf("churn: %d created and %d revoked in %v (%.0f/s; asked %.0f/s), %d ticks skipped, %d failed\n",
		created.Load(), revoked.Load(), took.Round(time.Millisecond), float64(revoked.Load())/took.Seconds(), o.rate, skipped, failed.Load())
	if e := firstErr.Load(); e != nil {
		return fmt.Errorf("%d create or revoke failed, the first: %s", failed.Load(), e)
	}
	return nil
}

// revoke sends DELETE /v1/sessions/{id}; 204 is success.
func (c *caller) revoke(id string) error {
	req, err := http.NewRequest(http.MethodDelete, c.base+"/v1/sessions/"+id, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", c.auth)
	r, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(r.Body, 512))
	if r.StatusCode != http.StatusNoContent {
		return fmt.Errorf("DELETE /v1/sessions/%s: %d %s", id, r.StatusCode, b)
	}
	return nil
}
