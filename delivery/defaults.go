package delivery

import "bytes"

// Original is the request line of an event as it arrived, before any
// plugin ran. Defaults compares the event with it to see what a plugin
// changed.
type Original struct {
	Method []byte
	Path   []byte
	Query  []byte // raw, without '?'; for ingest, after the sender's credential was taken out
}

// Defaults returns dst[:0] grown to hold the default deliveries of ev: one
// per target, in order. They are what happens to an event when no chain
// ran or no plugin emitted, and this is the only place that makes them
// (ingest, `hookgate try` and the admin route test all call it):
//
//   - the body is ev.Body itself, not a copy: it must outlive the
//     deliveries' use;
//   - the headers are ev's, but for those Forwardable refuses;
//   - method, path and query are set only where a plugin changed them (ev
//     differs from in); unchanged, the target's own configuration applies;
//   - NotBefore is notBefore: the event-wide delay a plugin set
//     (Outcome.NotBefore), 0 for none;
//   - EventID and Route are ev's; ID is left to the caller, which numbers
//     every delivery of the event.
//
// The deliveries in dst's capacity and their buffers are reused, so once
// dst has grown Defaults allocates nothing.
func Defaults(dst []Delivery, ev *Event, in Original, notBefore int64, targets []string) []Delivery {
	method := !bytes.Equal(ev.Method, in.Method)
	path := !bytes.Equal(ev.Path, in.Path)
	query := !bytes.Equal(ev.Query, in.Query)
	dst = dst[:0]
	for i, t := range targets {
		if n := len(dst); n < cap(dst) {
			dst = dst[:n+1]
			dst[n].Reset()
		} else {
			dst = append(dst, Delivery{})
		}
		d := &dst[i]
		d.EventID = append(d.EventID, ev.ID...)
		d.Route = ev.Route
		d.Target = t
		if method {
			d.Method = append(d.Method, ev.Method...)
		}
		if path {
			d.Path = append(d.Path, ev.Path...)
		}
		if query {
			if i == 0 {
				d.Query = ParseQuery(d.Query, ev.Query)
			} else {
				d.Query = copyKVs(d.Query, dst[0].Query)
			}
		}
		for _, h := range ev.Headers {
			if Forwardable(h.Key) {
				d.Headers = appendKV(d.Headers, h.Key, h.Value)
			}
		}
		d.Body = ev.Body
		d.NotBefore = notBefore
	}
	return dst
}

// Forwardable says whether a header of the incoming request goes on to
// the targets in a default delivery. Hop-by-hop headers belong to the
// sender's connection; Host and Content-Length are the target's;
// credentials the sender gave hookgate are not the target's business
// (targets get their own auth from config); Accept-Encoding is the
// gateway's to negotiate.
func Forwardable(name []byte) bool {
	switch len(name) {
	case 2:
		return !EqualFold(name, []byte("te"))
	case 4:
		return !EqualFold(name, []byte("host"))
	case 6:
		return !EqualFold(name, []byte("cookie")) && !EqualFold(name, []byte("expect"))
	case 7:
		return !EqualFold(name, []byte("upgrade")) && !EqualFold(name, []byte("trailer"))
	case 10:
		return !EqualFold(name, []byte("connection")) && !EqualFold(name, []byte("keep-alive"))
	case 13:
		return !EqualFold(name, []byte("authorization"))
	case 14:
		return !EqualFold(name, []byte("content-length"))
	case 15:
		// A sync route's target answer goes back as is, with only its
		// Content-Type: a compressed answer would reach the sender
		// undecodable.
		return !EqualFold(name, []byte("accept-encoding"))
	case 16:
		return !EqualFold(name, []byte("proxy-connection"))
	case 17:
		return !EqualFold(name, []byte("transfer-encoding"))
	case 18:
		return !EqualFold(name, []byte("proxy-authenticate"))
	case 19:
		return !EqualFold(name, []byte("proxy-authorization"))
	}
	return true
}
