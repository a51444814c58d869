// Package target sends deliveries to the user's systems: one pooled,
// keep-alive fasthttp client per configured target, built once when a
// configuration is loaded, with the target's URL, method, static headers and
// query, outbound auth or signing, and limits.
//
//	c, err := target.New(cfg.Targets[0])
//	...
//	defer c.Close()
//	var r target.Result
//	err = c.Do(&d, &r) // err: transport failure; r.Status: any HTTP answer
//
// Lifecycle:
//  1. New validates what it needs and precomputes everything static: the
//     dial address, header and query bytes, the basic token, decoded
//     signing secrets, the TLS settings (tls.go) and, for oauth2, the
//     token source whose one token every worker shares (oauth2.go).
//  2. Do builds one request from pooled fasthttp objects, signs it, sends
//     it within the target's timeout and copies the answer into the
//     caller's Result. In steady state it allocates nothing.
//     Describe builds the same request, secrets redacted, to show people
//     what Do would send (hookgate try, the admin route test, /admin/events).
//  3. Close drops idle connections.
//
// # Notes
//
//   - Delivery query values are plain text: Do encodes them. They come
//     after the target's static query; a key the target also sets replaces
//     all of the target's values for it. Delivery paths are sent as given
//     (already escaped), never normalized.
//   - Framing and hop-by-hop headers in a delivery (Host, Content-Length,
//     Connection, Transfer-Encoding, ...) are ignored; auth and signature
//     headers are written last, so a delivery cannot override them.
//   - An answer whose body exceeds max_response_size is not an error: Do
//     returns nil with the status, an empty Body and BodyTooLarge set, and
//     the connection is closed. The target did answer, so retrying would only
//     send the same delivery again.
//   - Do never retries on its own except once when the connection turns
//     out to be gone before a single byte of the answer arrived (closed or
//     reset: a target restarted, or closed it while it idled in the pool).
//     Then the pool's other idle connections are dropped too, so the retry
//     goes out on a fresh connection at once, whatever the method: every
//     delivery carries its id for the target to deduplicate on. A target
//     that drops every connection unanswered gets a request at most twice
//     per Do. With oauth2, a 401 answer is sent once more with a new
//     token (the target may have revoked the old one early). Every other
//     retry policy is the caller's.
package target

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/rawsock"
	"github.com/valyala/fasthttp"
)

// Result is a target's answer. Its buffers are reused across Do calls:
// copy what must outlive the next call.
type Result struct {
	Status       int
	ContentType  []byte
	RetryAfter   []byte // raw Retry-After header value, empty if none
	Body         []byte // at most the target's max_response_size bytes
	BodyTooLarge bool   // the answer's body exceeded max_response_size and was dropped
}

// Reset empties r, keeping capacity.
func (r *Result) Reset() {
	r.Status = 0
	r.ContentType = r.ContentType[:0]
	r.RetryAfter = r.RetryAfter[:0]
	r.Body = r.Body[:0]
	r.BodyTooLarge = false
}

// Client sends deliveries to one target. It is safe for concurrent use.
type Client struct {
	cfg     config.Target
	hc      *fasthttp.HostClient
	pl      *pipeline // pipeline > 0: every request goes this way (pipeline.go)
	timeout time.Duration
	log     *slog.Logger // what the operator must hear of (the pipeline turning itself off)

	method []byte
	scheme []byte // "http" or "https"
	host   []byte // Host header: the URL's host[:port]
	path   []byte // the URL's escaped path
	query  []kv   // the URL's query, then the target's query table
	header []kv   // the target's static headers, sorted by name

	idHeader []byte
	auth     signer
	tokens   *tokenSource // oauth2: the target's one token, shared by its workers; nil otherwise

	now func() time.Time // the clock for Standard Webhooks timestamps; tests replace it
}

type kv struct {
	key, value []byte
	shown      string // the value as Describe and error messages may print it
}

// New builds the client for t. Zero fields take the config package's
// defaults, so a hand-built Target in a test works too.
func New(t config.Target) (*Client, error) {
	if t.URL == nil {
		return nil, fmt.Errorf("target %q: no url", t.Name)
	}
	fillDefaults(&t)
	c := &Client{cfg: t, timeout: t.Timeout, now: time.Now}

	u := t.URL
	var port string
	switch u.Scheme {
	case "http":
		port = "80"
	case "https":
		port = "443"
	default:
		// Never print the URL itself here: its query may hold a token.
		return nil, fmt.Errorf("target %q: url scheme %q must be http or https", t.Name, u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("target %q: url has no host", t.Name)
	}
	if p := u.Port(); p != "" {
		port = p
	}
	c.scheme = []byte(u.Scheme)
	c.host = []byte(u.Host)
	c.path = []byte(u.EscapedPath())
	if len(c.path) == 0 {
		c.path = []byte("/")
	}
	c.method = []byte(strings.ToUpper(t.Method))

	// The URL's own query keeps its order and repeated keys; the query
	// table is applied over it (same key replaces), sorted for a stable
	// wire form.
	var args fasthttp.Args
	args.Parse(u.RawQuery)
	for k, v := range args.All() {
		c.query = append(c.query, kv{key: clone(k), value: clone(v), shown: Redacted})
	}
	for _, k := range slices.Sorted(maps.Keys(t.Query)) {
		v := t.Query[k]
		c.query = slices.DeleteFunc(c.query, func(q kv) bool { return string(q.key) == k })
		c.query = append(c.query, kv{key: []byte(k), value: []byte(v.Reveal()), shown: v.String()})
	}
	for _, k := range slices.Sorted(maps.Keys(t.Headers)) {
		if skipHeader([]byte(k)) {
			return nil, fmt.Errorf("target %q: header %q is set by hookgate and cannot be configured", t.Name, k)
		}
		v := t.Headers[k]
		shown := v.String()
		if shown == Redacted && harmless(k) {
			shown = v.Reveal()
		}
		c.header = append(c.header, kv{key: []byte(k), value: []byte(v.Reveal()), shown: shown})
	}
	c.idHeader = []byte(t.IDHeader)

	var err error
	if c.auth, err = newSigner(t.Auth); err != nil {
		return nil, fmt.Errorf("target %q: auth: %w", t.Name, err)
	}
	if t.TLS.IsSet() && u.Scheme != "https" {
		return nil, fmt.Errorf("target %q: tls applies to https urls only", t.Name)
	}
	tlsc, err := newTLS(t.TLS)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", t.Name, err)
	}
	if t.Auth.Type == config.AuthOAuth2 {
		// Through c.now, which tests replace after New.
		if c.tokens, err = newTokenSource(t, tlsc, func() time.Time { return c.now() }); err != nil {
			return nil, fmt.Errorf("target %q: auth: %w", t.Name, err)
		}
	}

	dialer := &fasthttp.TCPDialer{DNSCacheDuration: time.Minute}
	c.hc = &fasthttp.HostClient{
		Addr:                net.JoinHostPort(u.Hostname(), port),
		Name:                "hookgate",
		IsTLS:               u.Scheme == "https",
		TLSConfig:           tlsc.target,
		DialTimeout:         dialRaw(dialer, u.Scheme == "https", t.Timeout),
		MaxConns:            t.MaxConns,
		MaxConnWaitTimeout:  t.Timeout, // a saturated pool errors instead of queueing forever
		MaxIdleConnDuration: t.IdleTimeout,
		// No ReadTimeout or WriteTimeout: every send has its own timeout
		// (DoTimeout, at most t.Timeout), which fasthttp sets as the
		// connection's read and write deadlines; the two would only repeat
		// it, each with a clock read a request.
		MaxResponseBodySize:    t.MaxResponseSize,
		DisablePathNormalizing: true,
		ConnPoolStrategy:       fasthttp.LIFO, // hot connections stay hot, spare ones idle out
		SecureErrorLogMessage:  true,
	}
	c.hc.RetryIfErr = c.retryLostConn
	c.log = slog.Default()
	if t.Pipeline > 0 {
		c.pl = newPipeline(c.hc.Addr, t.Pipeline, t.Timeout, t.IdleTimeout, t.MaxResponseSize, dialer, c.hc.IsTLS, tlsc.target, u.Hostname())
		c.pl.off = c.pipelineOff
	}
	return c, nil
}

// SetLogger sets where the client logs (slog.Default() until then); call
// it before the first Do.
func (c *Client) SetLogger(l *slog.Logger) { c.log = l }

// pipelineOff is told when the pipeline turns itself off (refused, late), and
// why.
func (c *Client) pipelineOff(why string) {
	c.log.Warn("target: "+why+": its requests go out unpipelined for "+
		offFor.String()+", then pipelining is tried again; if it keeps doing so, remove pipeline from this target", "target", c.cfg.Name)
}

func fillDefaults(t *config.Target) {
	if t.Method == "" {
		t.Method = config.DefaultTargetMethod
	}
	if t.Timeout <= 0 {
		t.Timeout = config.DefaultTargetTimeout
	}
	if t.MaxConns <= 0 {
		t.MaxConns = config.DefaultTargetMaxConns
	}
	if t.MaxResponseSize <= 0 {
		t.MaxResponseSize = config.DefaultTargetMaxResponseSize
	}
	if t.IdleTimeout <= 0 {
		t.IdleTimeout = config.DefaultTargetIdleTimeout
	}
	if t.Auth.Type == "" {
		t.Auth.Type = config.AuthNone
	}
	if t.Auth.Type == config.AuthHMAC && t.Auth.Header == "" {
		t.Auth.Header = config.DefaultHMACHeader
	}
}

// retryLostConn is the host client's retry policy: one retry, at once, when
// the connection was gone before any of the answer arrived. fasthttp never
// notices a pooled connection closing while it idles (net/http, Envoy,
// HAProxy and nginx all do), so after a target restarted, or closed idle
// connections sooner than idle_timeout, every pooled connection is stale.
// Walking through them one failed send at a time would fail the delivery
// (and soon open the breaker) although the target is well; dropping them
// all makes the retry dial a fresh one. They idled as long as this one, and
// the worst a wrong guess costs is a dial.
func (c *Client) retryLostConn(_ *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
	if attempts > 1 || !connLost(err) {
		return false, false
	}
	c.hc.CloseIdleConnections()
	return false, true
}

// connLost reports whether err means the connection was gone before the
// first byte of the answer: fasthttp reports any failure to read that byte
// but a timeout as a bare io.EOF (ErrConnectionClosed once Do returns; a
// cut inside the answer is wrapped instead), and a write to a connection
// the target closed fails with EPIPE or ECONNRESET.
func connLost(err error) bool {
	if err == io.EOF {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "write" &&
		(errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET))
}

// send makes one round trip for req: pipelined when
// the target has pipeline set (pipeline.go).
func (c *Client) send(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration) error {
	if c.pl != nil {
		return c.sendPipelined(req, resp, timeout)
	}
	return c.hc.DoTimeout(req, resp, timeout)
}

// Name is the target's name.
func (c *Client) Name() string { return c.cfg.Name }

// Config is the target's configuration with defaults filled in. Do not
// modify it.
func (c *Client) Config() *config.Target { return &c.cfg }

// Close drops the client's idle connections. Do may still be called, and
// opens new ones.
func (c *Client) Close() {
	c.DropIdle()
	if c.tokens != nil {
		c.tokens.close()
	}
}

// DropIdle closes the pooled idle connections, so that the next Do dials a
// fresh one: for an attempt that must test the target itself, such as a
// circuit breaker's probe, not a connection that may have gone silent.
func (c *Client) DropIdle() {
	c.hc.CloseIdleConnections()
	if c.pl != nil {
		c.pl.closeIdle()
	}
}

var (
	headerRetryAfter = []byte("Retry-After")
	contentTypeJSON  = []byte("application/json")
	userAgent        = []byte("hookgate")
)

// MaxAttempt is the longest one Do takes: twice the target's timeout.
// Each send gets the timeout, but all of an attempt's steps together (a
// wait for an OAuth2 token, the send, a 401's new token and second send,
// a TLS refusal's diagnosis) share this bound, so an attempt always ends
// within the queue's lease (MaxAttempt + 1 min: dispatch), after which
// another worker could send the same delivery again.
func (c *Client) MaxAttempt() time.Duration { return 2 * c.timeout }

// errOutOfTime: the attempt's bound (MaxAttempt) was reached on the
// second send after a 401. It counts as a timeout.
var errOutOfTime = errors.New("the attempt used all of its time (twice the target's timeout) on a 401, a new token and the second send")

// Do sends d and fills r. The error is a transport failure (dial, timeout,
// reset, pool exhausted), an *Error; any HTTP status, 5xx included, is
// r.Status with a nil error. With oauth2, an attempt for which no token
// could be had is not sent and its error wraps a *TokenError (errors.Is
// ErrToken); a 401 answer makes Do send the request once more with a new
// token, within the same call. Do returns within MaxAttempt.
func (c *Client) Do(d *delivery.Delivery, r *Result) error {
	r.Reset()
	// The attempt's bound, MaxAttempt from now, matters only with oauth2:
	// a token's fetch and a second send share it. Without, there is one
	// send, of the target's timeout, well within it: the clock is left
	// alone (sendTimeout, left below).
	var deadline time.Time
	var tok *token
	if c.tokens != nil {
		deadline = time.Now().Add(c.MaxAttempt())
		var err error
		if tok, err = c.tokens.get(deadline); err != nil {
			return c.wrap(d, err)
		}
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	c.build(d, req, false)
	c.auth.apply(req, d, c.now, false)
	if tok != nil {
		req.Header.SetBytesKV(headerAuthorization, tok.header)
	}

	err := c.send(req, resp, c.sendTimeout(deadline))
	if err == nil && tok != nil && resp.StatusCode() == fasthttp.StatusUnauthorized && c.tokens.refused(tok) {
		// The token may have been revoked or rotated before it expired:
		// the same request again, with the token that replaces it.
		if tok, err = c.tokens.get(deadline); err != nil {
			return c.wrap(d, err)
		}
		req.Header.SetBytesKV(headerAuthorization, tok.header)
		resp.Reset()
		if err = c.send(req, resp, c.sendTimeout(deadline)); errors.Is(err, fasthttp.ErrTimeout) && !time.Now().Before(deadline) {
			err = errOutOfTime
		}
	}
	if errors.Is(err, fasthttp.ErrBodyTooLarge) && resp.StatusCode() > 0 {
		r.Status = resp.StatusCode()
		r.ContentType = append(r.ContentType, resp.Header.ContentType()...)
		r.RetryAfter = append(r.RetryAfter, resp.Header.PeekBytes(headerRetryAfter)...)
		r.BodyTooLarge = true
		return nil
	}
	if err != nil {
		if left := c.left(deadline); c.hc.IsTLS && left > 0 {
			err = refusedTLS(err, c.hc.Addr, c.hc.TLSConfig, min(c.timeout, left))
		}
		return c.wrap(d, err)
	}
	r.Status = resp.StatusCode()
	r.ContentType = append(r.ContentType, resp.Header.ContentType()...)
	r.RetryAfter = append(r.RetryAfter, resp.Header.PeekBytes(headerRetryAfter)...)
	r.Body = append(r.Body, resp.Body()...)
	return nil
}

// sendTimeout is what one send may take: the target's timeout, but no
// more than is left of the attempt's bound (0 or less: the host client
// does not send and answers fasthttp.ErrTimeout).
func (c *Client) sendTimeout(deadline time.Time) time.Duration {
	return min(c.timeout, c.left(deadline))
}

// left is what is left of the attempt's bound; with no deadline (no
// oauth2: one send, of at most the target's timeout, which is half the
// bound), at least the target's timeout.
func (c *Client) left(deadline time.Time) time.Duration {
	if deadline.IsZero() {
		return c.timeout
	}
	return time.Until(deadline)
}

// build writes method, URL, headers and body of d into req: everything Do
// sends but the auth headers. With show it writes configured values
// (query and headers) in their redacted form instead, for Describe;
// nothing else differs.
func (c *Client) build(d *delivery.Delivery, req *fasthttp.Request, show bool) {
	if len(d.Method) > 0 {
		req.Header.SetMethodBytes(d.Method)
	} else {
		req.Header.SetMethodBytes(c.method)
	}
	uri := req.URI()
	uri.DisablePathNormalizing = true // as the host client sends it; Describe renders it
	uri.SetSchemeBytes(c.scheme)
	uri.SetHostBytes(c.host)
	if len(d.Path) > 0 {
		uri.SetPathBytes(d.Path)
	} else {
		uri.SetPathBytes(c.path)
	}
	if len(c.query) > 0 || len(d.Query) > 0 {
		buf := queryBufs.Get().(*[]byte)
		*buf = c.appendQuery((*buf)[:0], d, show)
		uri.SetQueryStringBytes(*buf)
		queryBufs.Put(buf)
	}

	for i := range c.header {
		if show {
			req.Header.SetBytesK(c.header[i].key, c.header[i].shown)
		} else {
			req.Header.SetBytesKV(c.header[i].key, c.header[i].value)
		}
	}
	for i := range d.Headers {
		h := &d.Headers[i]
		if skipHeader(h.Key) {
			continue
		}
		if headerSeenBefore(d.Headers[:i], h.Key) {
			req.Header.AddBytesKV(h.Key, h.Value)
		} else {
			req.Header.SetBytesKV(h.Key, h.Value)
		}
	}
	if len(req.Header.UserAgent()) == 0 {
		// The host client would add its name anyway; written here, Describe shows it.
		req.Header.SetUserAgentBytes(userAgent)
	}
	if len(d.Body) > 0 {
		if len(req.Header.ContentType()) == 0 {
			req.Header.SetContentTypeBytes(contentTypeJSON)
		}
		// The request is released before Do returns, and both ways of
		// sending are done with it by then (the pipeline copies it into
		// its connection's buffer), so it borrows the body.
		req.SetBodyRaw(d.Body)
	}
	if len(c.idHeader) > 0 && len(d.ID) > 0 {
		req.Header.SetBytesKV(c.idHeader, d.ID)
	}
}

// queryBufs hold the query string while build hands it to the URI, which
// copies it.
var queryBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// appendQuery appends the query string of d's request: the target's pairs
// (the URL's own, then its query table) but those whose key d sets, then
// d's pairs in order, each escaped by delivery.AppendEscape (the form
// of url.QueryEscape). With show, the target's values are written as their
// redacted form, unescaped so that it reads as a placeholder.
func (c *Client) appendQuery(dst []byte, d *delivery.Delivery, show bool) []byte {
	start := len(dst)
	for i := range c.query {
		q := &c.query[i]
		if hasKey(d.Query, q.key) {
			continue // a key d sets replaces every configured value of it
		}
		dst = appendQueryKey(dst, start, q.key)
		if show {
			dst = append(dst, q.shown...)
		} else {
			dst = delivery.AppendEscape(dst, q.value)
		}
	}
	for i := range d.Query {
		dst = appendQueryKey(dst, start, d.Query[i].Key)
		dst = delivery.AppendEscape(dst, d.Query[i].Value)
	}
	return dst
}

func appendQueryKey(dst []byte, start int, key []byte) []byte {
	if len(dst) > start {
		dst = append(dst, '&')
	}
	dst = delivery.AppendEscape(dst, key)
	return append(dst, '=')
}

// hasKey reports whether key occurs in kvs: query keys compare exactly.
func hasKey(kvs []delivery.KV, key []byte) bool {
	for i := range kvs {
		if string(kvs[i].Key) == string(key) {
			return true
		}
	}
	return false
}

// headerSeenBefore is hasKey for header names, which ignore case.
func headerSeenBefore(kvs []delivery.KV, key []byte) bool {
	for i := range kvs {
		if delivery.EqualFold(kvs[i].Key, key) {
			return true
		}
	}
	return false
}

// ownedHeaders are set by hookgate (or the HTTP framing) on the outgoing
// request; a delivery or a static header never sets them.
var ownedHeaders = [][]byte{
	[]byte("host"), []byte("content-length"), []byte("connection"), []byte("transfer-encoding"),
	[]byte("keep-alive"), []byte("te"), []byte("trailer"), []byte("upgrade"),
	[]byte("proxy-connection"), []byte("proxy-authorization"),
}

func skipHeader(key []byte) bool {
	for _, h := range ownedHeaders {
		if delivery.EqualFold(key, h) {
			return true
		}
	}
	return false
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// Set holds the clients of every target of a configuration.
type Set struct {
	byName map[string]*Client
	all    []*Client
}

// NewSet builds a client per target. Names must be unique.
func NewSet(ts []config.Target) (*Set, error) {
	s := &Set{byName: make(map[string]*Client, len(ts))}
	var errs []error
	for _, t := range ts {
		if _, dup := s.byName[t.Name]; dup {
			errs = append(errs, fmt.Errorf("target %q: defined twice", t.Name))
			continue
		}
		c, err := New(t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.byName[t.Name] = c
		s.all = append(s.all, c)
	}
	if len(errs) > 0 {
		s.Close()
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// SetLogger sets every client's logger (Client.SetLogger).
func (s *Set) SetLogger(l *slog.Logger) {
	for _, c := range s.all {
		c.SetLogger(l)
	}
}

// Get returns the client of the named target, nil if there is none.
func (s *Set) Get(name string) *Client { return s.byName[name] }

// Close closes every client.
func (s *Set) Close() {
	for _, c := range s.all {
		c.Close()
	}
}

// dialRaw dials as d does, and reads and writes through rawsock (see that
// package for why), as a client's connection when the target speaks plain
// HTTP: a request goes out when fasthttp reads for its answer, which saves
// the read that would find nothing (rawsock/ask.go; fasthttp reads after
// every request it writes). Not under TLS, which writes alerts no read
// follows.
func dialRaw(d *fasthttp.TCPDialer, isTLS bool, fallback time.Duration) fasthttp.DialFuncWithTimeout {
	return func(addr string, timeout time.Duration) (net.Conn, error) {
		if timeout <= 0 {
			// fasthttp dials for a request waiting on a full pool with no
			// timeout (HostClient.dialConnFor); the dialer would take 0
			// as a deadline already past and fail at once.
			timeout = fallback
		}
		c, err := d.DialTimeout(addr, timeout)
		if err != nil {
			return nil, err
		}
		if isTLS {
			return rawsock.Wrap(c), nil
		}
		return rawsock.WrapClient(c), nil
	}
}
