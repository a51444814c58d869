package gateway

import (
	"bytes"
	"errors"
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// Admission: what is decided before a body is read, and how it is read.
//
// The server streams request bodies (fasthttp's StreamRequestBody), so
// the handler runs once the headers are in and reads the body itself
// (readBody), knowing the route. Before calling the handler, fasthttp
// v1.79.0 reads min(the request's body limit, Content-Length, 8 KiB)
// bytes of a body with a Content-Length (none of a chunked one, none
// before "100 Continue"); bodyHead sets that limit to one byte, so the
// refusals made on the headers (checkHead: version, framing, route,
// allow_ips, declared size, body memory) cost at most one body byte. A
// request with "Expect: 100-continue" is checked the same way by expect
// before anything is read: a refusal is answered instead of "100
// Continue".
//
// This replaces admission in fasthttp's HeaderReceived hook, which gets
// the header only: finding the connection from it took unsafe pointer
// arithmetic into fasthttp.RequestCtx, valid for one fasthttp version.
//
// The body memory budget (server.max_body_memory) holds the body bytes
// that have arrived, not the ones declared: a sender that declares 1 MiB
// and sends a byte a second holds a byte. Each client address may hold
// at most server.per_ip_share of the budget (half by default), so one
// address cannot starve the others.
// Bodies also have a deadline that grows with their declared size
// (bodyTimeout), so a trickled body is cut off long before read_timeout
// unless it is large.

const (
	// bodyGrace and minBodyRate make a body's deadline: grace plus its
	// declared size at the rate, at most server.read_timeout. A 4 KiB
	// webhook has about 2 s, 1 MiB the whole read timeout (10 s by
	// default). Webhook senders are servers: 64 KiB/s is far below their
	// links, and far above a trickle.
	bodyGrace   = 2 * time.Second
	minBodyRate = 64 << 10 // bytes a second

	// bodyChunk is the smallest buffer a body is read into.
	bodyChunk = 4 << 10
)

// codeVersionNotSupported is the 505's code (the others are in respond.go).
const codeVersionNotSupported = "http_version_not_supported"

// refusal is why admission refused a request (refuseAdmission).
type refusal uint8

const (
	refusedIP       refusal = iota + 1 // 401 ip_not_allowed
	refusedOverload                    // 503 overloaded: body memory budget
)

// bodyTimeout is how long the body of a request declaring n bytes (-1:
// chunked, sized at the route's limit) may take to arrive.
func (g *Gateway) bodyTimeout(n int64) time.Duration {
	d := bodyGrace + time.Duration(n)*time.Second/minBodyRate
	if rt := g.server.ReadTimeout; rt > 0 && d > rt {
		d = rt
	}
	return d
}

// bodyHead is fasthttp's HeaderReceived hook: the headers are in, the
// body is not. It sets how much of the body fasthttp reads before the
// handler (one byte, see above) and the body's deadline.
func (g *Gateway) bodyHead(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	n := int64(h.ContentLength())
	switch n {
	case -2: // no body
		return fasthttp.RequestConfig{MaxRequestBodySize: 1}
	case -1: // chunked
		n = int64(g.tbl.Load().maxBody)
	}
	return fasthttp.RequestConfig{MaxRequestBodySize: 1, ReadTimeout: g.bodyTimeout(n)}
}

// connOf is the connection as Serve counts it (its address's shared body
// reservation and connection count, and the head scanner); nil when ctx
// did not come through Serve (the handler driven directly, in tests and
// benchmarks).
func connOf(ctx *fasthttp.RequestCtx) *countedConn {
	return counted(ctx.Conn())
}

// expect is fasthttp's ExpectHandler, for "Expect: 100-continue": the
// checks on the headers run before the body is invited. A refusal is
// answered here in full, logged and counted; fasthttp v1.79.0 then skips
// the handler, sets the status we return, writes the response as we
// left it and closes the connection (its doc asks handlers not to touch
// the response; TestExpectContinueRefusedFirst fails if a fasthttp
// upgrade drops our body). An admitted request gets "100 Continue" and
// goes to handle.
func (g *Gateway) expect(ctx *fasthttp.RequestCtx) int {
	st := g.begin(ctx)
	t := g.acquire()
	if t == nil {
		g.refuseShuttingDown(ctx, st)
	} else {
		if _, ok := g.checkHead(ctx, st, t); ok {
			t.release()
			st.reset()
			g.states.Put(st)
			if cc := connOf(ctx); cc != nil {
				cc.interim = true // fasthttp writes the 100 Continue next (listener.go, timeouts)
			}
			return fasthttp.StatusContinue
		}
		t.release()
	}
	ctx.SetConnectionClose()
	g.finish(ctx, st)
	return ctx.Response.StatusCode()
}

// checkHead makes the checks that need only the request's headers, in
// the order a request meets them; a refusal answers and returns false.
func (g *Gateway) checkHead(ctx *fasthttp.RequestCtx, st *reqState, t *table) (*route, bool) {
	h := &ctx.Request.Header
	if p := h.Protocol(); len(p) != len("HTTP/1.1") || p[5] != '1' {
		// fasthttp takes any HTTP/d.d; nginx answers 505 to a major
		// version it does not speak.
		ctx.SetConnectionClose()
		writeError(ctx, st, fasthttp.StatusHTTPVersionNotSupported, codeVersionNotSupported,
			append(st.msg[:0], "this gateway speaks HTTP/1.1 (and 1.0): send the request as HTTP/1.1"...))
		return nil, false
	}
	if h.ConnectionClose() && bothFramings(h.RawHeaders()) {
		// fasthttp takes Transfer-Encoding and marks the connection to
		// close; RFC 9112 §6.1 lets a server refuse, and an edge should:
		// the two framings disagree, which is how requests are smuggled.
		ctx.SetConnectionClose()
		writeError(ctx, st, fasthttp.StatusBadRequest, codeBadRequest,
			append(st.msg[:0], "the request has both Content-Length and Transfer-Encoding: send only one of them"...))
		return nil, false
	}
	method, path := ctx.Method(), ctx.Path()
	pr := t.lookup(path)
	if pr == nil {
		g.refuseNotFound(ctx, st, method, path)
		return nil, false
	}
	rt := pr.match(method)
	if rt == nil {
		g.refuseMethod(ctx, st, pr, method, path)
		return nil, false
	}
	st.stats, st.rec = rt.stats, rt.rec
	st.ev.Route = rt.name // for the log lines, refusals included
	if rt.verifier != nil && !rt.verifier.AllowedIP(remoteIP(ctx)) {
		g.refuseAdmission(ctx, st, rt, refusedIP)
		return rt, false
	}
	n := int64(h.ContentLength())
	if n > int64(rt.maxBody) {
		g.refuseTooLarge(ctx, st, rt.maxBody)
		return rt, false
	}
	if cc := connOf(ctx); cc != nil && n > 0 && g.maxBodyMem > 0 &&
		(g.bodyMem.Load()+n > g.maxBodyMem || !g.addrMayHold(cc.addr.body.Load()+n, n, rt)) {
		// A body that could not be held now is refused before it is read.
		g.refuseAdmission(ctx, st, rt, refusedOverload)
		return rt, false
	}
	return rt, true
}

// bothFramings reports whether a request head carries both a
// Content-Length and a Transfer-Encoding header. fasthttp keeps one of
// the two, so the raw headers are read; it is called only for requests
// fasthttp marked to close, which it does for every such request.
func bothFramings(raw []byte) bool {
	var cl, te bool
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		name, _, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		cl = cl || bytes.EqualFold(name, strContentLength)
		te = te || bytes.EqualFold(name, strTransferEncoding)
	}
	return cl && te
}

var (
	strContentLength    = []byte(fasthttp.HeaderContentLength)
	strTransferEncoding = []byte(fasthttp.HeaderTransferEncoding)
)

// errTooLarge is readBody's error for a body over the route's limit.
var errTooLarge = errors.New("body over the route's limit")

// readBody reads the request body into st.body and returns it. Bytes
// are reserved from the body memory budget (in all and for the client's
// address) as they arrive, and released by finish. A refusal (413, 408,
// 400, 503) answers, marks the connection to close (the rest of the body
// is not read) and returns false.
func (g *Gateway) readBody(ctx *fasthttp.RequestCtx, st *reqState, rt *route) ([]byte, bool) {
	r := ctx.RequestBodyStream()
	if r == nil {
		// No body stream: the handler driven directly (tests,
		// benchmarks), or a request without body framing; what body
		// there is is in memory.
		return ctx.PostBody(), true
	}
	cc := connOf(ctx)
	limit := rt.maxBody
	// The buffer grows as the body arrives, never ahead of it by more than
	// the bytes already read (or keepBodyMax): a sender that declares
	// 1 MiB and sends nothing makes nothing be allocated.
	b := st.body[:0]
	for {
		if len(b) == cap(b) {
			want := max(2*cap(b), bodyChunk)
			if n := ctx.Request.Header.ContentLength(); n >= 0 {
				// A declared size is trusted up to keepBodyMax, which any
				// body may take; past that the buffer grows as the body
				// arrives. The +1 sees EOF without growing again.
				want = min(max(want, min(n+1, keepBodyMax)), n+1)
			}
			want = min(want, limit+1) // one byte over the limit is enough to refuse
			nb := make([]byte, len(b), want)
			copy(nb, b)
			b = nb
		}
		n, err := r.Read(b[len(b):cap(b)])
		if n > 0 {
			b = b[:len(b)+n]
			if !g.reserve(cc, st, rt, int64(n)) {
				st.body = b[:0]
				ctx.SetConnectionClose()
				g.refuseAdmission(ctx, st, rt, refusedOverload)
				return nil, false
			}
			if len(b) > limit {
				err = errTooLarge
			}
		}
		if err == io.EOF {
			if n := ctx.Request.Header.ContentLength(); n >= 0 && len(b) < n {
				// fasthttp's request stream ends a body cut short by the
				// sender closing with a plain EOF: never take it whole.
				err = io.ErrUnexpectedEOF
			} else {
				st.body = b[:0]
				return b, true
			}
		}
		if err != nil {
			st.body = b[:0]
			ctx.SetConnectionClose()
			g.refuseBodyRead(ctx, st, rt, err)
			return nil, false
		}
	}
}

// addrMayHold says whether a client address holding mine bytes (this
// request's own included) may go on, this request holding its of them.
// The address may hold its share of the budget (server.per_ip_share), so
// one address cannot starve the others; past it, only one request at a
// time, and only up to the route's limit: config lets max_body go up to
// max_body_memory, and one such body must always fit. (Allowing the
// route's limit to the address as a whole would let it spread that over
// many slow requests, past its share.)
func (g *Gateway) addrMayHold(mine, its int64, rt *route) bool {
	if mine <= g.maxAddrBodyMem {
		return true
	}
	return mine == its && its <= int64(rt.maxBody)
}

// reserve takes n body bytes from the budget; false, with nothing taken,
// when the budget or the client address's share of it is spent (a
// refused reservation must not hold up other senders until finish).
func (g *Gateway) reserve(cc *countedConn, st *reqState, rt *route, n int64) bool {
	if cc == nil || g.maxBodyMem <= 0 {
		return true
	}
	total := g.bodyMem.Add(n)
	mine := cc.addr.body.Add(n)
	if total > g.maxBodyMem || !g.addrMayHold(mine, st.held+n, rt) {
		g.bodyMem.Add(-n)
		cc.addr.body.Add(-n)
		return false
	}
	st.addr = cc.addr
	st.held += n
	return true
}

// release gives back what reserve took for st.
func (g *Gateway) release(st *reqState) {
	if st.held != 0 {
		g.bodyMem.Add(-st.held)
		st.addr.body.Add(-st.held)
		st.held, st.addr = 0, nil
	}
}

// refuseBodyRead answers a body that could not be read whole.
func (g *Gateway) refuseBodyRead(ctx *fasthttp.RequestCtx, st *reqState, rt *route, err error) {
	var ne net.Error
	switch {
	case errors.Is(err, errTooLarge):
		g.refuseTooLarge(ctx, st, rt.maxBody)
	case errors.As(err, &ne) && ne.Timeout():
		g.refuseTimeout(ctx, st)
	default:
		g.refuseMalformed(ctx, st)
	}
}

// refuseShuttingDown answers a request on a connection still open after
// Shutdown gave up waiting.
func (g *Gateway) refuseShuttingDown(ctx *fasthttp.RequestCtx, st *reqState) {
	ctx.SetConnectionClose()
	writeError(ctx, st, fasthttp.StatusServiceUnavailable, codeOverloaded,
		append(st.msg[:0], "the gateway is shutting down: retry in a moment"...))
}

func (g *Gateway) refuseTimeout(ctx *fasthttp.RequestCtx, st *reqState) {
	writeError(ctx, st, fasthttp.StatusRequestTimeout, codeRequestTimeout,
		append(st.msg[:0], "the request was not received in time (server.read_timeout; a body gets 2 s plus 1 s per 64 KiB declared): send it faster or in one piece"...))
}

func (g *Gateway) refuseMalformed(ctx *fasthttp.RequestCtx, st *reqState) {
	writeError(ctx, st, fasthttp.StatusBadRequest, codeBadRequest,
		append(st.msg[:0], "the request could not be read as HTTP/1.1: check the request line, headers (lines end with CRLF) and body framing"...))
}

// BodyMemory is the number of body bytes reserved right now.
func (g *Gateway) BodyMemory() int64 { return g.bodyMem.Load() }
