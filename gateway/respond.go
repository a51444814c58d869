package gateway

import (
	"errors"
	"net"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/target"
	"github.com/hookgate/hookgate/gateway/verify"
)

// Error codes of ingest answers. They are part of the API: a sender's code
// can switch on them, so they never change meaning.
const (
	codeRouteNotFound     = "route_not_found"
	codeMethodNotAllowed  = "method_not_allowed"
	codeBodyTooLarge      = "body_too_large"
	codeInvalidJSON       = "invalid_json"
	codeHeadersTooLarge   = "headers_too_large"
	codeRequestTimeout    = "request_timeout"
	codeBadRequest        = "bad_request"
	codePluginFailed      = "plugin_failed"
	codeUnknownTarget     = "unknown_target"
	codeTargetUnreachable = "target_unreachable"
	codeTargetDisabled    = "target_disabled"
	codeQueueFull         = "queue_full"
	codeQueueUnavailable  = "queue_unavailable"
	codeOverloaded        = "overloaded"
	codeInternal          = "internal_error"
	codeInProgress        = "in_progress"
	// The verify package's reason codes (ip_not_allowed, bad_signature,
	// ...) are answered as they are, with status 401.
)

var (
	contentTypeJSON    = []byte("application/json")
	hdrWWWAuthenticate = []byte("WWW-Authenticate")
	basicChallenge     = []byte(`Basic realm="hookgate"`)
)

// writeError answers {"error":{"code":...,"message":...}}. msg is built by
// the caller in st.msg so no error path allocates.
func writeError(ctx *fasthttp.RequestCtx, st *reqState, status int, code string, msg []byte) {
	st.msg = msg
	st.code = code
	b := append(st.buf[:0], `{"error":{"code":"`...)
	b = append(b, code...)
	b = append(b, `","message":`...)
	b = appendJSONString(b, msg)
	b = append(b, "}}"...)
	st.buf = b
	writeJSON(ctx, status, b)
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.SetBody(body)
}

// appendJSONString appends s as a JSON string, quotes included. Invalid
// UTF-8 becomes U+FFFD so the answer is always valid JSON.
func appendJSONString(b, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

func (g *Gateway) refuseNotFound(ctx *fasthttp.RequestCtx, st *reqState, method, path []byte) {
	m := append(st.msg[:0], "no route for "...)
	m = append(m, method...)
	m = append(m, ' ')
	m = append(m, path...)
	m = append(m, ": check the path against the routes in the configuration"...)
	writeError(ctx, st, fasthttp.StatusNotFound, codeRouteNotFound, m)
}

func (g *Gateway) refuseMethod(ctx *fasthttp.RequestCtx, st *reqState, pr *pathRoutes, method, path []byte) {
	ctx.Response.Header.Set(fasthttp.HeaderAllow, pr.allow)
	m := append(st.msg[:0], "method "...)
	m = append(m, method...)
	m = append(m, " is not allowed on "...)
	m = append(m, path...)
	m = append(m, ": use "...)
	m = append(m, pr.allow...)
	writeError(ctx, st, fasthttp.StatusMethodNotAllowed, codeMethodNotAllowed, m)
}

func (g *Gateway) refuseTooLarge(ctx *fasthttp.RequestCtx, st *reqState, limit int) {
	m := append(st.msg[:0], "the request body is larger than this route's limit of "...)
	m = appendInt(m, limit)
	m = append(m, " bytes: send a smaller body, or raise max_body on the route"...)
	writeError(ctx, st, fasthttp.StatusRequestEntityTooLarge, codeBodyTooLarge, m)
}

func (g *Gateway) refusePlugin(ctx *fasthttp.RequestCtx, st *reqState, rt *route) {
	// The sender gets a sentence, never the plugin's error: a trap's text,
	// a Go panic line or memory figures are the operator's business, and
	// the recorder's log lines have them with the event id.
	m := append(st.msg[:0], "the transforms of route \""...)
	m = append(m, rt.name...)
	m = append(m, "\" could not process this event, so it was not accepted: retry later; if it keeps failing, give the gateway's operator the event id"...)
	writeError(ctx, st, fasthttp.StatusBadGateway, codePluginFailed, m)
}

// refusePluginDelay answers a sync route whose plugins asked to delay a
// delivery: the sender is waiting for the target's answer, so there is no
// later to deliver at.
func (g *Gateway) refusePluginDelay(ctx *fasthttp.RequestCtx, st *reqState, rt *route) {
	m := append(st.msg[:0], "a plugin on route \""...)
	m = append(m, rt.name...)
	m = append(m, "\" asked to delay delivery, which a sync route cannot do: the sender waits for the answer; the operator must make the route async or remove the delay from the plugin"...)
	writeError(ctx, st, fasthttp.StatusBadGateway, codePluginFailed, m)
}

func (g *Gateway) refuseUnknownTarget(ctx *fasthttp.RequestCtx, st *reqState, rt *route, name string) {
	m := append(st.msg[:0], "a plugin on route \""...)
	m = append(m, rt.name...)
	m = append(m, "\" emitted to target \""...)
	m = append(m, name...)
	m = append(m, "\", which is not defined: define it as a [[target]] or fix the plugin"...)
	writeError(ctx, st, fasthttp.StatusBadGateway, codeUnknownTarget, m)
}

func (g *Gateway) refuseTarget(ctx *fasthttp.RequestCtx, st *reqState, rt *route, d *delivery.Delivery, err error) {
	m := append(st.msg[:0], "target \""...)
	m = append(m, d.Target...)
	m = append(m, "\" could not be reached: "...)
	m = appendTransportCause(m, err)
	writeError(ctx, st, fasthttp.StatusBadGateway, codeTargetUnreachable, m)
}

// refuseDisabled answers a sync request whose target is disabled
// (disable_after): nothing was sent. The sender learns that the target is
// disabled and that a person has to act, not why it failed or how the
// operator enables it: those are the operator's (the target.disabled
// line and event say both).
func (g *Gateway) refuseDisabled(ctx *fasthttp.RequestCtx, st *reqState, d *delivery.Delivery) {
	// A disabled target stays so until someone acts: a minute is as soon
	// as a retry makes sense.
	ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "60")
	m := append(st.msg[:0], "target \""...)
	m = append(m, d.Target...)
	m = append(m, "\" is disabled because it kept failing, so this event was not sent: retry later; the gateway's operator re-enables the target once it is fixed"...)
	writeError(ctx, st, fasthttp.StatusServiceUnavailable, codeTargetDisabled, m)
}

// appendTransportCause describes a transport failure without the target's
// URL: its query may carry a credential. Dial errors name only host:port.
func appendTransportCause(m []byte, err error) []byte {
	var ne net.Error
	switch {
	case errors.Is(err, target.ErrToken):
		// The sender is not told what the token endpoint said: that is the
		// operator's (the attempt's error, in the log and the journal).
		return append(m, "the gateway could not get an access token for it; retry later"...)
	case errors.Is(err, target.ErrTimeout), errors.As(err, &ne) && ne.Timeout():
		return append(m, "it did not answer within its timeout; check that it is up, or raise its timeout"...)
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		m = append(m, oe.Op...)
		if oe.Addr != nil {
			m = append(m, ' ')
			m = append(m, oe.Addr.String()...)
		}
		if oe.Err != nil {
			m = append(m, ": "...)
			m = append(m, oe.Err.Error()...)
		}
		return append(m, "; check that it is up and listening"...)
	}
	return append(m, "the connection failed; check that it is up and listening"...)
}

func (g *Gateway) refuseQueue(ctx *fasthttp.RequestCtx, st *reqState, err error) {
	if errors.Is(err, ErrQueueFull) {
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
		writeError(ctx, st, fasthttp.StatusServiceUnavailable, codeQueueFull,
			append(st.msg[:0], "the delivery queue is over its budget and cannot take this event now: retry later"...))
		return
	}
	g.log.Error("ingest: queue refused an event; answered 503", "event_id", string(st.ev.ID), "route", st.ev.Route, "err", err)
	ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "5")
	writeError(ctx, st, fasthttp.StatusServiceUnavailable, codeQueueUnavailable,
		append(st.msg[:0], "the event could not be stored for delivery, so it was not accepted: retry later"...))
}

// answerDropped tells the sender a plugin dropped the event on purpose:
// a success, since retrying would only be dropped again.
func (g *Gateway) answerDropped(ctx *fasthttp.RequestCtx, st *reqState, rt *route) {
	st.accepted = true
	st.answer.Dropped = true
	b := st.buf[:0]
	status := fasthttp.StatusOK
	if rt.sync {
		b = append(b, '{')
	} else {
		status = fasthttp.StatusAccepted
		b = append(b, `{"event_id":"`...)
		b = append(b, st.ev.ID...)
		b = append(b, `",`...)
	}
	b = append(b, `"dropped":`...)
	b = appendJSONString(b, st.out.DropReason)
	b = append(b, '}')
	st.buf = b
	writeJSON(ctx, status, b)
}

// Fixed messages for refused senders. A 401's message is the verify
// error's Advice: it says what to check for that reason and nothing an
// attacker could tune against.
const (
	msgOverloaded = "the gateway is holding as many request bodies as it may (server.max_body_memory): retry after a second"
	msgInProgress = "another copy of this event is being handled right now: retry after a second to get its answer"
)

// refuseAdmission answers a request refused before its body was read.
func (g *Gateway) refuseAdmission(ctx *fasthttp.RequestCtx, st *reqState, rt *route, why refusal) {
	switch why {
	case refusedIP:
		writeError(ctx, st, fasthttp.StatusUnauthorized, verify.ReasonIPNotAllowed, append(st.msg[:0], verify.ErrIPNotAllowed.Advice...))
	default:
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
		writeError(ctx, st, fasthttp.StatusServiceUnavailable, codeOverloaded, append(st.msg[:0], msgOverloaded...))
	}
}

// refuseVerify answers a failed verification: 401 with the verify
// reason as the code and its advice as the message, which says what to
// check for that reason (a secret, a clock, an address).
func (g *Gateway) refuseVerify(ctx *fasthttp.RequestCtx, st *reqState, rt *route, err error) {
	e, ok := err.(*verify.Error)
	if !ok {
		e = verify.ErrBadSignature
	}
	if rt.basic && e != verify.ErrIPNotAllowed {
		ctx.Response.Header.SetCanonical(hdrWWWAuthenticate, basicChallenge)
	}
	writeError(ctx, st, fasthttp.StatusUnauthorized, e.Reason, append(st.msg[:0], e.Advice...))
}

func (g *Gateway) refuseInProgress(ctx *fasthttp.RequestCtx, st *reqState) {
	ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
	writeError(ctx, st, fasthttp.StatusConflict, codeInProgress, append(st.msg[:0], msgInProgress...))
}

// answerDuplicate answers a repeat of an accepted event; nothing is
// delivered. Every repeat gets the same answer whatever the first got: a
// success of the route's kind (202 async, 200 sync) with the first copy's
// event id, in Hookgate-Event-Id and as {"event_id":...,"duplicate":true}.
// The first answer's content (a target's body, a drop reason) is not
// replayed, on purpose: a dedupe key is no credential (a body field or a
// header anyone can send), so a replay would hand the first sender's
// answer to whoever sends the same key; and a sender retries for the
// status, which a repeat gets as success. Nothing is stored per event
// beyond the id, so memory stays max_entries small entries.
func (g *Gateway) answerDuplicate(ctx *fasthttp.RequestCtx, st *reqState, rt *route, first []byte) {
	st.stats.duplicate()
	st.answer.Duplicate = true
	ctx.Response.Header.SetCanonical(hdrEventID, first)
	b := append(st.buf[:0], `{"event_id":"`...)
	b = append(b, first...)
	b = append(b, `","duplicate":true}`...)
	status := fasthttp.StatusAccepted
	if rt.sync {
		status = fasthttp.StatusOK
	}
	st.buf = b
	writeJSON(ctx, status, b)
}

// handleReadError answers requests fasthttp could not read: headers
// too large, too slow or malformed, or a body whose first byte did not
// come (the rest of a body is read by handle). They get our JSON errors,
// and are counted. fasthttp has reset what it read of the request, so
// none of them has a route.
func (g *Gateway) handleReadError(ctx *fasthttp.RequestCtx, err error) {
	st := g.begin(ctx)
	defer g.states.Put(st)
	defer func() {
		// No method or path: fasthttp reset the request, whose Method()
		// and Path() would say "GET /".
		g.record(ctx, st, nil, nil)
		st.code = ""
		st.reset()
	}()
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		// Not expected while bodies are streamed; kept so that a change
		// in fasthttp still gets the right answer.
		g.refuseTooLarge(ctx, st, g.tbl.Load().maxBody)
	case errors.As(err, &small):
		writeError(ctx, st, fasthttp.StatusRequestHeaderFieldsTooLarge, codeHeadersTooLarge,
			append(st.msg[:0], "the request headers are larger than server.max_header_bytes: send fewer or smaller headers"...))
	case errors.As(err, &ne) && ne.Timeout():
		g.refuseTimeout(ctx, st)
	default:
		g.refuseMalformed(ctx, st)
	}
}
