package httpapi_test

// Tests that nothing acknowledged is lost and that secrets do not leak:
// no token or token hash in any read, and concurrent creates all readable.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sessiond/sessiond"
)

func TestTokensAndHashesNeverAppearInReads(t *testing.T) {
	e := htStart(t, nil)
	st := e.openEvents("", nil)
	c := e.create(`{"subject":"alice","device":{"id":"d1"},"metadata":{"k":"v"}}`)
	r := e.send("POST", "/v1/sessions/"+c.ID+"/rotate", "")
	htWantStatus(t, r, http.StatusOK)
	rotated := htDecode[htValidated](t, r).Token
	other := e.createFor("alice")
	htWantEvents(t, st, 0, [2]string{"created", c.ID}, [2]string{"rotated", c.ID}, [2]string{"created", other.ID})

	var secrets []string
	for _, tok := range []string{c.Token, rotated, other.Token} {
		_, h, err := sessiond.ParseToken(tok)
		if err != nil {
			t.Fatal(err)
		}
		secret := tok[3:51] // the token less its prefix and the session id it carries
		secrets = append(secrets, tok, secret, h.String(), strings.ToUpper(h.String()))
	}
	reads := map[string]htResp{
		"get":            e.send("GET", "/v1/sessions/"+c.ID, ""),
		"list":           e.send("GET", "/v1/sessions", ""),
		"list by filter": e.send("GET", "/v1/sessions?subject=alice&state=active&limit=1", ""),
		"subject list":   e.send("GET", "/v1/subjects/alice/sessions", ""),
		"stats":          e.send("GET", "/v1/stats", ""),
		// A validation's response carries no token unless it rotated.
		"validate": e.validate(rotated),
	}
	for name, r := range reads {
		htWantStatus(t, r, http.StatusOK)
		for _, s := range secrets {
			if bytes.Contains(r.body, []byte(s)) {
				t.Errorf("%s: response contains a token or token hash %q: %s", name, s, r)
			}
		}
		for _, key := range []string{"token", "hash", "Hash", "prev"} {
			if bytes.Contains(r.body, []byte(`"`+key)) || bytes.Contains(r.body, []byte(key+`"`)) {
				t.Errorf("%s: response has a %q field: %s", name, key, r)
			}
		}
	}
	// The session JSON has exactly the documented keys, in every response
	// that carries one (htDecode also rejects unknown fields).
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(reads["get"].body, &raw); err != nil {
		t.Fatal(err)
	}
	allowed := []string{"id", "subject", "device", "metadata", "policy", "state", "end_reason", "created_at",
		"last_active_at", "expires_at", "idle_timeout", "rotated_at", "ended_at", "state_since", "hibernations", "version", "generation"}
	for k := range raw {
		if !slices.Contains(allowed, k) {
			t.Errorf("session JSON has key %q, which is not a documented session field", k)
		}
	}
	// Nothing token-like in a session read: every token starts with sd_.
	if body := e.send("GET", "/v1/sessions/"+other.ID, "").body; bytes.Contains(body, []byte("sd_")) {
		t.Errorf("GET of a session shows something token-like: %s", body)
	}
}

func TestConcurrentCreatesAreAllAcknowledgedAndReadable(t *testing.T) {
	e := htStart(t, nil)
	const n, subjects = 48, 6
	results := make(chan htResp, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf(`{"subject":"user-%d"}`, i%subjects)
			ctx, cancel := context.WithTimeout(context.Background(), htRequestTimeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "POST", e.ts.URL+"/v1/sessions", strings.NewReader(body))
			if err != nil {
				results <- htResp{status: -1, body: []byte(err.Error())}
				return
			}
			req.Header.Set("Authorization", "Bearer "+htKey)
			resp, err := e.ts.Client().Do(req)
			if err != nil {
				results <- htResp{status: -1, body: []byte(err.Error())}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				results <- htResp{status: -1, body: []byte(err.Error())}
				return
			}
			results <- htResp{status: resp.StatusCode, header: resp.Header, body: b}
		})
	}
	wg.Wait()
	close(results)
	var ids, tokens []string
	for r := range results {
		htWantStatus(t, r, http.StatusCreated)
		c := htDecode[htCreated](t, r)
		ids = append(ids, c.ID)
		tokens = append(tokens, c.Token)
	}

	// Every acknowledged create is listed exactly once, in its subject's
	// list, and its token validates.
	all, _ := e.listAll(url.Values{"limit": {"7"}})
	htSameSet(t, "list after concurrent creates", htIDs(all), ids)
	var bySubject []string
	for s := range subjects {
		r := e.send("GET", fmt.Sprintf("/v1/subjects/user-%d/sessions", s), "")
		htWantStatus(t, r, http.StatusOK)
		bySubject = append(bySubject, htIDs(htDecode[htList](t, r).Sessions)...)
	}
	htSameSet(t, "subject lists after concurrent creates", bySubject, ids)
	for _, tok := range tokens {
		htWantStatus(t, e.validate(tok), http.StatusOK)
	}
	if st := e.stats(); st.Total != n || st.Sessions["active"] != n || st.Subjects != subjects {
		t.Errorf("got stats total %d, active %d, subjects %d; want %d, %d, %d", st.Total, st.Sessions["active"], st.Subjects, n, n, subjects)
	}
}
