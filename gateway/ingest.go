package gateway

import (
	"net/netip"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"
	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/dedupe"
	"github.com/hookgate/hookgate/gateway/record"
	"github.com/hookgate/hookgate/gateway/target"
	"github.com/hookgate/hookgate/gateway/verify"
)

// reqState is everything one request needs, pooled so that the hot path
// allocates nothing once the pool is warm. Nothing in it outlives the
// request: the queue copies what it stores, targets copy what they send.
type reqState struct {
	ev      delivery.Event
	evBody  []byte // ev.Body's own buffer; ev.Body may alias the request body
	out     delivery.Outcome
	ds      []delivery.Delivery // the default deliveries (no plugin emitted)
	clients []*target.Client
	res     []target.Result
	errs    []error
	jobs    []fanJob
	wg      sync.WaitGroup
	buf     []byte // response body being built
	msg     []byte // error message being built
	code    string // error code answered, "" if none
	query   []byte // ev.Query as received (credential removed), to see whether a plugin changed it

	took     []time.Duration    // per delivery of a sync forward
	sent     time.Time          // when a sync forward started sending
	attempts []delivery.Attempt // a sync forward's, one per delivery

	// rec is the route's recorder (the unrouted one until a route
	// matches); answer is what finish tells it, filled as the request
	// goes (Event, Duplicate, Dropped, Deliveries, Attempts).
	rec    record.Route
	answer record.Answer

	body []byte     // the request body as readBody read it (served requests)
	held int64      // body bytes reserved from the budget; finish releases them
	addr *addrState // the client address they are also reserved from

	stats    *routeStats // the route's counters (the unrouted ones until a route matches)
	start    time.Time
	key      []byte          // dedupe key
	dd       *dedupe.Deduper // set when Begin recorded key: finish accepts or forgets it
	shared   SharedDedupe    // set when the key was claimed in the shared store too
	ttl      time.Duration   // the route's dedupe ttl, for the shared Accept
	accepted bool            // the event was accepted: a later copy is a duplicate
}

var hdrEventID = []byte("Hookgate-Event-Id")

// begin takes a request's state from the pool, stamps its event id with
// the time now (ctx.Time() is not set yet when fasthttp calls the
// ExpectHandler or the ErrorHandler, and ids must sort by arrival) and
// counts it as unrouted until a route matches.
func (g *Gateway) begin(ctx *fasthttp.RequestCtx) *reqState {
	st := g.states.Get().(*reqState)
	now := time.Now()
	st.ev.ID = appendEventID(st.ev.ID[:0], now)
	ctx.Response.Header.SetCanonical(hdrEventID, st.ev.ID)
	st.stats, st.rec, st.start = g.unrouted, g.tbl.Load().unrouted, now
	return st
}

// reset clears what begin and the checks on the headers set, for a state
// going back to the pool without a request (an admitted Expect).
func (st *reqState) reset() {
	st.ev.Reset()
	st.ev.Body = st.evBody[:0]
	st.stats, st.rec = nil, nil
}

// handle is the ingest handler. The steps are in the order a request
// meets them; each refusal answers with a JSON error and returns:
//
//  1. the checks on the headers (checkHead, admit.go): HTTP version 505,
//     Content-Length with Transfer-Encoding 400, route 404/405, IP allow
//     list 401 ip_not_allowed, declared body over the limit 413, body
//     memory budget 503 overloaded
//  2. the body, read as it arrives (readBody): over the limit 413, too
//     slow 408, malformed 400, budget 503
//  3. in-flight cap (server.max_concurrency): 503 overloaded
//  4. verify: 401 with the verify reason
//  5. JSON check (UTF-8 included): 400
//  6. dedupe: a repeat of an accepted event gets a success with the first
//     copy's id and "duplicate":true, a copy still in flight 409 in_progress
//  7. transforms, deliveries, queue or forward
//
// The body is read before the in-flight cap is taken: a slow body holds
// its connection and the bytes it sent, not a slot that plugins and
// targets are sized by. Verify comes before everything that reads the
// body's content (JSON, dedupe keys, plugins): nothing a forger sends is
// looked at, and only verified senders can fill the dedupe memory.
func (g *Gateway) handle(ctx *fasthttp.RequestCtx) {
	st := g.begin(ctx)
	defer g.finish(ctx, st)
	now := st.start

	t := g.acquire()
	if t == nil {
		// Shutdown gave up waiting and this connection is still open.
		g.refuseShuttingDown(ctx, st)
		return
	}
	defer t.release()

	rt, ok := g.checkHead(ctx, st, t)
	if !ok {
		if n := ctx.Request.Header.ContentLength(); ctx.Request.IsBodyStream() && (n < 0 || n > keepBodyMax) {
			// The body is not read. fasthttp reads and drops a small one
			// after the answer (under the body deadline), as nginx does,
			// and the connection is reused; a large or chunked one is not
			// worth reading: the connection closes.
			ctx.SetConnectionClose()
		}
		return
	}
	body, ok := g.readBody(ctx, st, rt)
	if !ok {
		return
	}

	if n := g.inflight.Add(1); g.maxInflight > 0 && n > g.maxInflight {
		g.inflight.Add(-1)
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
		writeError(ctx, st, fasthttp.StatusServiceUnavailable, codeOverloaded,
			append(st.msg[:0], "the gateway is at its limit of requests in flight (server.max_concurrency): retry after a second"...))
		return
	}
	defer g.inflight.Add(-1)

	method := ctx.Method()
	ip := remoteIP(ctx)
	if rt.verifier != nil {
		err := rt.verifier.Verify(verify.Request{
			Method:   method,
			RawQuery: ctx.URI().QueryString(),
			Header:   &ctx.Request.Header,
			Body:     body,
			RemoteIP: ip,
		}, now)
		if err != nil {
			g.refuseVerify(ctx, st, rt, err)
			return
		}
	}
	// RFC 8259 §8.1: JSON between systems is UTF-8. gjson checks the
	// syntax only; utf8.Valid runs 8 ASCII bytes at a time.
	if rt.json && (!gjson.ValidBytes(body) || !utf8.Valid(body)) {
		writeError(ctx, st, fasthttp.StatusBadRequest, codeInvalidJSON,
			append(append(append(st.msg[:0], "route \""...), rt.name...), "\" expects a JSON body and this one is not valid JSON: check the payload and its encoding"...))
		return
	}
	if rt.deduper != nil {
		key, ok := rt.deduper.Key(ctx.Request.Header.PeekBytes, body, st.key[:0])
		st.key = key
		if ok {
			first, seen := rt.deduper.Begin(key, st.ev.ID)
			if seen == dedupe.First && t.deps.Dedupe != nil {
				var ok bool
				if first, seen, ok = g.beginShared(ctx, st, rt, t.deps.Dedupe, key); !ok {
					return
				}
			}
			switch seen {
			case dedupe.Duplicate:
				g.answerDuplicate(ctx, st, rt, first)
				return
			case dedupe.InFlight:
				g.refuseInProgress(ctx, st)
				return
			}
			// finish accepts the key or forgets it, whatever happens next.
			st.dd = rt.deduper
			st.shared = t.deps.Dedupe
			st.ttl = rt.dedupeSpec.TTL
		}
	}

	g.fillEvent(ctx, st, rt, now, body)
	st.answer.Event = true

	ds := st.ds[:0]
	if rt.chain != nil {
		st.out.Reset()
		err := rt.chain.Run(g.ctx, &st.ev, &st.out)
		st.rec.Chained(&st.ev, &st.out, err)
		if err != nil {
			g.refusePlugin(ctx, st, rt)
			return
		}
		if st.out.Dropped {
			g.answerDropped(ctx, st, rt)
			return
		}
		if st.out.Emitted {
			ds = st.out.Deliveries
			for i := range ds {
				if c := t.client(ds[i].Target); c == nil {
					g.refuseUnknownTarget(ctx, st, rt, ds[i].Target)
					return
				}
			}
		}
	}
	if rt.chain == nil || !st.out.Emitted {
		var nb int64
		if rt.chain != nil {
			nb = st.out.NotBefore
		}
		st.ds = delivery.Defaults(st.ds[:0], &st.ev,
			delivery.Original{Method: ctx.Method(), Path: ctx.Path(), Query: st.query}, nb, rt.names)
		ds = st.ds
	}
	for i := range ds {
		d := &ds[i]
		d.ID = appendDeliveryID(d.ID[:0], st.ev.ID, i)
		d.EventID = append(d.EventID[:0], st.ev.ID...)
		d.Route = rt.name
		if rt.delay > 0 {
			if nb := st.ev.ReceivedAt + int64(rt.delay); nb > d.NotBefore {
				d.NotBefore = nb
			}
		}
	}

	if !rt.sync {
		g.enqueue(ctx, st, t, ds)
		return
	}
	// A sync route has no route delay (config refuses it), so a
	// not-before time here came from a plugin's set_delay; one of 0 ms
	// (not after the event's arrival) is no delay.
	for i := range ds {
		if ds[i].NotBefore > st.ev.ReceivedAt {
			g.refusePluginDelay(ctx, st, rt)
			return
		}
	}
	g.forward(ctx, st, t, rt, ds)
}

// remoteIP is the TCP peer's address. hookgate takes no forwarded-for
// header: behind a proxy, allow_ips sees the proxy.
func remoteIP(ctx *fasthttp.RequestCtx) netip.Addr {
	if c := connOf(ctx); c != nil && c.addr != nil {
		return c.addr.ip // taken once, when the connection was accepted
	}
	ip, _ := netip.AddrFromSlice(ctx.RemoteIP())
	return ip.Unmap()
}

// fillEvent copies what the chain and the deliveries need out of ctx.
func (g *Gateway) fillEvent(ctx *fasthttp.RequestCtx, st *reqState, rt *route, now time.Time, body []byte) {
	ev := &st.ev
	ev.Route = rt.name
	ev.ReceivedAt = now.UnixNano()
	ev.Method = append(ev.Method[:0], ctx.Method()...)
	ev.Path = append(ev.Path[:0], ctx.Path()...)
	// The sender's credential for hookgate (verify basic or token) is
	// taken out here, so neither plugins nor targets ever see it.
	cred := &rt.cred
	ev.Query = cred.AppendQuery(ev.Query[:0], ctx.URI().QueryString())
	st.query = append(st.query[:0], ev.Query...)
	ev.Headers = ev.Headers[:0]
	ctx.Request.Header.VisitAll(func(k, v []byte) {
		if cred.IsHeader(k) {
			return
		}
		ev.Headers = delivery.Append(ev.Headers, k, v)
	})
	if rt.chain != nil {
		// A plugin may rewrite the body in place: give it our own copy.
		ev.Body = append(st.evBody[:0], body...)
		st.evBody = ev.Body[:0]
	} else {
		// Nothing changes the body: deliveries send the request's own
		// bytes, which live until the handler returns.
		ev.Body = body
	}
}

// finish runs after every request: it recovers a panic into a 500 (a bug
// must cost one request, not the process), records the answer, and
// returns st to the pool with no reference into the request.
func (g *Gateway) finish(ctx *fasthttp.RequestCtx, st *reqState) {
	if v := recover(); v != nil {
		g.log.Error("ingest: panic while handling a request; answered 500", "event_id", string(st.ev.ID), "route", st.ev.Route, "panic", v)
		ctx.Response.ResetBody()
		writeError(ctx, st, fasthttp.StatusInternalServerError, codeInternal,
			append(st.msg[:0], "the gateway failed while handling this request; it has been logged with the event id"...))
	}
	g.record(ctx, st, ctx.Method(), ctx.Path())
	if st.dd != nil {
		if st.accepted {
			st.dd.Accept(st.key, st.ev.ID)
		} else {
			st.dd.Forget(st.key, st.ev.ID)
		}
		st.dd = nil
	}
	if st.shared != nil {
		g.finishShared(st)
	}
	st.accepted = false
	g.release(st)
	st.code = ""
	// Drop aliases of the request body before anything reuses the buffers.
	st.ev.Body = st.evBody[:0]
	for i := range st.ds {
		st.ds[i].Body = nil
	}
	for i := range st.res {
		st.res[i].Reset()
		st.errs[i] = nil
		st.clients[i] = nil
		st.jobs[i] = fanJob{}
		st.took[i] = 0
	}
	st.ev.Reset()
	st.ev.Body = st.evBody[:0]
	st.out.Reset()
	if cap(st.body) > keepBodyMax {
		st.body = nil // as dropLargeBody: a pooled state keeps no large body
	}
	g.states.Put(st)
	if !ctx.Request.IsBodyStream() {
		// Served requests read their body into st.body; only a body set
		// in memory (the handler driven directly) is in the request.
		dropLargeBody(ctx)
	}
}

// record tells the route's recorder how the request was answered, and
// counts a refusal for Counts. method and path are nil for a request
// fasthttp could not read (it reset them).
func (g *Gateway) record(ctx *fasthttp.RequestCtx, st *reqState, method, path []byte) {
	a := &st.answer
	a.EventID, a.Route, a.ReceivedAt = st.ev.ID, st.ev.Route, st.ev.ReceivedAt
	a.Status, a.Code, a.Took = ctx.Response.StatusCode(), st.code, time.Since(st.start)
	a.RemoteIP, a.Method, a.Path = remoteIP(ctx), method, path
	if st.code != "" {
		a.Message = st.msg
		st.stats.refuse(st.code)
	}
	st.rec.Answered(a)
	clear(st.attempts) // no error string kept past the request
	st.attempts = st.attempts[:0]
	*a = record.Answer{}
}
