// Package sink is a capture server: a stand-in target that records every
// request it receives and answers as told. Tests use it wherever hookgate
// must deliver somewhere real, and `hookgate sink` runs it on the command
// line so a newcomer can watch deliveries arrive.
//
//	s, err := sink.Start("127.0.0.1:0", sink.Options{Statuses: []int{503, 200}})
//	...
//	defer s.Close()
//	reqs, err := s.Wait(2, 5*time.Second) // the 503 and the retried 200
//
// # Notes
//
//   - Header names in Request.Headers are in fasthttp's canonical form
//     ("Webhook-Id", "X-Api-Key"); use Request.Header for a case-insensitive
//     lookup.
//   - With Options.Discard the sink only counts: Requests and Wait return no
//     requests, Count and Wait still work. Use it for load tests and
//     benchmarks: without a Delay it allocates nothing per request.
package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/internal/connset"
)

// Options says how a sink answers and where it reports.
type Options struct {
	Status     int           // answer status; 0 means 200
	Statuses   []int         // answered in order to the first len(Statuses) requests, then Status
	Delay      time.Duration // wait this long before answering (a slow target)
	Body       string        // answer body; "" means {"ok":true}
	RetryAfter string        // Retry-After header value on every answer; "" means none
	Out        io.Writer     // one JSON object per request and line; nil means none
	Discard    bool          // count only: keep nothing, write nothing
}

// DefaultBody is the answer body when Options.Body is empty.
const DefaultBody = `{"ok":true}`

// Request is a copy of one received request.
type Request struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`  // as sent, not decoded
	Query   string            `json:"query"` // raw query string without '?'
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	At      time.Time         `json:"-"`
}

// Header returns the value of the header named name, ignoring case; "" if
// absent. Repeated headers are joined with ", ".
func (r Request) Header(name string) string {
	if v, ok := r.Headers[name]; ok {
		return v
	}
	for k, v := range r.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// ErrTimeout is returned by Wait when fewer requests than asked arrived in
// time.
var ErrTimeout = errors.New("sink: timed out waiting for requests")

// Sink is a running capture server. It is safe for concurrent use.
type Sink struct {
	opts    Options
	body    []byte
	retry   []byte
	ln      *countingListener
	srv     *fasthttp.Server
	served  chan struct{} // closed when Serve returns
	closing chan struct{} // closed by Close: cuts Delay short
	once    sync.Once

	count   atomic.Int64 // requests received
	ordinal atomic.Int64 // requests answered from Statuses so far

	mu      sync.Mutex
	reqs    []Request
	arrived chan struct{} // closed and replaced on every recorded request

	outMu sync.Mutex
}

// Start listens on addr (use "127.0.0.1:0" in tests) and serves until
// Close.
func Start(addr string, opts Options) (*Sink, error) {
	if opts.Status == 0 {
		opts.Status = fasthttp.StatusOK
	}
	if opts.Status < 100 || opts.Status > 999 {
		return nil, fmt.Errorf("sink: status %d is not an HTTP status", opts.Status)
	}
	for _, st := range opts.Statuses {
		if st < 100 || st > 999 {
			return nil, fmt.Errorf("sink: status %d is not an HTTP status", st)
		}
	}
	if opts.Body == "" {
		opts.Body = DefaultBody
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sink: listen on %s: %w", addr, err)
	}
	s := &Sink{
		opts:    opts,
		body:    []byte(opts.Body),
		retry:   []byte(opts.RetryAfter),
		ln:      &countingListener{Listener: ln},
		served:  make(chan struct{}),
		closing: make(chan struct{}),
		arrived: make(chan struct{}),
	}
	s.srv = &fasthttp.Server{
		Handler:               s.handle,
		Name:                  "hookgate-sink",
		MaxRequestBodySize:    64 << 20,
		ReadTimeout:           time.Minute,
		IdleTimeout:           time.Minute,
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		NoDefaultContentType:  true,
		// Multipart bodies are recorded as sent, never parsed.
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
	}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(s.ln)
	}()
	return s, nil
}

// Addr is the listening address, "127.0.0.1:PORT".
func (s *Sink) Addr() string { return s.ln.Addr().String() }

// URL is "http://" + Addr.
func (s *Sink) URL() string { return "http://" + s.Addr() }

// Count is the number of requests received so far, including those still
// being answered.
func (s *Sink) Count() int { return int(s.count.Load()) }

// Conns is the number of TCP connections accepted so far.
func (s *Sink) Conns() int { return int(s.ln.accepted.Load()) }

// Requests returns copies of every request recorded so far, in arrival
// order.
func (s *Sink) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Wait blocks until at least n requests have arrived or timeout passes,
// and returns the recorded requests (none in Discard mode). On timeout it
// returns what arrived and an error wrapping ErrTimeout.
func (s *Sink) Wait(n int, timeout time.Duration) ([]Request, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	if s.opts.Discard {
		// Discard mode keeps the request path free of channel churn, so
		// poll the counter instead.
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for s.Count() < n {
			select {
			case <-tick.C:
			case <-deadline.C:
				return nil, fmt.Errorf("%w: got %d of %d in %v", ErrTimeout, s.Count(), n, timeout)
			}
		}
		return nil, nil
	}
	for {
		s.mu.Lock()
		got, arrived := len(s.reqs), s.arrived
		if got >= n {
			reqs := append([]Request(nil), s.reqs...)
			s.mu.Unlock()
			return reqs, nil
		}
		s.mu.Unlock()
		select {
		case <-arrived:
		case <-deadline.C:
			reqs := s.Requests()
			return reqs, fmt.Errorf("%w: got %d of %d in %v", ErrTimeout, len(reqs), n, timeout)
		}
	}
}

// Close stops the sink: it stops accepting, cuts any Delay short, waits up
// to 5s for answers in flight, then closes every connection.
func (s *Sink) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closing)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = s.srv.ShutdownWithContext(ctx)
		// Shutdown closes only the listeners Serve has registered. Right
		// after Start the serving goroutine may not have run yet: it would
		// then register a listener nobody closes and Serve would never
		// return. Closing it here makes that Serve return at once (a second
		// close of an already closed listener only returns an error).
		_ = s.ln.Listener.Close()
		s.ln.closeAll()
		<-s.served
		if errors.Is(err, context.DeadlineExceeded) {
			err = nil // connections were closed by force; nothing to report
		}
	})
	return err
}

func (s *Sink) handle(ctx *fasthttp.RequestCtx) {
	s.count.Add(1)
	if !s.opts.Discard {
		s.record(ctx)
	}
	if s.opts.Delay > 0 {
		t := time.NewTimer(s.opts.Delay)
		select {
		case <-t.C:
		case <-s.closing:
			t.Stop()
		}
	}
	status := s.opts.Status
	if len(s.opts.Statuses) > 0 {
		if i := s.ordinal.Add(1) - 1; i < int64(len(s.opts.Statuses)) {
			status = s.opts.Statuses[i]
		}
	}
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	if len(s.retry) > 0 {
		ctx.Response.Header.SetBytesKV(headerRetryAfter, s.retry)
	}
	ctx.Response.SetBodyRaw(s.body)
}

var (
	contentTypeJSON  = []byte("application/json")
	headerRetryAfter = []byte("Retry-After")
)

// record copies the request out of fasthttp's buffers, which are reused
// after the handler returns.
func (s *Sink) record(ctx *fasthttp.RequestCtx) {
	r := Request{
		Method:  string(ctx.Method()),
		Path:    string(ctx.URI().PathOriginal()),
		Query:   string(ctx.URI().QueryString()),
		Headers: map[string]string{},
		Body:    string(ctx.Request.Body()),
		At:      time.Now(),
	}
	for k, v := range ctx.Request.Header.All() {
		key := string(k)
		if prev, ok := r.Headers[key]; ok {
			r.Headers[key] = prev + ", " + string(v)
		} else {
			r.Headers[key] = string(v)
		}
	}
	if s.opts.Out != nil {
		line, err := json.Marshal(r)
		if err == nil {
			line = append(line, '\n')
			s.outMu.Lock()
			_, _ = s.opts.Out.Write(line)
			s.outMu.Unlock()
		}
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, r)
	close(s.arrived)
	s.arrived = make(chan struct{})
	s.mu.Unlock()
}

// countingListener counts accepted connections and remembers open ones so
// Close can cut them.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
	conns    connset.Set
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.accepted.Add(1)
	return l.conns.Add(c), nil
}

func (l *countingListener) closeAll() { l.conns.CloseAll() }
