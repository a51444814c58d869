package gateway

import (
	"bytes"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// Admission runs in fasthttp's HeaderReceived hook: the headers are read,
// the body is not. Three refusals are decided here, so that their bodies
// are never buffered:
//
//   - no route serves the method and path (404 or 405 follows anyway);
//   - the route's allow_ips does not hold the sender's address;
//   - the bodies being held would exceed server.max_body_memory.
//
// fasthttp allocates a request's whole body (its Content-Length) before
// reading it, so without the budget max_concurrency requests of max_body
// each could be held at once: 4096 x 1MiB. The budget reserves each
// request's Content-Length (a chunked body: the route's limit) and
// releases it when the handler finishes, or when the connection closes
// if the handler never runs.
//
// A refused request gets a body limit of one byte: fasthttp refuses the
// body unread and calls the ErrorHandler, which answers with the refusal
// recorded on the connection (handleReadError). A body of zero or one byte
// is read and the handler answers the same way.

// refusal is what admission decided for a connection's current request.
type refusal uint8

const (
	admitted        refusal = iota
	refusedNoRoute          // 404 route_not_found or 405 method_not_allowed
	refusedIP               // 401 ip_not_allowed
	refusedOverload         // 503 overloaded: body memory budget
)

// ctxHeaderOffset is where Request.Header sits inside a RequestCtx.
var ctxHeaderOffset = unsafe.Offsetof(fasthttp.RequestCtx{}.Request) + unsafe.Offsetof(fasthttp.Request{}.Header)

// ctxOf recovers the RequestCtx whose header HeaderReceived was given.
//
// # Notes
//
// HeaderReceived gets only the header, but admission needs the
// connection (the sender's address, and where to record the
// reservation). fasthttp v1.79.0 (pinned in go.mod; server.go,
// serveConnCounted) calls it with &ctx.Request.Header of the serving
// RequestCtx, always, so the context is found by subtracting the field
// offset. TestAdmitFindsContext fails if a fasthttp upgrade changes that.
func ctxOf(h *fasthttp.RequestHeader) *fasthttp.RequestCtx {
	return (*fasthttp.RequestCtx)(unsafe.Add(unsafe.Pointer(h), -int(ctxHeaderOffset)))
}

// connOf is the connection's admission state; nil when ctx did not come
// through Serve (the handler driven directly, in tests and benchmarks).
func connOf(ctx *fasthttp.RequestCtx) *countedConn {
	c, _ := ctx.Conn().(*countedConn)
	return c
}

// match finds the route of a request from its header alone.
func (t *table) match(h *fasthttp.RequestHeader) *route {
	uri := h.RequestURI()
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i]
	}
	if p := t.lookup(uri); p != nil {
		return p.match(h.Method())
	}
	return nil
}

// admit is the HeaderReceived hook: it sets the route's body limit and
// decides admission (see above).
func (g *Gateway) admit(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	t := g.tbl.Load()
	rt := t.match(h)
	limit := t.maxBody
	if rt != nil {
		limit = rt.maxBody
	}
	cc := connOf(ctxOf(h))
	if cc == nil {
		return fasthttp.RequestConfig{MaxRequestBodySize: limit}
	}
	cc.admitted() // a reservation the last request left behind, if any
	refuse := fasthttp.RequestConfig{MaxRequestBodySize: 1}
	if rt == nil {
		cc.refused = refusedNoRoute
		return refuse
	}
	if rt.verifier != nil && !rt.verifier.AllowedIP(remoteIP(ctxOf(h))) {
		cc.refused = refusedIP
		return refuse
	}
	if g.maxBodyMem > 0 {
		n := int64(h.ContentLength())
		if n < 0 {
			n = int64(limit) // chunked: it may grow to the limit
		}
		if n > int64(limit) {
			// fasthttp refuses it as too large before reading it.
			return fasthttp.RequestConfig{MaxRequestBodySize: limit}
		}
		if n > 0 {
			if g.bodyMem.Add(n) > g.maxBodyMem {
				g.bodyMem.Add(-n)
				cc.refused = refusedOverload
				return refuse
			}
			cc.held.Store(n)
		}
	}
	return fasthttp.RequestConfig{MaxRequestBodySize: limit}
}

// BodyMemory is the number of body bytes reserved right now.
func (g *Gateway) BodyMemory() int64 { return g.bodyMem.Load() }
