package target

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
)

// Test secrets: .ci/secrets-scan fails the build when a test log shows
// one. Every token the test endpoint issues starts with oatTokenPrefix.
const (
	oatClientID     = "hookgate-crm"
	oatClientSecret = "oat-test-client-secret-6b1d"
	oatTokenPrefix  = "oat-test-token-"
)

// tokenEndpoint is a real OAuth2 token endpoint on 127.0.0.1 that counts
// requests, checks the client's credentials and issues oat-test-token-N.
type tokenEndpoint struct {
	srv       *httptest.Server
	requests  atomic.Int64
	expiresIn atomic.Int64 // seconds; 0 leaves expires_in out

	mu      sync.Mutex
	fail    int           // answer this status instead of a token, 0 = issue
	gate    chan struct{} // when set, requests wait for it to close
	lastReq url.Values    // the form of the last request, client id and secret included
	style   string        // "header" or "body": how the last request authenticated
}

func startTokenEndpoint(t testing.TB) *tokenEndpoint {
	e := &tokenEndpoint{}
	e.expiresIn.Store(3600)
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *tokenEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	n := e.requests.Add(1)
	e.mu.Lock()
	gate, fail := e.gate, e.fail
	e.mu.Unlock()
	if gate != nil {
		<-gate
	}
	_ = r.ParseForm()
	id, secret, style := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"), "body"
	if u, p, ok := r.BasicAuth(); ok {
		id, _ = url.QueryUnescape(u)
		secret, _ = url.QueryUnescape(p)
		style = "header"
	}
	e.mu.Lock()
	e.lastReq, e.style = r.PostForm, style
	e.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method != http.MethodPost || r.PostForm.Get("grant_type") != "client_credentials":
		w.WriteHeader(400)
		io.WriteString(w, `{"error":"unsupported_grant_type"}`)
	case id != oatClientID || secret != oatClientSecret:
		w.WriteHeader(401)
		io.WriteString(w, `{"error":"invalid_client","error_description":"Client authentication failed"}`)
	case fail != 0:
		w.WriteHeader(fail)
		io.WriteString(w, `{"error":"temporarily_unavailable","error_description":"maintenance"}`)
	default:
		a := map[string]any{"access_token": fmt.Sprintf("%s%d", oatTokenPrefix, n), "token_type": "bearer"}
		if s := e.expiresIn.Load(); s > 0 {
			a["expires_in"] = s
		}
		json.NewEncoder(w).Encode(a)
	}
}

func (e *tokenEndpoint) setFail(status int) {
	e.mu.Lock()
	e.fail = status
	e.mu.Unlock()
}

// hold makes requests wait until the returned func is called.
func (e *tokenEndpoint) hold() (release func()) {
	g := make(chan struct{})
	e.mu.Lock()
	e.gate = g
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		e.gate = nil
		e.mu.Unlock()
		close(g)
	}
}

// waitRequests waits (bounded) until the endpoint has seen n requests.
func (e *tokenEndpoint) waitRequests(t *testing.T, n int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); e.requests.Load() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("token endpoint saw %d requests, want %d", e.requests.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// bearerTarget is a real target on 127.0.0.1 that accepts the tokens it is
// told to (all when accept is nil) and answers 401 to the others.
type bearerTarget struct {
	srv *httptest.Server

	mu     sync.Mutex
	accept map[string]bool
	seen   map[string]int // Authorization value -> requests
	status map[int]int    // answered status -> count
	bodies []string       // the bodies of the requests answered 200
}

func startBearerTarget(t testing.TB) *bearerTarget {
	b := &bearerTarget{seen: map[string]int{}, status: map[int]int{}}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		auth := r.Header.Get("Authorization")
		b.mu.Lock()
		b.seen[auth]++
		st := 200
		if b.accept != nil && !b.accept[auth] {
			st = 401
		}
		b.status[st]++
		if st == 200 {
			b.bodies = append(b.bodies, string(body))
		}
		b.mu.Unlock()
		w.WriteHeader(st)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// only makes the target accept exactly these tokens (by number).
func (b *bearerTarget) only(ns ...int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.accept = map[string]bool{}
	for _, n := range ns {
		b.accept[fmt.Sprintf("Bearer %s%d", oatTokenPrefix, n)] = true
	}
}

func (b *bearerTarget) counts() (seen map[string]int, status map[int]int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	seen, status = map[string]int{}, map[int]int{}
	for k, v := range b.seen {
		seen[k] = v
	}
	for k, v := range b.status {
		status[k] = v
	}
	return seen, status
}

func bearer(n int) string { return fmt.Sprintf("Bearer %s%d", oatTokenPrefix, n) }

func oauthTarget(t testing.TB, targetURL string, e *tokenEndpoint, style string) config.Target {
	return config.Target{
		URL: mustURL(t, targetURL),
		Auth: config.Auth{
			Type:         config.AuthOAuth2,
			TokenURL:     mustURL(t, e.srv.URL+"/oauth2/token"),
			ClientID:     oatClientID,
			ClientSecret: config.NewSecret(oatClientSecret, "${env:CRM_CLIENT_SECRET}"),
			Scopes:       []string{"tickets:write", "contacts:read"},
			Audience:     "https://crm.example.com/api",
			AuthStyle:    style,
		},
	}
}

// fakeClock is a clock tests move by hand; Client.now reads it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func doOK(t *testing.T, c *Client) {
	t.Helper()
	var r Result
	if err := c.Do(&delivery.Delivery{ID: []byte("evt_1.0"), Body: []byte(`{"a":1}`)}, &r); err != nil || r.Status != 200 {
		t.Fatalf("Do: %v, status %d", err, r.Status)
	}
}

// TestOAuth2OneTokenForManyDeliveries: 1,000 deliveries from 16 workers at
// once share one token, fetched by one request, sent with the client
// credentials the way auth_style says.
func TestOAuth2OneTokenForManyDeliveries(t *testing.T) {
	for _, style := range []string{config.OAuth2StyleHeader, config.OAuth2StyleBody} {
		t.Run(style, func(t *testing.T) {
			e := startTokenEndpoint(t)
			b := startBearerTarget(t)
			c := newClient(t, oauthTarget(t, b.srv.URL+"/crm", e, style))
			const workers, each = 16, 1000 / 16
			var wg sync.WaitGroup
			var failed atomic.Int64
			start := make(chan struct{})
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start // all ask for the first token at once
					d := &delivery.Delivery{ID: []byte("evt_1.0"), Body: []byte(`{"a":1}`)}
					var r Result
					for range each {
						if err := c.Do(d, &r); err != nil || r.Status != 200 {
							failed.Add(1)
						}
					}
				}()
			}
			close(start)
			wg.Wait()
			n := workers * each
			if failed.Load() != 0 {
				t.Fatalf("%d of %d deliveries failed", failed.Load(), n)
			}
			if got := e.requests.Load(); got != 1 {
				t.Errorf("token endpoint saw %d requests for %d deliveries, want 1", got, n)
			}
			if seen, _ := b.counts(); seen[bearer(1)] != n || len(seen) != 1 {
				t.Errorf("target saw %v, want %d requests all with %q", seen, n, bearer(1))
			}
			e.mu.Lock()
			form, gotStyle := e.lastReq, e.style
			e.mu.Unlock()
			if gotStyle != style || form.Get("scope") != "tickets:write contacts:read" || form.Get("audience") != "https://crm.example.com/api" {
				t.Errorf("token request authenticated by %q with form %v", gotStyle, form)
			}
			if style == config.OAuth2StyleHeader && form.Has("client_secret") {
				t.Error("auth_style header sent the secret in the form too")
			}
		})
	}
}

// TestOAuth2RefreshBeforeExpiry: shortly before a token expires one
// delivery starts one background request while every delivery goes on
// with the current token; the new one is used once it arrives. Only when
// a token is about to expire do deliveries wait for its successor.
func TestOAuth2RefreshBeforeExpiry(t *testing.T) {
	e := startTokenEndpoint(t)
	b := startBearerTarget(t)
	clock := newFakeClock()
	c := newClient(t, oauthTarget(t, b.srv.URL+"/crm", e, ""))
	c.now = clock.Now

	doOK(t, c) // fetches token 1, expires_in 3600
	clock.Advance(54 * time.Minute)
	doOK(t, c)
	if got := e.requests.Load(); got != 1 {
		t.Fatalf("token endpoint saw %d requests 54 minutes into a 60-minute token, want 1", got)
	}

	// 56 minutes: inside the refresh window (the last 5 minutes). The
	// endpoint holds the refresh; deliveries must not wait for it.
	clock.Advance(2 * time.Minute)
	release := e.hold()
	for range 20 {
		doOK(t, c)
	}
	e.waitRequests(t, 2)
	if seen, _ := b.counts(); seen[bearer(1)] != 22 {
		t.Errorf("during the refresh the target saw %v, want 22 requests with token 1", seen)
	}
	release()
	waitToken(t, c, bearer(2))
	doOK(t, c)
	if seen, _ := b.counts(); seen[bearer(2)] != 1 {
		t.Errorf("after the refresh the target saw %v, want token 2", seen)
	}
	if got := e.requests.Load(); got != 2 {
		t.Errorf("token endpoint saw %d requests, want 2 (one refresh)", got)
	}

	// Past the refresh window and into the last seconds of token 2, with
	// the refresh failing: the token is no longer sent.
	e.setFail(503)
	clock.Advance(60*time.Minute - 5*time.Second)
	var r Result
	err := c.Do(&delivery.Delivery{Body: []byte("{}")}, &r)
	if !errors.Is(err, ErrToken) {
		t.Fatalf("Do with a token about to expire and the endpoint failing: %v, want ErrToken", err)
	}
	if seen, _ := b.counts(); seen[bearer(2)] != 1 {
		t.Errorf("a token in its last seconds was sent: %v", seen)
	}
}

// waitToken waits (bounded) until c's cached token is want.
func waitToken(t *testing.T, c *Client, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if tok := c.tokens.cur.Load(); tok != nil && string(tok.header) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cached token never became %q", want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestOAuth2RefetchOn401: a target that stops accepting a token before it
// expires (revoked, keys rotated) gets the delivery again with a new token
// in the same attempt; concurrent 401s share one token request. A target
// that refuses every token does not turn each delivery into a token
// request.
func TestOAuth2RefetchOn401(t *testing.T) {
	e := startTokenEndpoint(t)
	b := startBearerTarget(t)
	clock := newFakeClock()
	c := newClient(t, oauthTarget(t, b.srv.URL+"/crm", e, ""))
	c.now = clock.Now

	doOK(t, c)
	b.only(2) // token 1 revoked
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r Result
			if err := c.Do(&delivery.Delivery{Body: []byte("{}")}, &r); err != nil || r.Status != 200 {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of 16 deliveries failed after the token was revoked", failed.Load())
	}
	if got := e.requests.Load(); got != 2 {
		t.Errorf("token endpoint saw %d requests, want 2 (one refetch for all the 401s)", got)
	}
	if seen, _ := b.counts(); seen[bearer(2)] != 16 {
		t.Errorf("target saw %v, want all 16 deliveries with token 2", seen)
	}

	// The target now refuses every token: the 401 goes back (one request
	// per delivery), and the freshly refetched token 2 is not replaced
	// for each one.
	b.only()
	_, before := b.counts()
	var r Result
	for range 5 {
		if err := c.Do(&delivery.Delivery{Body: []byte("{}")}, &r); err != nil || r.Status != 401 {
			t.Fatalf("Do against a target refusing every token: %v, status %d, want 401", err, r.Status)
		}
	}
	if got := e.requests.Load(); got != 2 {
		t.Errorf("token endpoint saw %d requests, want still 2 while the target refuses a fresh token", got)
	}
	// Later, one 401 may try one new token again.
	clock.Advance(2 * time.Minute)
	if err := c.Do(&delivery.Delivery{Body: []byte("{}")}, &r); err != nil || r.Status != 401 {
		t.Fatalf("Do: %v, status %d, want 401", err, r.Status)
	}
	if got := e.requests.Load(); got != 3 {
		t.Errorf("token endpoint saw %d requests, want 3 (one refetch a minute later)", got)
	}
	if _, after := b.counts(); after[401]-before[401] != 5+2 {
		t.Errorf("target answered %d 401s, want 7: one per delivery while the fresh token is refused, two for the one that refetched", after[401]-before[401])
	}
}

// TestOAuth2TokenEndpointDown: while the token endpoint fails, attempts
// are not sent and fail with a reason that names the endpoint, its answer
// and what to check; a failed request is retried only after a backoff,
// however many deliveries wait; and delivery resumes once it answers.
func TestOAuth2TokenEndpointDown(t *testing.T) {
	e := startTokenEndpoint(t)
	b := startBearerTarget(t)
	clock := newFakeClock()
	c := newClient(t, oauthTarget(t, b.srv.URL+"/crm", e, ""))
	c.now = clock.Now

	e.setFail(503)
	var r Result
	err := c.Do(&delivery.Delivery{Body: []byte("{}")}, &r)
	var te *TokenError
	if !errors.Is(err, ErrToken) || !errors.As(err, &te) {
		t.Fatalf("Do with the token endpoint answering 503: %v, want a TokenError", err)
	}
	want := "token endpoint " + e.srv.URL + "/oauth2/token answered 503 temporarily_unavailable: maintenance"
	if te.Reason != want || te.Next != time.Second {
		t.Errorf("reason %q, next %v; want %q, 1s", te.Reason, te.Next, want)
	}
	if !strings.Contains(err.Error(), `target "crm"`) || !strings.Contains(err.Error(), "not sent, no OAuth2 token") {
		t.Errorf("error %q does not say which target and that nothing was sent", err)
	}

	// Inside the backoff: 50 attempts from 10 workers, no token request.
	var wg sync.WaitGroup
	var tokenErrs atomic.Int64
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r Result
			for range 5 {
				if err := c.Do(&delivery.Delivery{Body: []byte("{}")}, &r); errors.Is(err, ErrToken) {
					tokenErrs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if tokenErrs.Load() != 50 || e.requests.Load() != 1 {
		t.Errorf("inside the backoff: %d token errors of 50, %d token requests (want 1)", tokenErrs.Load(), e.requests.Load())
	}
	// The backoff doubles per failure.
	clock.Advance(time.Second)
	err = c.Do(&delivery.Delivery{Body: []byte("{}")}, &r)
	if !errors.As(err, &te) || te.Next != 2*time.Second || e.requests.Load() != 2 {
		t.Errorf("second failure: %v (requests %d), want a 2s backoff after the second request", err, e.requests.Load())
	}

	// The endpoint comes back: the first attempt after the backoff gets a
	// token and is delivered.
	e.setFail(0)
	clock.Advance(2 * time.Second)
	doOK(t, c)
	if e.requests.Load() != 3 {
		t.Errorf("token endpoint saw %d requests, want 3", e.requests.Load())
	}
	if seen, _ := b.counts(); seen[bearer(3)] != 1 || len(seen) != 1 {
		t.Errorf("the target saw %v; no attempt may reach it without a token", seen)
	}

	// Wrong credentials say what to check; an endpoint that is not there
	// says so.
	bad := oauthTarget(t, b.srv.URL+"/crm", e, "")
	bad.Auth.ClientSecret = config.NewSecret("oat-test-wrong-secret-0a4c", "")
	err = newClient(t, bad).Do(&delivery.Delivery{}, &r)
	if !errors.As(err, &te) || te.Reason != "token endpoint "+e.srv.URL+"/oauth2/token answered 401 invalid_client (check client_id, client_secret and auth_style): Client authentication failed" {
		t.Errorf("wrong secret: %v", err)
	}
	ln, lerr := net.Listen("tcp", "127.0.0.1:0")
	if lerr != nil {
		t.Fatal(lerr)
	}
	gone := ln.Addr().String()
	ln.Close()
	down := oauthTarget(t, b.srv.URL+"/crm", e, "")
	down.Auth.TokenURL = mustURL(t, "http://"+gone+"/token")
	err = newClient(t, down).Do(&delivery.Delivery{}, &r)
	if !errors.As(err, &te) || !strings.HasPrefix(te.Reason, "token endpoint http://"+gone+"/token could not be reached: ") {
		t.Errorf("endpoint down: %v", err)
	}
	for _, s := range []string{oatClientSecret, "oat-test-wrong-secret-0a4c", oatTokenPrefix} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("an error shows a secret or token: %v", err)
		}
	}
}

// TestOAuth2TokenAnswers: answers a token endpoint may give that hookgate
// cannot use are token errors saying why, never a header carrying them.
func TestOAuth2TokenAnswers(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		want       string // the reason after "token endpoint URL "; "" means success
		life       time.Duration
	}{
		{name: "expires_in as a string", body: `{"access_token":"oat-test-token-s","token_type":"Bearer","expires_in":"3599"}`, life: 3599 * time.Second},
		{name: "no expires_in", body: `{"access_token":"oat-test-token-s"}`},
		{name: "not json", body: `<html>`, want: "answered 200 without a JSON token"},
		{name: "no access_token", body: `{"token_type":"bearer"}`, want: "answered without an access_token"},
		{name: "another token type", body: `{"access_token":"oat-test-token-s","token_type":"mac"}`, want: `answered a token of type "mac"; hookgate sends Bearer tokens only`},
		{name: "header injection", body: `{"access_token":"oat-test-token-s\r\nX-Evil: 1"}`, want: "answered an access_token that cannot be sent in a header"},
		{name: "bad expires_in", body: `{"access_token":"oat-test-token-s","expires_in":"soon"}`, want: "answered an expires_in that is not a number of seconds"},
		{name: "error without json", status: 500, body: `oops`, want: "answered 500"},
		{name: "scope refused", status: 400, body: `{"error":"invalid_scope"}`, want: "answered 400 invalid_scope (check scopes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.status != 0 {
					w.WriteHeader(tt.status)
				}
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			c := newClient(t, config.Target{URL: mustURL(t, "http://127.0.0.1:1/"), Auth: config.Auth{
				Type: config.AuthOAuth2, TokenURL: mustURL(t, srv.URL+"/t"), ClientID: "id", ClientSecret: config.NewSecret(oatClientSecret, "")}})
			clock := newFakeClock()
			c.now = clock.Now
			tok, err := c.tokens.get(time.Now().Add(time.Minute))
			if tt.want == "" {
				if err != nil || string(tok.header) != "Bearer oat-test-token-s" {
					t.Fatalf("get: %v", err)
				}
				if tt.life > 0 && (tok.staleAt != clock.Now().Add(tt.life-10*time.Second) || tok.refreshAt != clock.Now().Add(tt.life-5*time.Minute)) {
					t.Errorf("a %v token: refresh at %v, stale at %v", tt.life, tok.refreshAt.Sub(clock.Now()), tok.staleAt.Sub(clock.Now()))
				}
				if tt.life == 0 && tok.staleAt.Before(clock.Now().Add(24*time.Hour)) {
					t.Errorf("a token without expires_in goes stale after %v; want kept until refused", tok.staleAt.Sub(clock.Now()))
				}
				return
			}
			var te *TokenError
			if !errors.As(err, &te) || te.Reason != "token endpoint "+srv.URL+"/t "+tt.want {
				t.Errorf("got %v, want reason %q", err, tt.want)
			}
		})
	}
}

// TestOAuth2TokenTiming: when a token is replaced, by its lifetime.
func TestOAuth2TokenTiming(t *testing.T) {
	at := time.Unix(0, 0)
	for _, tt := range []struct {
		life, refresh, stale time.Duration
	}{
		{time.Hour, 55 * time.Minute, time.Hour - 10*time.Second},
		{60 * time.Second, 45 * time.Second, 54 * time.Second},
		{10 * time.Second, 7500 * time.Millisecond, 9 * time.Second},
	} {
		tok := newToken("Bearer x", at, tt.life)
		if tok.refreshAt.Sub(at) != tt.refresh || tok.staleAt.Sub(at) != tt.stale {
			t.Errorf("a %v token: refresh after %v, stale after %v; want %v, %v", tt.life, tok.refreshAt.Sub(at), tok.staleAt.Sub(at), tt.refresh, tt.stale)
		}
	}
}

// TestOAuth2NeverShown: Describe (hookgate try, the admin route test,
// /admin/events) shows the Authorization header as computed when sent,
// fetches nothing, and neither the secret nor a token appears in it.
func TestOAuth2NeverShown(t *testing.T) {
	e := startTokenEndpoint(t)
	b := startBearerTarget(t)
	c := newClient(t, oauthTarget(t, b.srv.URL+"/crm", e, config.OAuth2StyleBody))
	doOK(t, c) // a token is cached
	got := c.Describe(&delivery.Delivery{ID: []byte("evt_1.0"), Body: []byte("{}"), Headers: kvs("Authorization", "Bearer from-plugin")})
	var auth []string
	for _, h := range got.Header {
		if strings.EqualFold(h.Name, "Authorization") {
			auth = append(auth, h.Value)
		}
	}
	if len(auth) != 1 || auth[0] != Computed {
		t.Errorf("Describe shows Authorization %q, want one %q", auth, Computed)
	}
	if all := fmt.Sprintf("%+v", got); strings.Contains(all, oatClientSecret) || strings.Contains(all, oatTokenPrefix) {
		t.Errorf("Describe shows a secret: %s", all)
	}
	if e.requests.Load() != 1 {
		t.Errorf("Describe fetched a token")
	}
	if s := base64.StdEncoding.EncodeToString([]byte(oatClientID + ":" + oatClientSecret)); strings.Contains(fmt.Sprintf("%+v", got), s) {
		t.Error("Describe shows the Basic credentials")
	}
}

// TestOAuth2RefetchOn401Pipelined: with pipeline set, the second send
// after a 401 carries the body again (the pipeline takes the request's
// body on the first send), so the target does not take an empty request
// as the delivery.
func TestOAuth2RefetchOn401Pipelined(t *testing.T) {
	e := startTokenEndpoint(t)
	b := startBearerTarget(t)
	tc := oauthTarget(t, b.srv.URL+"/crm", e, "")
	tc.Pipeline = 1
	c := newClient(t, tc)
	doOK(t, c)
	b.only(2) // token 1 revoked: the next delivery's first send gets a 401
	var r Result
	if err := c.Do(&delivery.Delivery{ID: []byte("evt_2.0"), Body: []byte(`{"n":2}`)}, &r); err != nil || r.Status != 200 {
		t.Fatalf("Do after the revocation: %v, status %d", err, r.Status)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if got := strings.Join(b.bodies, " "); got != `{"a":1} {"n":2}` {
		t.Errorf("the target took bodies %s, want {\"a\":1} {\"n\":2}", got)
	}
}
