package gateway

import (
	"github.com/valyala/fasthttp"

	"github.com/hookgate/hookgate/gateway/dedupe"
)

// beginShared claims key in the shared dedupe store after the route's own
// Deduper found it new (and recorded it as in flight). A repeat the other
// gateways saw is answered like a local one; ok is false when the store
// could not be asked, and the sender has its 503 already: nothing was
// stored, so a retry is safe.
func (g *Gateway) beginShared(ctx *fasthttp.RequestCtx, st *reqState, rt *route, shared SharedDedupe, key []byte) (first []byte, seen dedupe.Seen, ok bool) {
	first, seen, err := shared.Begin(rt.name, key, st.ev.ID)
	if err != nil {
		rt.deduper.Forget(key, st.ev.ID)
		g.log.Error("ingest: the shared dedupe store could not be asked; answered 503", "event_id", string(st.ev.ID), "route", rt.name, "err", err)
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "5")
		writeError(ctx, st, fasthttp.StatusServiceUnavailable, codeQueueUnavailable,
			append(st.msg[:0], "the gateway could not check this event against the copies it already took, so it was not accepted: retry later"...))
		return nil, 0, false
	}
	if seen != dedupe.First {
		// Another gateway has it: this one's in-flight entry must not
		// answer later copies.
		rt.deduper.Forget(key, st.ev.ID)
	}
	return first, seen, true
}

// finishShared settles the shared claim as finish settles the local one.
// A failure is logged, not answered (the answer is written): an accepted
// key whose Accept failed stays in flight until its claim expires, after
// which a repeat is taken again and may be delivered twice (at least
// once); a Forget that failed makes the sender's retries wait for that
// expiry with 409s. Neither loses an event.
func (g *Gateway) finishShared(st *reqState) {
	var err error
	if st.accepted {
		err = st.shared.Accept(st.ev.Route, st.key, st.ev.ID, st.ttl)
	} else {
		err = st.shared.Forget(st.ev.Route, st.key, st.ev.ID)
	}
	if err != nil {
		g.log.Warn("ingest: could not settle the event's dedupe key in the shared store", "event_id", string(st.ev.ID), "route", st.ev.Route, "accepted", st.accepted, "err", err)
	}
	st.shared = nil
}
