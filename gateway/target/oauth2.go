package target

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/valyala/fasthttp"
)

// OAuth2 client credentials (RFC 6749 section 4.4): a target's token is
// fetched from its token endpoint and sent as "Authorization: Bearer ...".
//
// One tokenSource per Client, so every worker of the target shares one
// token. In steady state a delivery only loads a pointer and compares two
// times: nothing is fetched, locked or allocated. At most one token request
// is under way at any time (a flight the others join), so neither expiry,
// nor a burst of 401s, nor an outage of the token endpoint makes workers
// stampede it:
//
//   - From refreshAt (shortly before expiry) the next delivery starts a
//     background fetch and goes on with the current token.
//   - From staleAt (closer to expiry) the token is no longer sent;
//     deliveries wait for the flight.
//   - A 401 from the target drops the token it refused and the attempt is
//     sent once more with a new one (refused, Do).
//   - A failed fetch is retried no sooner than a backoff (1s doubling to
//     1m); until then attempts that need a token fail at once with the
//     reason, an error that errors.Is ErrToken.
//   - An attempt waits for a token no longer than its own bound
//     (Client.MaxAttempt); a request still under way then serves the
//     attempts after it.
//
// A reload builds a new Client, so a new token is fetched once per reload.

// ErrToken: the attempt was not sent because no OAuth2 token could be had.
// A Do error for which errors.Is(err, ErrToken) holds is a *TokenError
// inside an *Error.
var ErrToken = errors.New("target: no oauth2 token")

// TokenError says why a target's token endpoint gave no token. It never
// holds the client secret or a token.
type TokenError struct {
	Reason string        // what the token endpoint did, and what to check
	Next   time.Duration // when the next token request may go out; 0: at once
}

func (e *TokenError) Error() string {
	msg := "not sent, no OAuth2 token: " + e.Reason
	if e.Next > 0 {
		msg += "; next token request in " + e.Next.Round(time.Millisecond).String()
	}
	return msg
}

// Is makes errors.Is(err, ErrToken) work.
func (e *TokenError) Is(target error) bool { return target == ErrToken }

const (
	// tokenBackoffInitial and tokenBackoffMax bound the wait after a
	// failed token request: doubled per consecutive failure.
	tokenBackoffInitial = time.Second
	tokenBackoffMax     = time.Minute
	// expirySkew: a token is not sent in its last 10 seconds (or last
	// tenth, when it lives less than 100s): it could expire on the way,
	// or by the target's clock.
	expirySkew = 10 * time.Second
	// refreshAhead: the background refresh starts 5 minutes (or a
	// quarter of its life) before a token expires, leaving time to retry
	// a failed refresh while the current token still works.
	refreshAhead = 5 * time.Minute
	// refusedPause: a token fetched because the target refused the one
	// before is not replaced for another 401 within this time. A target
	// that refuses every token (wrong audience or scope) then costs the
	// token endpoint one request a minute, not one per delivery.
	refusedPause = time.Minute
	// maxTokenResponse bounds the token endpoint's answer: JWTs with many
	// claims run to a few KiB.
	maxTokenResponse = 64 << 10
)

// token is one access token and when to replace it. Immutable once
// published.
type token struct {
	header    []byte // "Bearer <access_token>": the Authorization value
	fetched   time.Time
	refreshAt time.Time // from here a delivery starts a background refresh
	staleAt   time.Time // from here it is not sent
	refetched bool      // fetched because the target refused the one before
}

// flight is one token request; those who need its result wait on done.
type flight struct {
	done chan struct{}
	tok  *token
	err  error
}

type tokenSource struct {
	hc       *fasthttp.HostClient
	url      string // token_url, as sent
	shown    string // token_url, as it may be printed
	form     []byte // the request body, built once
	basic    []byte // the Authorization value for auth_style "header"; nil for "body"
	timeout  time.Duration
	now      func() time.Time
	backoff0 time.Duration // first wait after a failure; tests shorten it
	backoffN time.Duration // longest wait

	cur atomic.Pointer[token] // nil until the first fetch, and after a 401 dropped it

	mu       sync.Mutex
	flight   *flight   // the request under way, nil if none
	failures int       // consecutive failed requests
	retryAt  time.Time // no request before this, after a failure
	lastErr  string    // reason of the last failure
}

// newTokenSource prepares t's token requests. tlsc is the TLS client
// configuration of the token endpoint (nil: the system's defaults).
func newTokenSource(t config.Target, tlsc tlsSettings, now func() time.Time) (*tokenSource, error) {
	a := t.Auth
	u := a.TokenURL
	switch {
	case u == nil:
		return nil, errors.New("oauth2 needs a token_url")
	case u.Scheme != "http" && u.Scheme != "https", u.Hostname() == "":
		return nil, errors.New("oauth2 token_url must be an http or https URL with a host")
	case a.ClientID == "" || !a.ClientSecret.IsSet():
		return nil, errors.New("oauth2 needs a client_id and a client_secret")
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	shown := a.TokenURLShown
	if shown.Origin == "" {
		shown = (&config.Target{URL: u}).PrintableURL() // a Target built by hand
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(a.Scopes) > 0 {
		form.Set("scope", strings.Join(a.Scopes, " "))
	}
	if a.Audience != "" {
		form.Set("audience", a.Audience)
	}
	ts := &tokenSource{
		url:      u.String(),
		shown:    shown.String(),
		timeout:  t.Timeout,
		now:      now,
		backoff0: tokenBackoffInitial,
		backoffN: tokenBackoffMax,
	}
	switch a.AuthStyle {
	case config.OAuth2StyleBody:
		form.Set("client_id", a.ClientID)
		form.Set("client_secret", a.ClientSecret.Reveal())
	case config.OAuth2StyleHeader, "":
		// RFC 6749 section 2.3.1: each part form-encoded, then Basic.
		pair := url.QueryEscape(a.ClientID) + ":" + url.QueryEscape(a.ClientSecret.Reveal())
		ts.basic = []byte("Basic " + base64.StdEncoding.EncodeToString([]byte(pair)))
	default:
		return nil, fmt.Errorf("oauth2 auth_style %q is not supported (use header or body)", a.AuthStyle)
	}
	ts.form = []byte(form.Encode())
	ts.hc = &fasthttp.HostClient{
		Addr:                  net.JoinHostPort(u.Hostname(), port),
		Name:                  "hookgate",
		IsTLS:                 u.Scheme == "https",
		TLSConfig:             tlsc.tokenEndpoint,
		MaxConns:              2, // one request at a time, and a spare while a dead one is noticed
		ReadTimeout:           t.Timeout,
		WriteTimeout:          t.Timeout,
		MaxResponseBodySize:   maxTokenResponse,
		SecureErrorLogMessage: true,
	}
	return ts, nil
}

// get returns a token to send: the cached one, or the result of a request
// that it starts or joins, waited for until deadline at most (the
// attempt's bound: Client.MaxAttempt). A request still under way then
// goes on for the attempts after.
func (ts *tokenSource) get(deadline time.Time) (*token, error) {
	now := ts.now()
	if t := ts.cur.Load(); t != nil && now.Before(t.staleAt) {
		if !now.Before(t.refreshAt) {
			ts.refreshInBackground(t, now)
		}
		return t, nil
	}
	ts.mu.Lock()
	if t := ts.cur.Load(); t != nil && now.Before(t.staleAt) {
		ts.mu.Unlock() // replaced while this one waited for the lock
		return t, nil
	}
	f := ts.flight
	if f == nil {
		if now.Before(ts.retryAt) {
			err := &TokenError{Reason: ts.lastErr, Next: ts.retryAt.Sub(now)}
			ts.mu.Unlock()
			return nil, err
		}
		f = ts.start(now, false)
	}
	ts.mu.Unlock()
	return ts.await(f, deadline)
}

// await waits for f until deadline. Only an attempt that must wait for a
// token gets here, so the timer's allocation costs nothing in steady
// state.
func (ts *tokenSource) await(f *flight, deadline time.Time) (*token, error) {
	select {
	case <-f.done:
		return f.tok, f.err
	default:
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-f.done:
		return f.tok, f.err
	case <-timer.C:
		return nil, &TokenError{Reason: "token endpoint " + ts.shown + " did not answer within the attempt's time (twice the target's timeout); the request goes on for the next attempts"}
	}
}

// refreshInBackground starts a request for t's successor unless one is
// under way or a failure's backoff is running; the delivery goes on with t.
func (ts *tokenSource) refreshInBackground(t *token, now time.Time) {
	ts.mu.Lock()
	if ts.flight == nil && ts.cur.Load() == t && !now.Before(ts.retryAt) {
		ts.start(now, false)
	}
	ts.mu.Unlock()
}

// refused is told that the target answered 401 to a request carrying t. It
// reports whether to send the request again, with the token get returns
// next: yes when a newer token is there or being fetched, or t may be
// replaced now (see refusedPause).
func (ts *tokenSource) refused(t *token) bool {
	now := ts.now()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.cur.Load() != t {
		return true // another worker already dropped or replaced it
	}
	if t.refetched && now.Sub(t.fetched) < refusedPause {
		return false
	}
	ts.cur.Store(nil)
	if ts.flight == nil {
		ts.retryAt = time.Time{} // a 401 is news the backoff did not know
		ts.start(now, true)
	}
	return true
}

// start begins a token request; ts.mu is held.
func (ts *tokenSource) start(now time.Time, refetch bool) *flight {
	f := &flight{done: make(chan struct{})}
	ts.flight = f
	go ts.fetch(f, now, refetch)
	return f
}

func (ts *tokenSource) fetch(f *flight, started time.Time, refetch bool) {
	tok, reason := ts.request(started)
	if tok != nil {
		tok.refetched = refetch
	}
	ts.mu.Lock()
	if tok != nil {
		ts.failures, ts.retryAt, ts.lastErr = 0, time.Time{}, ""
		ts.cur.Store(tok)
		f.tok = tok
	} else {
		ts.failures++
		wait := ts.backoffN
		if ts.failures <= 16 {
			wait = min(ts.backoff0<<(ts.failures-1), ts.backoffN)
		}
		ts.retryAt = ts.now().Add(wait)
		ts.lastErr = reason
		f.err = &TokenError{Reason: reason, Next: wait}
	}
	ts.flight = nil
	ts.mu.Unlock()
	close(f.done)
}

// tokenAnswer is the token endpoint's JSON answer (RFC 6749 sections 5.1
// and 5.2).
type tokenAnswer struct {
	AccessToken string          `json:"access_token"`
	TokenType   string          `json:"token_type"`
	ExpiresIn   json.RawMessage `json:"expires_in"` // a number; some endpoints send a string
	Error       string          `json:"error"`
	Description string          `json:"error_description"`
}

// request makes one token request. On failure it returns the reason, for
// an operator to act on: it names the endpoint and never holds the secret
// or a token.
func (ts *tokenSource) request(started time.Time) (*token, string) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(ts.url)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if ts.basic != nil {
		req.Header.SetBytesKV(headerAuthorization, ts.basic)
	}
	req.SetBodyRaw(ts.form)

	where := "token endpoint " + ts.shown
	if err := ts.hc.DoTimeout(req, resp, ts.timeout); err != nil {
		if ts.hc.IsTLS {
			err = refusedTLS(err, ts.hc.Addr, ts.hc.TLSConfig, ts.timeout)
		}
		if isTimeout(err) {
			return nil, fmt.Sprintf("%s did not answer within %v", where, ts.timeout)
		}
		return nil, fmt.Sprintf("%s could not be reached: %v", where, err)
	}
	status := resp.StatusCode()
	var a tokenAnswer
	jsonErr := json.Unmarshal(resp.Body(), &a)
	if status < 200 || status > 299 {
		msg := fmt.Sprintf("%s answered %d", where, status)
		if jsonErr == nil && a.Error != "" {
			msg += " " + printable(a.Error, 64)
			if hint := oauthHint(a.Error); hint != "" {
				msg += " (" + hint + ")"
			}
			if a.Description != "" {
				msg += ": " + printable(a.Description, 200)
			}
		}
		return nil, msg
	}
	switch {
	case jsonErr != nil:
		return nil, where + " answered " + strconv.Itoa(status) + " without a JSON token"
	case a.AccessToken == "":
		return nil, where + " answered without an access_token"
	case a.TokenType != "" && !strings.EqualFold(a.TokenType, "bearer"):
		return nil, fmt.Sprintf("%s answered a token of type %q; hookgate sends Bearer tokens only", where, printable(a.TokenType, 32))
	case !headerSafe(a.AccessToken):
		return nil, where + " answered an access_token that cannot be sent in a header"
	}
	life, ok := expiresIn(a.ExpiresIn)
	if !ok {
		return nil, where + " answered an expires_in that is not a number of seconds"
	}
	return newToken("Bearer "+a.AccessToken, started, life), ""
}

// newToken times a token fetched at fetched that lives life (0: the
// endpoint did not say; then it is kept until the target refuses it).
func newToken(header string, fetched time.Time, life time.Duration) *token {
	t := &token{header: []byte(header), fetched: fetched}
	if life <= 0 {
		forever := fetched.Add(100 * 365 * 24 * time.Hour)
		t.refreshAt, t.staleAt = forever, forever
		return t
	}
	expires := fetched.Add(life) // fetched is when the request left: errs early
	t.staleAt = expires.Add(-min(expirySkew, life/10))
	t.refreshAt = expires.Add(-min(refreshAhead, life/4))
	return t
}

// expiresIn reads expires_in: absent, a number, or a number in a string.
func expiresIn(raw json.RawMessage) (time.Duration, bool) {
	s := strings.Trim(string(raw), `"`)
	if len(raw) == 0 || string(raw) == "null" || s == "" {
		return 0, true
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 || n > 10*365*24*3600 {
		return 0, false
	}
	return time.Duration(n * float64(time.Second)), true
}

// oauthHint says what to check for the error codes of RFC 6749 section 5.2.
func oauthHint(code string) string {
	switch code {
	case "invalid_client":
		return "check client_id, client_secret and auth_style"
	case "unauthorized_client":
		return "the client may not use the client_credentials grant: ask the identity provider's admin"
	case "invalid_scope":
		return "check scopes"
	case "invalid_request", "unsupported_grant_type":
		return "check token_url, audience and auth_style"
	case "invalid_target":
		return "check audience"
	}
	return ""
}

// headerSafe reports whether an access token can go in a header as is:
// visible ASCII only, so a hostile endpoint cannot inject a header line.
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// printable cuts what a token endpoint said to n bytes of one line.
func printable(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

func (ts *tokenSource) close() { ts.hc.CloseIdleConnections() }
